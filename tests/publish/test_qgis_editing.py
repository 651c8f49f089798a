"""A Cahors technician edits the layers from QGIS 3.22 (headless), through their own database login.

The whole path as a technician takes it: ``geocommuns users add`` (the login's password),
``geocommuns pg-service`` (their ``pg_service.conf``), ``geocommuns qgis-project`` (their
project), then Debian's QGIS opens the project and commits edits through its PostgreSQL
provider. An edit in Cahors succeeds, is journaled and served by the API, and outlives the
next publish; an edit in Pradines, a move into Pradines and a category outside the enum
are each refused with the reason, the tables unchanged.

Skipped without QGIS (``apt-get install qgis python3-qgis``), failed instead when
``GEOCOMMUNS_REQUIRE_QGIS=1`` (CI).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from conftest import CAHORS_LONLAT, ROOT, SYSTEM_PYTHON, require_qgis
from conftest import project as project_point
from ogcserver import served_sample

from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.territory import Territory
from geocommuns.publish import dbsecurity
from geocommuns.publish.postgis import publish
from geocommuns.publish.webmap import icon_svg

pytestmark = pytest.mark.slow  # a real server on PostGIS, CLI processes and QGIS

SCRIPT = Path(__file__).with_name("qgis_edit.py")
USER = "qgis_cahors"
CAHORS, PRADINES = "46042", "46224"
DOC = "(to_jsonb(t) - 'fid' - 'geom') || jsonb_build_object('geometry', ST_AsGeoJSON(t.geom, 9)::jsonb)"


@pytest.fixture(scope="module", autouse=True)
def _qgis() -> None:
    """Before any PostGIS database is made: skip without QGIS, fail if it is required."""
    require_qgis()


def _cli(database_url: str, *args: str) -> str:
    env = {**os.environ, "GEOCOMMUNS_DATABASE_URL": database_url, "COLUMNS": "200"}
    done = subprocess.run([str(Path(sys.executable).parent / "geocommuns"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _state(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    rows = conn.execute(f"SELECT {DOC} FROM wifi t ORDER BY fid").fetchall()
    entries = conn.execute("SELECT seq, actor, via, feature_id, action FROM geocommuns_journal ORDER BY seq").fetchall()
    return [r[0] for r in rows], entries


def _inside(territory: Territory, insee: str) -> tuple[float, float]:
    point = territory.communes[territory.communes["code_insee"] == insee].iloc[0].geometry.representative_point()
    return round(point.x, 6), round(point.y, 6)


def test_a_cahors_technician_edits_from_qgis(
    tmp_path: Path, layers: dict[str, LayerDef], grand_cahors: Territory, database_url: str
) -> None:
    pradines = _inside(grand_cahors, PRADINES)
    with served_sample(tmp_path, layers, "postgis", database_url=database_url) as srv, \
            psycopg.connect(database_url, autocommit=True) as owner:
        dbsecurity.publish_communes(owner, grand_cahors.communes)
        owner.execute(
            "INSERT INTO wifi (id, nom, categorie, code_insee, commune, epci, source, licence, date_maj, geom) "
            "VALUES ('test-wifi--pradines', 'Borne de Pradines', 'borne_exterieure', %s, 'Pradines', "
            "'200023737', 'test', 'etalab-2.0', '2026-01-15', ST_SetSRID(ST_MakePoint(%s, %s), 4326))",
            [PRADINES, *pradines],
        )
        # The technician's login, service entry and project, as the CLI gives them.
        out = _cli(database_url, "users", "add", USER, "--role", "contributor", "--commune", CAHORS)
        lines = out.strip().splitlines()
        password = lines[lines.index(next(x for x in lines if x.startswith("database login"))) + 1].strip()
        assert lines[-1].startswith("gct_")
        service = _cli(database_url, "pg-service", "--user", USER)
        assert service.startswith(f"[geocommuns-{USER}]") and "password" not in service
        project = tmp_path / "cahors.qgz"
        _cli(database_url, "qgis-project", "--user", USER, "--out", str(project))
        info = psycopg.conninfo.conninfo_to_dict(database_url)
        (tmp_path / "pg_service.conf").write_text(service, encoding="utf-8")
        pgpass = tmp_path / "pgpass"
        pgpass.write_text(f"{info['host']}:{info['port']}:{info['dbname']}:{USER}:{password}\n", encoding="utf-8")
        pgpass.chmod(0o600)
        assert password not in project.read_bytes().decode("latin-1")

        before = _state(owner)
        steps = [
            {"do": "set", "layer": "wifi", "id": "test-wifi--0", "field": "horaires", "value": "Mo-Fr 09:00-17:00"},
            {"do": "set", "layer": "wifi", "id": "test-wifi--pradines", "field": "horaires", "value": "24/7"},
            {"do": "move", "layer": "wifi", "id": "test-wifi--1", "lon": pradines[0], "lat": pradines[1]},
            {"do": "add", "layer": "wifi", "values": {"nom": "Antenne", "categorie": "antenne_5g"},
             "lon": 1.4417, "lat": 44.4475},
        ]
        (tmp_path / "steps.json").write_text(json.dumps(steps), encoding="utf-8")
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path),
               "PGSERVICEFILE": str(tmp_path / "pg_service.conf"), "PGPASSFILE": str(pgpass)}
        env.pop("PYTHONPATH", None)
        done = subprocess.run([SYSTEM_PYTHON, str(SCRIPT), str(project), str(tmp_path / "steps.json")],
                              capture_output=True, text=True, timeout=300, env=env, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout.strip().splitlines()[-1])

        # The project: five valid layers through the service, French names and set-up.
        assert report["read"] and report["crs"] == "EPSG:2154"
        assert set(report["layers"]) == set(layers)
        for layer_id, layer in layers.items():
            shown = report["layers"][layer_id]
            assert shown["valid"] and not shown["read_only"], layer_id
            assert shown["name"] == layer.title.fr
            assert f"service='geocommuns-{USER}'" in shown["source"] and "password" not in shown["source"]
            assert f'table="public"."{layer_id}_qgis"' in shown["source"]  # the view
            # drawn as on the citizen map: a disc of the layer's colour, its icon in white
            (disc, _, _), (svg, _, icon) = shown["symbol"]
            assert (disc, svg) == ("SimpleMarker", "SvgMarker")
            assert shown["symbol"][0][1] == layer.style.colour
            drawn = base64.b64decode(icon.removeprefix("base64:")).decode("utf-8")
            assert drawn == icon_svg(layer.style.icon).replace('fill="currentColor"', 'fill="#ffffff"')
            for f in layer.fields:
                assert shown["fields"][f.name]["read_only"] == f.computed, (layer_id, f.name)
                assert shown["fields"][f.name]["alias"] == f.title
        categories = report["layers"]["wifi"]["fields"]["categorie"]
        assert categories["widget"] == "ValueMap"
        assert sorted(v for item in categories["value_map"] for v in item.values()) == sorted(
            layers["wifi"].field("categorie").constraints.enum)  # type: ignore[arg-type]
        # The initial view: the commune of Cahors (Lambert-93), not the whole EPCI.
        x, y = project_point(*CAHORS_LONLAT, "EPSG:2154")
        xmin, ymin, xmax, ymax = report["extent"]
        assert xmin < x < xmax and ymin < y < ymax
        assert xmax - xmin < 20_000 and ymax - ymin < 20_000

        # The edits: Cahors's hours committed; the three others refused with their reason.
        first, other, move, add = report["steps"]
        assert first["committed"], first
        assert not other["committed"] and "Pradines" in " ".join(other["errors"]), other
        assert not move["committed"] and "Pradines" in " ".join(move["errors"]), move
        assert not add["committed"] and "wifi_categorie_enum" in " ".join(add["errors"]), add
        rows, entries = _state(owner)
        changed = {r["id"]: r for r in rows}
        assert changed["test-wifi--0"]["horaires"] == "Mo-Fr 09:00-17:00"
        assert [r for r in rows if r["id"] != "test-wifi--0"] == [r for r in before[0] if r["id"] != "test-wifi--0"]
        assert [e[1:] for e in entries[len(before[1]):]] == [(USER, "qgis", "test-wifi--0", "update")]

        # The API serves the technician's value.
        served = httpx.get(f"{srv.url}/collections/wifi/items/test-wifi--0?f=json", timeout=30)
        assert served.status_code == 200, served.text
        assert served.json()["properties"]["horaires"] == "Mo-Fr 09:00-17:00"

        # The next publish of the build keeps it (the journal entry is replayed).
        publish(database_url, tmp_path / "geocommuns.gpkg", layers, communes=grand_cahors.communes)
        kept = owner.execute("SELECT horaires FROM wifi WHERE id = 'test-wifi--0'").fetchone()
        assert kept == ("Mo-Fr 09:00-17:00",)

        # users list shows the login; users revoke disables it at once.
        listed = _cli(database_url, "users", "list")
        assert USER in listed and "login" in listed.split(USER, 1)[1].splitlines()[0]
        _cli(database_url, "users", "revoke", USER)
        assert "disabled" in _cli(database_url, "users", "list").split(USER, 1)[1].splitlines()[0]
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(host=info["host"], port=info["port"], dbname=info["dbname"],
                            user=USER, password=password, connect_timeout=5)
