"""geocommuns.contrib.history: a feature's timeline, imports and human changes together.

``geocommuns history FEATURE_ID`` merges, by time, what each import changed in the
feature (:func:`geocommuns.ingest.journal.imports_of`) and each human change of the
journal: who, when, through what, which fields, old → new. Sensitive values are masked
unless the caller may read them (an administrator, or a user whose territory and layers
cover the feature).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from geocommuns.contrib.auth import Principal
from geocommuns.contrib.layerstore import LivingStore
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.ingest import journal
from geocommuns.ingest.journal import WHOLE_FEATURE

MASK = "•••"


@dataclass(frozen=True)
class Step:
    """One event of a feature's life."""

    at: dt.datetime
    kind: str  # "import" or "human"
    action: str
    who: str
    via: str
    layer: str
    changes: dict[str, list[Any]] = field(default_factory=dict)
    note: str | None = None


def _diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, list[Any]]:
    a, b = before or {}, after or {}
    return {k: [a.get(k), b.get(k)] for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)}


def feature_history(
    store: LivingStore,
    layers: dict[str, LayerDef],
    feature_id: str,
    *,
    reader: Principal | None = None,
) -> list[Step]:
    """The timeline of one feature, oldest first.

    Parameters
    ----------
    store
        The living store.
    layers
        The layer definitions (which fields are sensitive).
    feature_id
        The feature's id.
    reader
        Who asks: sensitive values are shown only when they may read them (None: masked).

    Returns
    -------
    list of Step
        Imports that changed the feature and human changes, by time.
    """
    with store.reading() as db:
        imports = journal.imports_of(db, feature_id)
        human = journal.changes(db, feature_id=feature_id)
    steps = [
        Step(at=i.at, kind="import", action=i.action, who="import", via="refresh",
             layer=i.layer, changes=dict(i.changes or {}))
        for i in imports
    ]
    for c in human:
        if c.action == "resolve":
            what = c.after or {}
            name = str(what.get("field"))
            diff = {} if name == WHOLE_FEATURE else {name: [what.get("edit"), what.get(str(what.get("keep")))]}
            steps.append(Step(at=c.at, kind="human", action=f"resolve ({what.get('keep')})", who=c.actor,
                              via=c.via, layer=c.layer, changes=diff, note=c.note))
        else:
            steps.append(Step(at=c.at, kind="human", action=c.action, who=c.actor, via=c.via,
                              layer=c.layer, changes=_diff(c.before, c.after), note=c.note))
    steps.sort(key=lambda s: s.at)
    place = _place(human, imports)
    return [_masked(s, layers, reader, place) for s in steps]


def _place(human: list[journal.Change], imports: list[journal.ImportChange]) -> tuple[str | None, str | None]:
    """The feature's commune and EPCI as last known (its latest document or import)."""
    for change in reversed(human):
        doc = change.after or change.before or {}
        if doc.get("code_insee"):
            return doc.get("code_insee"), doc.get("epci")
    for i in reversed(imports):
        changes = i.changes or {}
        if changes.get("code_insee"):
            return changes["code_insee"][1], (changes.get("epci") or [None, None])[1]
    return None, None


def _masked(
    step: Step, layers: dict[str, LayerDef], reader: Principal | None, place: tuple[str | None, str | None]
) -> Step:
    layer = layers.get(step.layer)
    if layer is None:
        return step
    sensitive = {f.name for f in layer.fields if f.sensitive}
    if not sensitive & step.changes.keys():
        return step
    if reader is not None and reader.reads_sensitive(layer.id, *place):
        return step  # the same rule as an authenticated item read
    changes = {k: ([MASK if x is not None else None for x in v] if k in sensitive else v)
               for k, v in step.changes.items()}
    return Step(step.at, step.kind, step.action, step.who, step.via, step.layer, changes, step.note)
