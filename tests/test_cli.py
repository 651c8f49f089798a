"""Tests of geocommuns.cli, end to end through the installed ``geocommuns`` command."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import CAHORS_LONLAT, LAYERS_DIR, project

pytestmark = pytest.mark.slow  # each test runs the geocommuns command in a new process

GEOCOMMUNS = Path(sys.executable).with_name("geocommuns")
LON, LAT = CAHORS_LONLAT
INSIDE = [(LON, LAT), (1.4700, 44.4600), (1.5134, 44.4564)]


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GEOCOMMUNS_LAYERS_DIR": str(LAYERS_DIR),
        "GEOCOMMUNS_TERRITORY": "epci:200023737",
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [str(GEOCOMMUNS), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _assert_one_clear_sentence(result: subprocess.CompletedProcess[str], *parts: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    message = lines[0]
    assert message.startswith("error: ")
    # One sentence: no full stop followed by another sentence.
    assert not re.search(r"[.!?][;,]?\s+[A-Z]", message), message
    for part in parts:
        assert part in message


def _l93_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    pd.DataFrame(rows).to_csv(path, sep=";", index=False, encoding="cp1252")
    return path


def _valid_rows() -> list[dict[str, str]]:
    rows = []
    for i, (lon, lat) in enumerate(INSIDE):
        x, y = project(lon, lat, "EPSG:2154")
        rows.append(
            {
                "nom": f"Médiathèque {i + 1}",
                "categorie": "Culture",
                "X": f"{x:.2f}",
                "Y": f"{y:.2f}",
                "date_maj": "15/09/2026",
                "telephone": "05 65 20 87 87",
            }
        )
    return rows


# ------------------------------------------------------------------ unreadable: exit 2


def _garbage(path: Path) -> Path:
    path.write_bytes(bytes(range(256)) * 16)
    return path


@pytest.mark.parametrize(
    ("name", "content", "parts"),
    [
        ("empty.csv", b"", ["empty.csv", "the file is empty"]),
        ("garbage.csv", None, ["garbage.csv", "binary data"]),
        ("garbage.xlsx", None, ["garbage.xlsx", "cannot be read as an Excel workbook"]),
        ("garbage.shp", None, ["garbage.shp", "cannot be read as shapefile"]),
        ("garbage.geojson", None, ["garbage.geojson", "cannot be read as geojson"]),
        ("garbage.gpkg", None, ["garbage.gpkg", "cannot be read as gpkg"]),
        ("empty.geojson", b"", ["empty.geojson", "the file is empty"]),
        ("plan.pdf", b"%PDF-1.4\n", ["plan.pdf", "unknown file type"]),
        ("ragged.csv", b"nom;x\nA;1\nB;1;2;3\n", ["ragged.csv", "expected 2 fields in line 3"]),
    ],
)
def test_unreadable_file_exits_2_with_one_sentence(
    tmp_path: Path, name: str, content: bytes | None, parts: list[str]
) -> None:
    path = tmp_path / name
    if content is None:
        _garbage(path)
    else:
        path.write_bytes(content)
    result = run("validate", path, "--layer", "equipements", cwd=tmp_path)
    _assert_one_clear_sentence(result, *parts)
    assert result.stdout == ""


def test_missing_file_exits_2(tmp_path: Path) -> None:
    result = run("validate", tmp_path / "absent.csv", "--layer", "equipements", cwd=tmp_path)
    _assert_one_clear_sentence(result, "absent.csv", "no such file")


def test_unknown_layer_exits_2(tmp_path: Path) -> None:
    path = _l93_csv(tmp_path / "ok.csv", _valid_rows())
    result = run("validate", path, "--layer", "bibliotheques", cwd=tmp_path)
    _assert_one_clear_sentence(result, "unknown layer 'bibliotheques'", "equipements")


def test_bad_territory_exits_2(tmp_path: Path) -> None:
    path = _l93_csv(tmp_path / "ok.csv", _valid_rows())
    result = run("validate", path, "--layer", "equipements", "--territory", "lot", cwd=tmp_path)
    _assert_one_clear_sentence(result, "territory 'lot' is not understood")


def test_header_only_csv_does_not_crash(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("nom;categorie;longitude;latitude\n", encoding="utf-8")
    result = run("validate", path, "--layer", "equipements", cwd=tmp_path)
    if result.returncode == 2:
        _assert_one_clear_sentence(result, "header.csv")
    else:
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        assert "read 0, written 0, rejected 0, merged 0 (balanced)" in result.stdout


# ------------------------------------------------------------------ readable: exit 0 / 1


def test_all_rows_valid_exits_0(tmp_path: Path) -> None:
    path = _l93_csv(tmp_path / "ok.csv", _valid_rows())
    report = tmp_path / "report.json"
    result = run("validate", path, "--layer", "equipements", "--report", report, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "read 3, written 3, rejected 0, merged 0 (balanced)" in result.stdout
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["rows_read"] == data["features_written"] == 3
    assert data["balanced"] is True
    assert data["info"]["encoding"] == "cp1252"
    assert data["info"]["crs"] == "EPSG:2154"


def test_some_rows_rejected_exits_1(tmp_path: Path) -> None:
    rows = _valid_rows()
    rows[1]["categorie"] = "Piscine"
    x, y = project(2.35, 48.85, "EPSG:2154")  # Paris
    rows.append({**rows[0], "nom": "Tour Eiffel", "X": f"{x:.2f}", "Y": f"{y:.2f}"})
    rows.append({**rows[0], "nom": "Mixte", "X": str(INSIDE[2][0]), "Y": str(INSIDE[2][1])})
    path = _l93_csv(tmp_path / "some.csv", rows)
    report = tmp_path / "report.json"
    rejects = tmp_path / "rejects.csv"
    result = run(
        "validate", path, "--layer", "equipements", "--report", report, "--rejects", rejects,
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["rows_read"] == 5
    assert data["features_written"] == 2
    assert data["rows_rejected"] == 3
    assert data["rows_read"] == (
        data["features_written"] + data["rows_rejected"] + data["rows_merged"]
    )
    by_row = {r["row"]: r for r in data["rejects"]}
    assert set(by_row) == {2, 4, 5}
    assert by_row[2]["field"] == "categorie"
    assert by_row[2]["values"]["categorie"] == "Piscine"
    assert by_row[4]["field"] == "geometry"
    assert "outside the territory" in by_row[4]["reason"]
    assert "EPSG:4326" in by_row[5]["reason"]
    assert "EPSG:2154" in by_row[5]["reason"]
    assert by_row[5]["values"]["nom"] == "Mixte"
    with rejects.open(encoding="utf-8", newline="") as fh:
        lines = list(csv.DictReader(fh))
    assert [line["row"] for line in lines] == ["2", "4", "5"]
    assert lines[0]["nom"] == "Médiathèque 2"
    assert lines[0]["reason"].startswith("'Piscine' is not one of")
    assert "row 2 categorie:" in result.stdout


def test_all_rows_outside_territory_exits_1(tmp_path: Path) -> None:
    rows = _valid_rows()
    for row in rows:
        row["X"], row["Y"] = (f"{v:.2f}" for v in project(2.35, 48.85, "EPSG:2154"))
    path = _l93_csv(tmp_path / "paris.csv", rows)
    report = tmp_path / "report.json"
    result = run("validate", path, "--layer", "equipements", "--report", report, cwd=tmp_path)
    assert result.returncode == 1
    data = json.loads(report.read_text(encoding="utf-8"))
    assert (data["rows_read"], data["features_written"], data["rows_rejected"]) == (3, 0, 3)
    reason = "outside the territory (Communauté d'agglomération du Grand Cahors)"
    assert data["reject_reasons"] == {f"geometry: {reason}": 3}
    assert [(r["row"], r["field"], r["reason"]) for r in data["rejects"]] == [
        (1, "geometry", reason), (2, "geometry", reason), (3, "geometry", reason)
    ]
    assert [r["values"]["nom"] for r in data["rejects"]] == [row["nom"] for row in rows]
    # The terminal groups the three rows under their one reason.
    assert f"3 × rows 1, 2, 3 geometry: {reason}" in " ".join(result.stdout.split())
    assert "row 2 geometry" not in result.stdout


def test_wrong_layer_exits_1(tmp_path: Path) -> None:
    rows = [{**row, "categorie": "borne_exterieure", "ssid": "WiFi4EU"} for row in _valid_rows()]
    path = _l93_csv(tmp_path / "wifi.csv", rows)
    report = tmp_path / "report.json"
    result = run("validate", path, "--layer", "equipements", "--report", report, cwd=tmp_path)
    assert result.returncode == 1
    data = json.loads(report.read_text(encoding="utf-8"))
    assert (data["rows_read"], data["features_written"], data["rows_rejected"]) == (3, 0, 3)
    assert {r["field"] for r in data["rejects"]} == {"categorie"}
    assert "columns not used: ssid" in " ".join(data["notes"])


def test_missing_required_column_exits_1(tmp_path: Path) -> None:
    rows = [{k: v for k, v in row.items() if k != "nom"} for row in _valid_rows()]
    path = _l93_csv(tmp_path / "sans_nom.csv", rows)
    report = tmp_path / "report.json"
    result = run("validate", path, "--layer", "equipements", "--report", report, cwd=tmp_path)
    assert result.returncode == 1
    assert "no column for required field 'nom'" in result.stdout
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["rows_rejected"] == 3
    assert {r["field"] for r in data["rejects"]} == {"nom"}


def test_crs_delimiter_and_mapping_options(tmp_path: Path) -> None:
    x, y = project(LON, LAT, "EPSG:3945")
    path = tmp_path / "cc45.txt"
    path.write_text(f"LIBELLE|THEME|EST|NORD|MAJ\nMairie|administratif|{x}|{y}|2026-09-15\n",
                    encoding="utf-8")
    mapping = tmp_path / "source.yml"
    mapping.write_text(
        "layer: wifi\npath: ignored.csv\n"
        "mapping: {nom: LIBELLE, categorie: THEME, date_maj: MAJ}\n"
        "geometry: {x: EST, y: NORD}\n",
        encoding="utf-8",
    )
    report = tmp_path / "r.json"
    result = run(
        "validate", path, "--layer", "equipements", "--mapping", mapping, "--crs", "EPSG:3945",
        "--delimiter", "|", "--report", report, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["layer"] == "equipements"
    assert data["info"]["crs"] == "EPSG:3945"
    assert data["info"]["delimiter"] == "|"


def test_layers_command(tmp_path: Path) -> None:
    result = run("layers", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert sorted(data) == ["conteneurs", "equipements", "telesante", "tiers_lieux", "wifi"]


def test_layers_command_with_a_broken_layer(tmp_path: Path) -> None:
    broken = tmp_path / "layers"
    broken.mkdir()
    (broken / "wifi.yml").write_text("id: wifi\ncolour: red\n", encoding="utf-8")
    env = {**os.environ, "GEOCOMMUNS_LAYERS_DIR": str(broken)}
    result = subprocess.run(
        [str(GEOCOMMUNS), "layers"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "wifi.yml" in result.stderr
    assert "colour: remove this key or fix its spelling" in result.stderr


def test_version(tmp_path: Path) -> None:
    result = run("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*\n", result.stdout)
