"""Tests of geocommuns.definitions.sourcedef: source declarations."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from conftest import ROOT

from geocommuns.definitions.service import service_from_root
from geocommuns.definitions.sourcedef import GeometrySpec, source_from_yaml, sources_from_dir
from geocommuns.errors import SourceDefinitionError


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_full_declaration(tmp_path: Path) -> None:
    yml = _write(
        tmp_path / "46042-cahors" / "equipements.yml",
        "layer: equipements\n"
        "path: equipements.csv\n"
        "producer: Ville de Cahors\n"
        'delimiter: ";"\n'
        "encoding: cp1252\n"
        "date_maj: 2026-09-15\n"
        'geometry: {x: X_L93, y: Y_L93, crs: "EPSG:2154"}\n'
        "mapping: {nom: LIBELLE, categorie: THEME, adresse: [NUM, VOIE]}\n"
        'values: {categorie: {"Sport": sport}}\n'
        "constants: {gestionnaire: Ville de Cahors}\n",
    )
    source = source_from_yaml(yml)
    assert source.id == "46042-cahors-equipements"
    assert source.kind == "file"
    assert source.path == (tmp_path / "46042-cahors" / "equipements.csv").resolve()
    assert source.delimiter == ";"
    assert source.encoding == "cp1252"
    assert source.date_maj == dt.date(2026, 9, 15)
    assert source.geometry == GeometrySpec(x="X_L93", y="Y_L93", crs="EPSG:2154")
    assert source.mapping["adresse"] == ["NUM", "VOIE"]
    assert source.values == {"categorie": {"Sport": "sport"}}
    assert source.constants == {"gestionnaire": "Ville de Cahors"}


def test_explicit_id_is_kept(tmp_path: Path) -> None:
    yml = _write(tmp_path / "a" / "b.yml", "id: mine\nlayer: wifi\npath: x.csv\n")
    assert source_from_yaml(yml).id == "mine"


def test_shipped_reference_source_loads() -> None:
    sources = sources_from_dir(ROOT / service_from_root(ROOT).paths.sources)
    mairies = [s for s in sources if s.kind == "mairies"]
    assert mairies
    assert mairies[0].layer == "equipements"
    assert mairies[0].path is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("layer: wifi\n", ["b.yml", "needs 'path'"]),
        ("layer: wifi\npath: x.csv\nlayr: wifi\n", ["b.yml", "layr", "remove this key"]),
        ("path: x.csv\n", ["b.yml", "layer", "add this key"]),
        ("layer: wifi\npath: x.csv\nkind: ftp\n", ["b.yml", "kind"]),
        ("layer: wifi\npath: x.csv\nheader: false\n", ["b.yml", "column_names"]),
        ("layer: wifi\npath: x.csv\ngeometry: {x: X}\n", ["b.yml", "both x and y"]),
        (
            "layer: wifi\npath: x.csv\ngeometry: {x: X, y: Y, latlon: geo}\n",
            ["b.yml", "not both"],
        ),
        ("id: Bad Id\nlayer: wifi\npath: x.csv\n", ["b.yml", "source id 'Bad Id'"]),
        ("layer: wifi\npath: x.csv\ndate_maj: 31/02/2026\n", ["b.yml", "date_maj"]),
        ("- a\n- b\n", ["b.yml", "must hold a mapping"]),
        ("layer: [unclosed\n", ["b.yml", "cannot be read as YAML"]),
    ],
)
def test_malformed_declaration(tmp_path: Path, text: str, expected: list[str]) -> None:
    yml = _write(tmp_path / "a" / "b.yml", text)
    with pytest.raises(SourceDefinitionError) as info:
        source_from_yaml(yml)
    for part in expected:
        assert part in str(info.value)


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    _write(tmp_path / "a" / "x.yml", "id: same\nlayer: wifi\npath: x.csv\n")
    _write(tmp_path / "b" / "y.yml", "id: same\nlayer: wifi\npath: y.csv\n")
    with pytest.raises(SourceDefinitionError, match="source ids declared twice: same"):
        sources_from_dir(tmp_path)


def test_sources_sorted_by_path(tmp_path: Path) -> None:
    _write(tmp_path / "b" / "wifi.yml", "layer: wifi\npath: x.csv\n")
    _write(tmp_path / "a" / "wifi.yml", "layer: wifi\npath: x.csv\n")
    assert [s.id for s in sources_from_dir(tmp_path)] == ["a-wifi", "b-wifi"]
