"""kill -9 during a build, a publish and a write: the living store stays consistent.

Each test kills a real ``geocommuns`` process with SIGKILL at several moments of its run,
then compares the whole content of the layers and the journal with the state before and
the state after a complete run: it is always one or the other (per layer for a publish,
which swaps layer by layer), never a mix, and a rerun finishes the work with nothing lost
or duplicated.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from crash_writer import wsgi_call
from ogcserver import sample_database

from geocommuns.contrib.auth import add_user
from geocommuns.contrib.edits import EditService
from geocommuns.contrib.layerstore import store_from
from geocommuns.definitions.service import service_from_root
from geocommuns.ingest.build import build
from geocommuns.publish.postgis import publish
from geocommuns.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
#: The sample deliveries of the example territory (the root service file's paths.sources).
SAMPLE_SOURCES = ROOT / service_from_root(ROOT).paths.sources
LAYERS = ("equipements", "conteneurs", "wifi", "tiers_lieux", "telesante")
STADE = "46224-pradines-equipements--PRA03"
GEOCOMMUNS = str(Path(sys.executable).with_name("geocommuns"))
#: Moments of a run (fractions of its measured duration) at which it is killed.
FRACTIONS = (0.25, 0.55, 0.8, 0.9, 0.97)

pytestmark = pytest.mark.slow


def _project(tmp: Path, database_url: str | None) -> Settings:
    sources = tmp / "sources"
    if not sources.exists():
        shutil.copytree(SAMPLE_SOURCES, sources)
    return Settings(root=ROOT, sources_dir=sources, output=tmp / "geocommuns.gpkg",
                    report_dir=tmp / "report", database_url=database_url)


def _env(settings: Settings) -> dict[str, str]:
    env = {**os.environ, "GEOCOMMUNS_ROOT": str(ROOT), "GEOCOMMUNS_SOURCES_DIR": str(settings.sources_dir),
           "GEOCOMMUNS_OUTPUT": str(settings.output), "GEOCOMMUNS_REPORT_DIR": str(settings.report_dir)}
    env.pop("GEOCOMMUNS_DATABASE_URL", None)
    if settings.database_url:
        env["GEOCOMMUNS_DATABASE_URL"] = settings.database_url
    return env


def _gpkg_state(path: Path) -> dict[str, Any]:
    """Every row of every layer (without fid and import time), the journal and the conflicts."""
    with contextlib.closing(sqlite3.connect(path)) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        state: dict[str, Any] = {}
        for layer in LAYERS:
            cur = con.execute(f'SELECT * FROM "{layer}" ORDER BY id')
            names = [d[0] for d in cur.description]
            state[layer] = [
                {k: (v.hex() if isinstance(v, bytes) else v) for k, v in zip(names, row, strict=True)
                 if k not in {"fid", "imported_at"}}
                for row in cur
            ]
        state["journal"] = con.execute(
            "SELECT seq, action, feature_id, after FROM geocommuns_journal ORDER BY seq").fetchall()
        state["conflicts"] = con.execute(
            "SELECT layer, feature_id, field, status FROM geocommuns_conflicts ORDER BY id").fetchall()
    return state


def _pg_state(url: str) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        state: dict[str, Any] = {}
        for layer in LAYERS:
            state[layer] = [
                r[0] for r in conn.execute(
                    f"SELECT (to_jsonb(t) - 'fid' - 'imported_at' - 'geom') || "
                    f"jsonb_build_object('geom', ST_AsText(geom)) FROM {layer} t ORDER BY id"
                )
            ]
            count = conn.execute("SELECT features FROM geocommuns_layers WHERE layer = %s", [layer]).fetchone()
            assert count is not None and count[0] == len(state[layer])  # numberMatched stays exact
        state["journal"] = conn.execute(
            "SELECT seq, action, feature_id, after FROM geocommuns_journal ORDER BY seq").fetchall()
    return state


def _killed(argv: list[str], env: dict[str, str], after: float) -> None:
    """Run ``argv``, SIGKILL it ``after`` seconds in (if still running)."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=after)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def _timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def _admin(settings: Settings) -> str:
    store = store_from(settings.database_url, settings.path(settings.output))
    with store.writing() as db:
        return add_user(db, "admin-sig", "admin")


def _correct(settings: Settings, token: str, value: str) -> None:
    layers = {"equipements": _layers()["equipements"]}
    service = EditService(store_from(settings.database_url, settings.path(settings.output)), layers, "epci:200023737")
    path = f"/collections/equipements/items/{STADE}"
    _, headers, _ = wsgi_call(service, "GET", path, token)
    status, _, body = wsgi_call(service, "PATCH", path, token, {"properties": {"horaires": value}}, headers["ETag"])
    assert status.startswith("204"), body


def _layers() -> dict[str, Any]:
    from geocommuns.definitions.layerdef import layers_from_dir

    return layers_from_dir(ROOT / "layers")


def _redeliver(settings: Settings) -> None:
    import pyogrio

    shp = settings.path(settings.sources_dir) / "46224-pradines" / "equipements_pradines.shp"
    gdf = pyogrio.read_dataframe(shp)
    gdf.loc[gdf["CODE"] == "PRA01", "TEL"] = "05 65 22 21 99"
    gdf.loc[gdf["CODE"] == "PRA02", "NOM"] = "Gymnase Jean-Moulin"
    pyogrio.write_dataframe(gdf, shp, encoding="UTF-8")


def _files(gpkg: Path) -> list[Path]:
    return [gpkg, gpkg.with_name(gpkg.name + "-wal"), gpkg.with_name(gpkg.name + "-shm")]


def _restore(baseline: Path, gpkg: Path) -> None:
    for f in _files(gpkg):
        f.unlink(missing_ok=True)
    shutil.copy(baseline, gpkg)


