"""The harmonisation benchmark: its generated delivery and one small timed run end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from bench.harmonise import generate, main, to_markdown
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.sourcedef import source_from_yaml
from geocommuns.definitions.territory import Territory
from geocommuns.ingest.harmonise import harmonise_table
from geocommuns.ingest.reader import table_from_file

ROWS = 2000


@pytest.fixture(scope="module")
def delivery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("bench"), ROWS)


def test_delivery_is_a_commune_style_csv(delivery: Path) -> None:
    data = delivery.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # cp1252, as Excel writes it
    frame = pd.read_csv(delivery, sep=";", encoding="cp1252", dtype=str, keep_default_na=False)
    assert len(frame) == ROWS
    assert frame["X_L93"].str.contains(",").mean() > 0.95  # decimal commas
    assert (delivery.parent / "conteneurs.yml").read_text(encoding="utf-8").startswith(
        "# SAMPLE DATA"
    )


def test_generation_is_seeded(delivery: Path, tmp_path: Path) -> None:
    assert generate(tmp_path, ROWS).read_bytes() == delivery.read_bytes()


def test_delivery_exercises_every_reject_kind(
    delivery: Path, layers: dict[str, LayerDef], grand_cahors: Territory
) -> None:
    source = source_from_yaml(delivery.parent / "conteneurs.yml")
    table = table_from_file(delivery, source)
    report = harmonise_table(table, layers["conteneurs"], source, grand_cahors).report
    assert report.balanced
    kinds = set(report.summary()["reject_reasons"])
    assert kinds == {
        "flux: … is not one of",
        "nom: required value missing (column Libellé is empty)",
        "date_maj: … is not a date (use dd/mm/yyyy or yyyy-mm-dd)",
        f"geometry: outside the territory ({grand_cahors.name})",
        "geometry: no coordinates in columns …/…",
        "source_id: duplicate identifier … (first seen at row 1)",
    }
    assert 0.01 < report.rows_rejected / ROWS < 0.05
    fields = {w.field for w in report.warnings}
    assert {"nb_conteneurs", "horaires", "code_postal"} <= fields


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("ogr2ogr") is None, reason="needs ogr2ogr (gdal-bin)")
def test_benchmark_run_writes_table_and_json(tmp_path: Path) -> None:
    output = tmp_path / "harmonise.json"
    assert main(["--rows", "1500", "--label", "test", "--output", str(output)]) == 0
    results = json.loads(output.read_text(encoding="utf-8"))
    run = results["test"]["1500"]
    assert run["features_written"] + run["rows_rejected"] == 1500
    assert run["geocommuns"]["seconds"] > 0 and run["ogr2ogr"]["seconds"] > 0
    # Each peak is the process's own: ogr2ogr stays far below a Python process's size.
    assert 0 < run["ogr2ogr"]["peak_mb"] < run["geocommuns"]["peak_mb"]
    table = (tmp_path / "HARMONISE.md").read_text(encoding="utf-8")
    assert table == to_markdown(results)
    assert "| test | 1,500 |" in table
