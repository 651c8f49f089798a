"""``geocommuns refresh``, ``conflicts`` and ``history`` as a timer and a technician run them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from geocommuns.definitions.service import service_from_root

ROOT = Path(__file__).resolve().parents[2]
#: The sample deliveries of the example territory (the root service file's paths.sources).
SAMPLE_SOURCES = ROOT / service_from_root(ROOT).paths.sources
GEOCOMMUNS = str(Path(sys.executable).with_name("geocommuns"))

pytestmark = pytest.mark.slow


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOCOMMUNS_")}
    env.update(
        GEOCOMMUNS_ROOT=str(ROOT), GEOCOMMUNS_SOURCES_DIR=str(tmp / "sources"),
        GEOCOMMUNS_OUTPUT=str(tmp / "geocommuns.gpkg"), GEOCOMMUNS_REPORT_DIR=str(tmp / "report"),
        GEOCOMMUNS_WEBMAP_DIR=str(tmp / "webmap"), GEOCOMMUNS_EXPORT_DIR=str(tmp / "export"),
        COLUMNS="200",
    )
    return env


def _run(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GEOCOMMUNS, *args], env=_env(tmp), capture_output=True, text=True, timeout=600)


def test_refresh_runs_every_step_and_says_what_needs_a_look(tmp_path):
    shutil.copytree(SAMPLE_SOURCES, tmp_path / "sources")
    done = _run(tmp_path, "refresh", "--no-osm")
    # the sample deliveries have rejected rows: every step ran, exit 1 asks for a look
    assert done.returncode == 1, done.stdout + done.stderr
    lines = {line.split()[1]: line.split()[0] for line in done.stdout.splitlines() if len(line.split()) > 2}
    assert lines["osm"] == "skipped" and lines["publish"] == "skipped"
    assert lines["build"] == "attention"
    assert lines["webmap"] == lines["export"] == lines["indicators"] == "ok"
    assert (tmp_path / "webmap" / "index.html").is_file()
    assert (tmp_path / "webmap" / "indicateurs.html").is_file()
    assert (tmp_path / "export" / "equipements" / "equipements.geojson").is_file()
    # the catalogue (Records, DCAT-AP) and the home page come last
    assert lines["catalogue"] == "ok"
    assert {p.name for p in (tmp_path / "export").glob("catalogue.*")} == {
        "catalogue.tinydb", "catalogue.jsonld", "catalogue.ttl", "catalogue.rdf"}
    assert (tmp_path / "webmap" / "accueil.html").is_file()
    # no conflict yet: exit 0; a feature's history starts with its import
    conflicts = _run(tmp_path, "conflicts", "--json")
    assert conflicts.returncode == 0 and conflicts.stdout.strip() == ""
    history = _run(tmp_path, "history", "46224-pradines-equipements--PRA03", "--json")
    steps = [json.loads(x) for x in history.stdout.splitlines()]
    assert history.returncode == 0 and steps[0]["kind"] == "import" and steps[0]["action"] == "added"
    unknown = _run(tmp_path, "history", "no-such-feature")
    assert unknown.returncode == 1 and "no history" in unknown.stderr + unknown.stdout


def test_a_failed_step_stops_the_refresh_with_exit_2(tmp_path):
    shutil.copytree(SAMPLE_SOURCES, tmp_path / "sources")
    broken = tmp_path / "sources" / "46191-mercues" / "bornes_wifi.geojson"
    broken.write_bytes(b"\x00\x01 not a GeoJSON file")
    done = _run(tmp_path, "refresh", "--no-osm")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    steps = [line.split()[1] for line in done.stdout.splitlines() if len(line.split()) > 2 and line.split()[0] in {"ok", "failed", "skipped", "attention"}]
    assert steps == ["osm", "build"]  # nothing after the failed build
    assert not (tmp_path / "geocommuns.gpkg").exists()  # nothing half-written
