"""The technician and indicators notebooks run from top to bottom and find what they should."""

from __future__ import annotations

from datetime import date

import notebook
import pytest
from conftest import ROOT

from geocommuns.ingest.build import build
from geocommuns.publish.indicators import compute_indicators
from geocommuns.settings import Settings

pytestmark = pytest.mark.slow  # each test runs a notebook in a Jupyter kernel

NOTEBOOKS = ROOT / "notebooks"
ENV = {"GEOCOMMUNS_ROOT": str(ROOT), "GEOCOMMUNS_INDICATORS_DATE": "2026-11-01"}


def test_technician_notebook_validates_reads_and_fixes_a_delivery(tmp_path):
    nb = notebook.run_notebook(NOTEBOOKS / "technicien.ipynb", cwd=tmp_path, env=ENV)
    summary = notebook.json_printed(nb, "summary")
    # The draft maps the stream to the installation column: every row is rejected.
    assert summary["draft"] == {"read": 24, "written": 0, "rejected": 24}
    # Fixed: only the three deliberate flaws of the Cahors sample remain (see its README).
    assert summary["fixed"] == {"read": 24, "written": 21, "rejected": 3, "balanced": True}
    assert summary["fixed_reject_fields"] == ["flux", "geometry", "nom"]
    assert summary["warnings"] == ["code_postal"]
    assert summary["cli_exit"] == 1
    assert summary["rejects_csv_rows"] == 3
    assert (tmp_path / "livraison" / "rejets.csv").exists()
    assert "text/html" in notebook.output_types(nb)  # the report tables


def test_indicators_notebook_matches_the_library_and_writes_the_dashboard(tmp_path, layers, grand_cahors):
    nb = notebook.run_notebook(NOTEBOOKS / "indicateurs.ipynb", cwd=tmp_path, env=ENV)
    summary = notebook.json_printed(nb, "summary")
    reference = tmp_path / "reference"
    settings = Settings(root=ROOT, output=reference / "g.gpkg", report_dir=reference)
    build(settings)
    expected = compute_indicators(settings.output, layers, grand_cahors, today=date(2026, 11, 1))
    assert summary["date"] == "2026-11-01"
    assert summary["communes"] == 36
    assert summary["wifi_communes"] == expected["wifi"]["communes_couvertes"] >= 1
    assert summary["communes_without_wifi"] == 36 - summary["wifi_communes"]
    assert summary["features"] == {k: v["objets"] for k, v in expected["couches"].items()}
    assert summary["freshness"] == expected["fraicheur"]["ensemble"]
    assert summary["tiers_lieux_epci"] == [["200023737", expected["tiers_lieux_par_epci"][0]["tiers_lieux"], True]]
    assert summary["dashboard_svgs"] == 4
    assert (tmp_path / "webmap" / "indicateurs.html").exists()
    assert "image/png" in notebook.output_types(nb)  # the inline plots


def test_notebooks_are_committed_without_outputs():
    import nbformat

    for name in ("technicien.ipynb", "indicateurs.ipynb"):
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, name