def test_kill_during_build_leaves_the_old_or_the_new_store(tmp_path):
    settings = _project(tmp_path / "p", None)
    build(settings)
    token = _admin(settings)
    _correct(settings, token, "Mo-Fr 08:00-12:00")
    _redeliver(settings)
    gpkg = settings.path(settings.output)
    baseline = tmp_path / "baseline.gpkg"
    with contextlib.closing(sqlite3.connect(gpkg)) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(gpkg, baseline)
    old = _gpkg_state(gpkg)
    argv = [GEOCOMMUNS, "build", "--quiet"]
    duration = _timed(argv, _env(settings))
    new = _gpkg_state(gpkg)
    assert new != old and new["journal"] == old["journal"]
    seen = set()
    for fraction in FRACTIONS:
        _restore(baseline, gpkg)
        _killed(argv, _env(settings), duration * fraction)
        state = _gpkg_state(gpkg)
        assert state in (old, new), f"killed at {fraction:.0%} of the build: a mixed store"
        seen.add("new" if state == new else "old")
        _timed(argv, _env(settings))  # a rerun finishes the work
        assert _gpkg_state(gpkg) == new
    leftovers = [p.name for p in gpkg.parent.iterdir() if ".tmp-" in p.name]
    assert not leftovers, leftovers
    print(f"build of {duration:.1f} s killed at {FRACTIONS}: states seen {sorted(seen)}")


def test_kill_during_publish_leaves_each_layer_old_or_new(tmp_path, request, pg_cluster):
    settings = _project(tmp_path / "p", sample_database(request, "postgis", own=True))
    assert settings.database_url
    layers = _layers()
    build(settings)
    publish(settings.database_url, settings.path(settings.output), layers)
    token = _admin(settings)
    _correct(settings, token, "Mo-Fr 08:00-12:00")
    _redeliver(settings)
    build(settings)
    _correct(settings, token, "Mo-Fr 07:30-12:00")  # journaled after the build: publish replays it
    old = _pg_state(settings.database_url)
    argv = [GEOCOMMUNS, "publish"]
    # the duration of a whole publish, measured on a scratch database
    scratch = pg_cluster.create_database("crash_publish_scratch")
    try:
        scratch_env = dict(_env(settings), GEOCOMMUNS_DATABASE_URL=scratch)
        _timed(argv, scratch_env)
        duration = _timed(argv, scratch_env)
    finally:
        pg_cluster.drop_database(scratch)
    states = []
    for fraction in FRACTIONS:
        _killed(argv, _env(settings), duration * fraction)
        states.append(_pg_state(settings.database_url))
    _timed(argv, _env(settings))
    new = _pg_state(settings.database_url)
    stade = next(r for r in new["equipements"] if r["id"] == STADE)
    assert stade["horaires"] == "Mo-Fr 07:30-12:00"  # the edit made after the build is kept
    assert any(r["telephone"] == "+33565222199" for r in new["equipements"])  # the import is in
    for fraction, state in zip(FRACTIONS, states, strict=True):
        assert state["journal"] == old["journal"]
        for layer in LAYERS:
            assert state[layer] in (old[layer], new[layer]), f"{layer} half-published at {fraction:.0%}"
    assert new["journal"] == old["journal"]


@pytest.mark.parametrize("backend", ["gpkg", "postgis"])
def test_kill_during_writes_loses_and_duplicates_nothing(tmp_path, request, backend):
    settings = _project(tmp_path / "p", sample_database(request, backend, own=True))
    build(settings)
    if settings.database_url:
        publish(settings.database_url, settings.path(settings.output), _layers())
    token = _admin(settings)
    store = settings.database_url or str(settings.path(settings.output))
    writer = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("crash_writer.py")), store, "equipements", STADE, token],
        env=_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert writer.stdout is not None
    printed = []
    for _ in range(8):
        line = writer.stdout.readline().strip()
        assert line.startswith("Nom corrigé"), writer.stderr.read() if writer.stderr else line
        printed.append(line)
    time.sleep(0.137)  # lands in the middle of a write more often than not
    writer.send_signal(signal.SIGKILL)
    rest, _ = writer.communicate()
    printed += [x for x in rest.splitlines() if x.startswith("Nom corrigé")]

    def journal_and_value() -> tuple[list[str], str]:
        if settings.database_url:
            with psycopg.connect(settings.database_url) as conn:
                rows = conn.execute(
                    "SELECT after->>'nom' FROM geocommuns_journal WHERE feature_id = %s ORDER BY seq", [STADE]
                ).fetchall()
                value = conn.execute("SELECT nom FROM equipements WHERE id = %s", [STADE]).fetchone()
        else:
            with contextlib.closing(sqlite3.connect(settings.path(settings.output))) as con:
                assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                rows = con.execute(
                    "SELECT json_extract(after, '$.nom') FROM geocommuns_journal WHERE feature_id = ? ORDER BY seq", [STADE]
                ).fetchall()
                value = con.execute("SELECT nom FROM equipements WHERE id = ?", [STADE]).fetchone()
        assert value is not None
        return [r[0] for r in rows], str(value[0])

    journaled, value = journal_and_value()
    # every printed write is journaled, at most one more was committed before the kill
    assert journaled[: len(printed)] == printed
    assert len(journaled) - len(printed) in (0, 1)
    assert journaled == [f"Nom corrigé {i}" for i in range(len(journaled))]  # no duplicate
    assert value == journaled[-1]  # the table says what the journal says: no write without entry
    build(settings)  # a refresh keeps the last correction
    if settings.database_url:
        publish(settings.database_url, settings.path(settings.output), _layers())
    assert journal_and_value() == (journaled, value)
    print(json.dumps({"backend": backend, "writes_printed": len(printed), "journaled": len(journaled)}))
