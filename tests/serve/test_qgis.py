"""QGIS (Debian's python3-qgis) reads the PostGIS-backed collections a technician edits.

A technician of Cahors corrects a feature through Part 4 (httpx, with their token and
the ETag); QGIS's OAPIF provider then shows the correction. QGIS 3.22's OAPIF provider
is read-only (it reports no editing capability) and has no authentication method that
sends an ``Authorization: Bearer`` header, so the edit itself cannot be made from it:
the test records both facts, so a QGIS upgrade that changes them is noticed.
Skipped when QGIS is not installed (``apt-get install qgis python3-qgis``), failed instead
when ``GEOCOMMUNS_REQUIRE_QGIS=1`` (CI, ``.ci/run``).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import psycopg
import pytest
from conftest import SYSTEM_PYTHON, require_qgis
from ogcserver import served_sample

from geocommuns.contrib.auth import add_user

pytestmark = pytest.mark.slow  # a real server on PostGIS, and QGIS

SCRIPT = Path(__file__).with_name("qgis_oapif.py")
LAYERS = ["equipements", "conteneurs", "wifi", "tiers_lieux", "telesante"]


@pytest.fixture(scope="module", autouse=True)
def _qgis() -> None:
    """Before any PostGIS database is made: skip without QGIS, fail if it is required."""
    require_qgis()


def test_qgis_loads_the_collections_and_sees_an_edit(tmp_path, layers, database_url):
    with served_sample(tmp_path, layers, "postgis", database_url=database_url, all_layers=True) as srv:
        assert srv.database_url
        with psycopg.connect(srv.database_url, autocommit=True) as conn:
            token = add_user(conn, "cahors", "contributor", commune="46042")
        auth = {"Authorization": f"Bearer {token}"}
        url = f"{srv.url}/collections/equipements/items/test-equipements--3"
        read = httpx.get(url, headers=auth, timeout=30)
        assert read.status_code == 200, read.text
        patch = {"properties": {"nom": "Médiathèque corrigée (exemple)"}}
        r = httpx.patch(url, json=patch, headers={**auth, "If-Match": read.headers["ETag"]}, timeout=30)
        assert r.status_code == 204, r.text

        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path)}
        env.pop("PYTHONPATH", None)
        done = subprocess.run(
            [SYSTEM_PYTHON, str(SCRIPT), srv.url, *LAYERS],
            capture_output=True, text=True, timeout=180, env=env, check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for name in LAYERS:
        info = report["layers"][name]
        assert info["valid"], name
        assert "nom" in info["fields"] and info["crs"] == "EPSG:4326"
        assert not set(info["fields"]) & set(layers[name].sensitive_fields), name
    assert "Médiathèque corrigée (exemple)" in report["layers"]["equipements"]["names"]
    assert len(report["layers"]["equipements"]["names"]) == 25
    # why the edit is not made from QGIS 3.22: a read-only provider, no bearer-header auth
    if report["qgis"].startswith("3.22"):
        assert not any(report["layers"]["equipements"]["editing"].values())
        assert "APIHeader" not in report["auth_methods"]
