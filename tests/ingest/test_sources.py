"""The source registry and SourceDef.kind name the same kinds."""

from __future__ import annotations

import pytest

from geocommuns.definitions.sourcedef import SOURCE_KINDS, SourceDef
from geocommuns.ingest.sources import register, registered_kinds


def test_every_declarable_kind_has_a_reader_and_every_reader_a_kind() -> None:
    assert registered_kinds() == set(SOURCE_KINDS) == {"file", "mairies", "osm"}
    schema = SourceDef.model_json_schema()["properties"]["kind"]
    assert set(schema["enum"]) == set(SOURCE_KINDS)


def test_a_reader_for_an_undeclarable_kind_is_refused() -> None:
    with pytest.raises(ValueError, match=r"not one of SourceDef\.kind"):
        register("wfs", lambda source, layer, territory: None)
    with pytest.raises(ValueError, match="already registered"):
        register("file", lambda source, layer, territory: None)
    assert registered_kinds() == set(SOURCE_KINDS)
