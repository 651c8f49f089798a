"""The OGC API notebook (notebooks/ogcapi.ipynb) runs against a real server and finds what it should."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ogcserver import running_server, write_sample_gpkg, write_test_config

pytestmark = pytest.mark.slow  # a real server, and a notebook in a Jupyter kernel

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "ogcapi.ipynb"


def test_ogcapi_notebook_runs_against_the_service(tmp_path, layers, monkeypatch):
    gpkg = tmp_path / "geocommuns.gpkg"
    write_sample_gpkg(gpkg, layers)
    config = write_test_config(tmp_path, gpkg, layers)
    with running_server(tmp_path, config, workers=2) as srv:
        monkeypatch.setenv("GEOCOMMUNS_API_URL", srv.url)
        nb = nbformat.read(NOTEBOOK, as_version=4)
        client = nbclient.NotebookClient(
            nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        )
        client.execute(env={**os.environ, "GEOCOMMUNS_API_URL": srv.url})
    last = nb.cells[-1]["outputs"][0]["text"]
    summary = json.loads(last)
    assert summary["collections"] == sorted(layers)
    assert summary["filter_conformance"] is True
    # the sample server: 25 equipements in Cahors (lon 1.40..1.64): 11 in the box, 10 sport/culture
    assert summary["bbox_matched"] == 11
    assert summary["cql2_matched"] == 10
    assert summary["content_crs"] == "<http://www.opengis.net/def/crs/EPSG/0/2154>"
    xmin, xmax = summary["l93_x_range"]
    assert 560_000 < xmin < xmax < 600_000  # Lambert-93 metres around Cahors
