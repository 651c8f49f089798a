"""geocommuns.contrib.portal.preview: what a delivery changes, and its submission.

:func:`preview_delivery` runs the contribution path (:func:`geocommuns.contrib.contribute.contribute`)
as a dry run: the same rights, the same harmonisation, the same comparison with the
commune's stored features, nothing written. :func:`submit_delivery` runs it for real (one
transaction, one journal entry per feature, refused whole when a row is rejected or lies
outside the user's territory) or, when the EPCI reviews deliveries, queues it
(:mod:`geocommuns.contrib.reviews`); :func:`apply_accepted` applies a queued delivery
once accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geocommuns.contrib import reviews
from geocommuns.contrib.auth import Principal
from geocommuns.contrib.contribute import Change, ContributionError, ContributionPlan, contribute
from geocommuns.contrib.layerstore import LivingStore
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.sourcedef import SourceDef
from geocommuns.definitions.territory import Territory

#: Fields a preview never lists as changed (provenance geocommuns writes itself).
_QUIET = frozenset({"imported_at", "provenance", "merged_from"})


@dataclass(frozen=True)
class FieldDiff:
    """One field of a changed feature: before and after."""

    name: str
    title: str
    old: Any
    new: Any


@dataclass(frozen=True)
class PreviewRow:
    """One feature the delivery adds, changes or removes."""

    kind: str
    feature_id: str
    name: str
    lon: float | None
    lat: float | None
    diffs: list[FieldDiff] = field(default_factory=list)


@dataclass(frozen=True)
class Preview:
    """What a delivery changes."""

    plan: ContributionPlan
    rows: list[PreviewRow]

    @property
    def counts(self) -> dict[str, int]:
        """Added, changed, removed, unchanged."""
        p = self.plan
        return {"added": len(p.added), "changed": len(p.changed), "removed": len(p.removed),
                "unchanged": p.unchanged}


def _point(doc: dict[str, Any] | None) -> tuple[float | None, float | None]:
    coords = ((doc or {}).get("geometry") or {}).get("coordinates") or [None, None]
    return coords[0], coords[1]


def _row(kind: str, change: Change, layer: LayerDef) -> PreviewRow:
    doc = change.after or change.before or {}
    lon, lat = _point(doc)
    diffs = []
    for name in change.fields:
        if name in _QUIET:
            continue
        if name == "geometry":
            diffs.append(FieldDiff(name, "Position", _point(change.before), _point(change.after)))
            continue
        title = layer.field(name).title if name in layer.field_names else name
        diffs.append(FieldDiff(name, title, (change.before or {}).get(name), (change.after or {}).get(name)))
    return PreviewRow(kind=kind, feature_id=change.feature_id, name=str(doc.get("nom") or ""),
                      lon=lon, lat=lat, diffs=diffs)


def rows_of(plan: ContributionPlan, layer: LayerDef) -> list[PreviewRow]:
    """The plan's features as rows of the preview table (added, changed, removed)."""
    return (
        [_row("added", c, layer) for c in plan.added]
        + [_row("changed", c, layer) for c in plan.changed]
        + [_row("removed", c, layer) for c in plan.removed]
    )


def preview_delivery(
    store: LivingStore, source: SourceDef, layer: LayerDef, commune: str, territory: Territory,
    *, user: str, sources_dir: Path,
) -> Preview:
    """The changes a delivery would make (a dry run of the contribution path).

    Raises
    ------
    ContributionError
        When the user may not, a row is rejected or lies outside the commune.
    """
    if source.path is None:
        msg = "the delivery has no file"
        raise ContributionError(msg)
    plan = contribute(store, source.path, layer, commune, territory, user=user,
                      sources_dir=sources_dir, dry_run=True, source=source)
    return Preview(plan=plan, rows=rows_of(plan, layer))


def submit_delivery(
    store: LivingStore, source: SourceDef, layer: LayerDef, commune: str, territory: Territory,
    *, user: str, sources_dir: Path, review: bool, upload_id: str, note: str = "",
) -> ContributionPlan | reviews.Item:
    """Apply a delivery through the contribution path, or queue it for the EPCI's review.

    With ``review``, the delivery is first checked as a dry run (a delivery the path
    would refuse is refused now), then queued with what it would change; the EPCI applies
    it on acceptance (:func:`apply_accepted`).

    Returns
    -------
    ContributionPlan or Item
        The applied plan, or the queued item.

    Raises
    ------
    ContributionError
        When the contribution path refuses it (nothing was changed).
    """
    if source.path is None:
        msg = "the delivery has no file"
        raise ContributionError(msg)
    plan = contribute(store, source.path, layer, commune, territory, user=user,
                      sources_dir=sources_dir, dry_run=review, source=source)
    if not review:
        return plan
    epci = territory.communes.set_index("code_insee").at[commune, "epci"]
    summary = (
        f"Livraison « {source.path.name} » : {len(plan.added)} ajout(s), "
        f"{len(plan.changed)} modification(s), {len(plan.removed)} suppression(s)."
    )
    if note.strip():
        summary += f"\n{note.strip()}"
    payload = {
        "upload": upload_id,
        "source": source.model_dump(mode="json", exclude={"path"}),
        "added": [c.feature_id for c in plan.added],
        "changed": {c.feature_id: c.fields for c in plan.changed},
        "removed": [c.feature_id for c in plan.removed],
    }
    with store.writing() as db:
        return reviews.submit(db, kind="submission", layer=layer.id, commune=commune,
                              epci=None if epci is None else str(epci), message=summary,
                              payload=payload, submitted_by=user)


def apply_accepted(
    store: LivingStore, reviewer: Principal, item: reviews.Item, *, delivery: Path,
    layer: LayerDef, territory: Territory, sources_dir: Path, comment: str,
) -> ContributionPlan:
    """Apply a queued delivery the reviewer accepts, then mark it accepted and done.

    The contribution runs with the submitter's rights and name (journaled as theirs);
    when the path refuses it now (the layer changed meanwhile), the item stays proposed.

    Raises
    ------
    ContributionError
        When the contribution path refuses the delivery.
    reviews.ReviewError
        When the reviewer may not decide the item.
    """
    with store.reading() as db:
        current = reviews.get_item(db, reviewer, item.id)
    if not reviews.may_review(reviewer, current) or current.state != "proposed":
        msg = f"item {item.id} is {current.state}, or not yours to decide"
        raise reviews.ReviewError(msg)
    payload = current.payload or {}
    source = SourceDef.model_validate({**payload.get("source", {}), "path": str(delivery)})
    if current.commune is None:
        msg = f"item {item.id} names no commune"
        raise reviews.ReviewError(msg)
    plan = contribute(store, delivery, layer, current.commune, territory,
                      user=current.submitted_by, sources_dir=sources_dir, source=source)
    with store.writing() as db, db.transaction():
        reviews.decide(db, reviewer, item.id, accept=True, comment=comment)
        reviews.mark_done(db, reviewer, item.id)
    return plan
