"""Replay of the journal on the imports (geocommuns.ingest.replay), against a reference model.

The property test drives random sequences of source imports and human changes (update a
field, delete, create) and checks, after every refresh, that the replayed layer equals a
reference model written independently: a dict of features where each human change is
remembered as it happens (the technician's field values, deletions, creations), applied
over whatever the source delivers at the refresh.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geocommuns.ingest.harmonise import features_frame
from geocommuns.ingest.journal import WHOLE_FEATURE, Change
from geocommuns.ingest.replay import canonical, replay

IDS = ["a", "b", "c", "d"]
FIELDS = ["nom", "horaires"]
VALUES = ["v1", "v2", "v3", None]
POINT = (1.44, 44.45)
AT = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def _doc(fid: str, values: dict[str, Any], layer: Any) -> dict[str, Any]:
    doc = {f.name: None for f in layer.fields}
    doc.update(id=fid, source="src", code_insee="46042", **values)
    doc["geometry"] = {"type": "Point", "coordinates": list(POINT)}
    return doc


def _imports(source: dict[str, dict[str, Any]], layer: Any) -> Any:
    records = [_doc(fid, values, layer) for fid, values in sorted(source.items())]
    for r in records:
        r.pop("geometry")
    return features_frame(layer, records, [shapely.Point(POINT) for _ in records])


def _as_dict(gdf: Any) -> dict[str, dict[str, Any]]:
    out = {}
    for record in gdf.drop(columns="geometry").to_dict("records"):
        out[record["id"]] = {k: canonical(record[k]) for k in FIELDS}
    return out


class Model:
    """What should be published: human changes remembered as they happen."""

    def __init__(self) -> None:
        self.overrides: dict[str, dict[str, Any]] = {}
        self.deleted: set[str] = set()
        self.created: dict[str, dict[str, Any]] = {}
        self.published: dict[str, dict[str, Any]] = {}

    def refresh(self, source: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for fid, values in source.items():
            if fid in self.deleted:
                continue
            row = {k: values.get(k) for k in FIELDS}
            row.update(self.overrides.get(fid, {}))
            out[fid] = row
        for fid, overrides in self.overrides.items():
            if fid not in source and fid not in self.deleted and overrides:
                out[fid] = dict(self.published.get(fid) or {}, **overrides)  # kept: a conflict
        out.update(self.created)
        self.published = {k: dict(v) for k, v in out.items()}
        return out


operation = st.one_of(
    st.tuples(st.just("import"), st.dictionaries(
        st.sampled_from(IDS), st.fixed_dictionaries({k: st.sampled_from(VALUES) for k in FIELDS}),
        min_size=1)),
    st.tuples(st.just("update"), st.sampled_from(IDS), st.sampled_from(FIELDS), st.sampled_from(VALUES)),
    st.tuples(st.just("delete"), st.sampled_from(IDS)),
    st.tuples(st.just("create"), st.sampled_from(["n1", "n2"]),
              st.fixed_dictionaries({k: st.sampled_from(VALUES) for k in FIELDS})),
)


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=1, max_size=14))
def test_replay_matches_the_reference_model(layers, ops):
    layer = layers["equipements"]
    model = Model()
    journal: list[Change] = []
    source: dict[str, dict[str, Any]] = {}
    last_imported: dict[str, dict[str, Any]] = {}  # what the store's import log keeps
    published: dict[str, dict[str, Any]] = {}  # the live table, as technicians see it
    seq = 0

    def record(fid: str, action: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        nonlocal seq
        seq += 1
        journal.append(Change(seq, AT, "tech", "contributor", "api", "equipements", fid, action,  # type: ignore[arg-type]
                              before and _doc(fid, before, layer), after and _doc(fid, after, layer)))

    for op in ops:
        if op[0] == "import":
            source = {fid: dict(v) for fid, v in op[1].items()}
            previous = {fid: _doc(fid, v, layer) for fid, v in last_imported.items()}
            done = replay({"equipements": _imports(source, layer)}, journal, {"equipements": layer},
                          previous={"equipements": previous})
            last_imported.update(source)
            published = _as_dict(done.layers["equipements"])
            assert published == model.refresh(source)
            for conflict in done.conflicts:
                assert conflict.field in {*FIELDS, WHOLE_FEATURE}
        elif op[0] == "update":
            _, fid, field, value = op
            if fid not in published or published[fid][field] == value:
                continue  # nothing to change: no journal entry
            after = dict(published[fid], **{field: value})
            record(fid, "update", published[fid], after)
            published[fid] = after
            if fid in model.created:
                model.created[fid] = dict(after)
            else:
                model.overrides.setdefault(fid, {})[field] = value
        elif op[0] == "delete":
            _, fid = op
            if fid not in published:
                continue
            record(fid, "delete", published.pop(fid), None)
            if fid in model.created:
                del model.created[fid]
            else:
                model.deleted.add(fid)
                model.overrides.pop(fid, None)
        else:
            _, fid, values = op
            if fid in published:
                continue
            record(fid, "create", None, values)
            published[fid] = dict(values)
            model.created[fid] = dict(values)


def test_a_conflict_is_listed_once_and_the_correction_kept(layers):
    layer = layers["equipements"]
    imports = _imports({"a": {"nom": "Mairie", "horaires": "Mo 09:00-12:00"}}, layer)
    before = _doc("a", {"nom": "Mairie", "horaires": "Mo 09:00-12:00"}, layer)
    after = dict(before, horaires="Mo 08:00-12:00")
    journal = [Change(1, AT, "tech", "contributor", "api", "equipements", "a", "update", before, after)]
    # the source did not change: no conflict, the correction applies
    done = replay({"equipements": imports}, journal, {"equipements": layer})
    assert not done.conflicts and _as_dict(done.layers["equipements"])["a"]["horaires"] == "Mo 08:00-12:00"
    # the source changed the same field: one conflict, the correction is kept
    changed = _imports({"a": {"nom": "Mairie", "horaires": "Tu 09:00-12:00"}}, layer)
    done = replay({"equipements": changed}, journal, {"equipements": layer})
    assert [(c.field, c.seen, c.edit, c.source) for c in done.conflicts] == [
        ("horaires", "Mo 09:00-12:00", "Mo 08:00-12:00", "Tu 09:00-12:00")
    ]
    assert _as_dict(done.layers["equipements"])["a"]["horaires"] == "Mo 08:00-12:00"
    # settled for the source: the source's value, and no conflict any more
    settled = Change(2, AT, "admin", "admin", "conflicts", "equipements", "a", "resolve", after,
                     {"field": "horaires", "keep": "source", "source": "Tu 09:00-12:00"})
    done = replay({"equipements": changed}, [*journal, settled], {"equipements": layer})
    assert not done.conflicts and _as_dict(done.layers["equipements"])["a"]["horaires"] == "Tu 09:00-12:00"
    # settled for the correction: kept, and no conflict while the source says the same
    kept = Change(2, AT, "admin", "admin", "conflicts", "equipements", "a", "resolve", after,
                  {"field": "horaires", "keep": "edit", "source": "Tu 09:00-12:00"})
    done = replay({"equipements": changed}, [*journal, kept], {"equipements": layer})
    assert not done.conflicts and _as_dict(done.layers["equipements"])["a"]["horaires"] == "Mo 08:00-12:00"
    assert done.edits_replayed == {"equipements": 2}


def test_an_edited_feature_its_source_dropped_is_kept_as_a_conflict(layers):
    layer = layers["equipements"]
    before = _doc("a", {"nom": "Mairie", "horaires": None}, layer)
    after = dict(before, nom="Mairie de Cahors")
    journal = [Change(1, AT, "tech", "contributor", "api", "equipements", "a", "update", before, after)]
    done = replay({"equipements": _imports({"b": {"nom": "x"}}, layer)}, journal, {"equipements": layer})
    assert _as_dict(done.layers["equipements"])["a"]["nom"] == "Mairie de Cahors"
    assert [(c.feature_id, c.field) for c in done.conflicts] == [("a", WHOLE_FEATURE)]
