"""Mixed load: reads and Part 4 writes together, on both backends (issue 16).

``python -m bench.mixed_load`` starts ``geocommuns serve`` on the synthetic layers of
:mod:`bench.synth` (a scratch copy of the GeoPackage, which the server writes into; or a
throwaway PostGIS cluster it is published into), creates writers with
``geocommuns users add`` on that store, and runs for ``--duration`` seconds (default 300)
``--connections`` clients (default 16) on 127.0.0.1, each sending, at random (seeded):

- 90 % reads: a page (``limit=100`` at a random offset), a commune's bbox, a filter (a
  CQL2 category or a commune outline with ``S_INTERSECTS``), an item by id;
- 10 % writes, each with one of the writers' tokens: a create (``POST``), an update
  (``PATCH`` with the ``If-Match`` of a ``GET``) of one of twenty features every writer
  updates (so writers race: a ``412 Precondition Failed`` is expected then), or the
  delete of a feature this client created.

Checked at the end: no answer other than the expected ones (reads 200, creates 201,
updates and deletes 204 or 412), ``numberMatched`` of the layer equal to the table's
count, and every successful write in the journal (one entry each, by its writer). The
resident memory (RSS) of each server worker is read after a warm-up and at the end.

Writes ``bench/MIXED_LOAD.md`` (appending one section per run) and ``bench/mixed_load.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg

from bench.backends import ROOT, Workspace, running
from bench.cases import commune_bboxes, commune_polygons
from bench.serving import LAYER, dataset
from bench.synth import TERRITORY
from geocommuns.definitions.layerdef import layers_from_dir
from geocommuns.definitions.territory import territory_from_spec
from geocommuns.publish.postgis import publish
from harness.postgres import throwaway_postgis

GEOJSON = "application/geo+json"
#: Features every writer updates (their races give the expected 412s).
HOT = 20
WRITERS = ("charge-ecriture-1", "charge-ecriture-2", "charge-ecriture-3", "charge-ecriture-4")
#: Expected statuses per kind of request.
EXPECTED = {
    "page": {200}, "bbox": {200}, "filter": {200}, "item": {200},
    "etag": {200}, "create": {201}, "update": {204, 412}, "delete": {204, 412},
}


@dataclasses.dataclass
class Tally:
    """What the clients saw."""

    statuses: Counter[tuple[str, int]] = dataclasses.field(default_factory=Counter)
    latencies: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    unexpected: list[str] = dataclasses.field(default_factory=list)
    writes_ok: Counter[str] = dataclasses.field(default_factory=Counter)

    def note(self, kind: str, status: int, ms: float, detail: str = "") -> None:
        """Count one answer."""
        self.statuses[kind, status] += 1
        self.latencies.setdefault(kind, []).append(ms)
        if status not in EXPECTED[kind] and len(self.unexpected) < 20:
            self.unexpected.append(f"{kind} {status} {detail[:200]}")


def worker_rss(master: int) -> dict[int, int]:
    """RSS (kB) of each child (gunicorn worker) of ``master``."""
    out = {}
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except OSError:
        return out
    for pid in children:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out[int(pid)] = int(line.split()[1])
        except OSError:
            continue
    return out


def add_writers(env: dict[str, str]) -> dict[str, str]:
    """``geocommuns users add`` for each writer (admins); their tokens."""
    tokens = {}
    for name in WRITERS:
        done = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "geocommuns"), "users", "add", name, "--role", "admin"],
            env={**os.environ, **env}, capture_output=True, text=True, check=False, cwd=ROOT,
        )
        if done.returncode != 0:
            msg = f"geocommuns users add {name} failed: {done.stdout[-500:]} {done.stderr[-1500:]}"
            raise RuntimeError(msg)
        tokens[name] = done.stdout.strip().splitlines()[-1].strip()
    return tokens


class Client:
    """One of the connections: requests drawn at random, answers counted."""

    def __init__(self, n: int, http: httpx.AsyncClient, plan: dict[str, Any], tally: Tally) -> None:
        self.rng = random.Random(n)
        self.http, self.plan, self.tally = http, plan, tally
        self.mine: list[tuple[str, str]] = []  # (feature id, token) created by this client
        self.serial = 0

    async def _get(self, kind: str, path: str, **kw: Any) -> httpx.Response:
        started = time.perf_counter()
        r = await self.http.get(path, **kw)
        self.tally.note(kind, r.status_code, (time.perf_counter() - started) * 1000, path)
        return r

    async def read(self) -> None:
        """One read."""
        p, x = self.plan, self.rng.random()
        items = p["items"]
        if x < 0.28:
            await self._get("page", f"{items}?limit=100&offset={self.rng.randrange(p['features'] - 100)}")
        elif x < 0.56:
            await self._get("bbox", f"{items}?bbox={self.rng.choice(p['bboxes'])}&limit=100")
        elif x < 0.78:
            text = self.rng.choice(p["filters"])
            await self._get("filter", f"{items}?filter={urllib.parse.quote(text)}&limit=100")
        else:
            await self._get("item", f"{items}/synth-{LAYER}--{self.rng.randrange(HOT + 1, p['features'] + 1)}")

    async def write(self) -> None:
        """One write with a random writer's token."""
        p, x = self.plan, self.rng.random()
        token = self.rng.choice(list(p["tokens"].values()))
        auth = {"Authorization": f"Bearer {token}"}
        items = p["items"]
        if x < 0.4 or (x >= 0.8 and not self.mine):
            self.serial += 1
            body = {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [1.44 + self.rng.random() / 100, 44.45]},
                "properties": {"nom": f"Lieu de charge {self.serial} (exemple)", "categorie": "sport",
                               "date_maj": "2026-12-01", "source_id": f"charge-{id(self)}-{self.serial}"},
            }
            started = time.perf_counter()
            r = await self.http.post(items, json=body, headers={**auth, "Content-Type": GEOJSON})
            self.tally.note("create", r.status_code, (time.perf_counter() - started) * 1000, r.text)
            if r.status_code == 201:
                self.tally.writes_ok[self._name(token)] += 1
                self.mine.append((r.headers["Location"].rsplit("/", 1)[1], token))
        elif x < 0.8:
            fid = f"synth-{LAYER}--{self.rng.randrange(1, HOT + 1)}"
            got = await self._get("etag", f"{items}/{fid}", headers=auth)
            if got.status_code != 200:
                return
            started = time.perf_counter()
            r = await self.http.patch(
                f"{items}/{fid}", json={"properties": {"telephone": f"05 65 00 {self.rng.randrange(10, 99)} 00"}},
                headers={**auth, "If-Match": got.headers["ETag"], "Content-Type": GEOJSON},
            )
            self.tally.note("update", r.status_code, (time.perf_counter() - started) * 1000, r.text)
            if r.status_code == 204:
                self.tally.writes_ok[self._name(token)] += 1
        else:
            fid, owner = self.mine.pop()
            own = {"Authorization": f"Bearer {owner}"}
            got = await self._get("etag", f"{items}/{fid}", headers=own)
            if got.status_code != 200:
                return
            started = time.perf_counter()
            r = await self.http.delete(f"{items}/{fid}", headers={**own, "If-Match": got.headers["ETag"]})
            self.tally.note("delete", r.status_code, (time.perf_counter() - started) * 1000, r.text)
            if r.status_code == 204:
                self.tally.writes_ok[self._name(owner)] += 1

    def _name(self, token: str) -> str:
        return next(n for n, t in self.plan["tokens"].items() if t == token)

    async def run(self, until: float) -> None:
        """Requests until the monotonic time ``until``."""
        while time.monotonic() < until:
            try:
                if self.rng.random() < 0.1:
                    await self.write()
                else:
                    await self.read()
            except httpx.HTTPError as e:
                self.tally.note("page", 599, 0.0, f"{type(e).__name__}: {e}")


async def load(url: str, plan: dict[str, Any], *, connections: int, duration: float) -> Tally:
    """``connections`` clients for ``duration`` seconds."""
    tally = Tally()
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits,
                                 headers={"Accept": GEOJSON}) as http:
        until = time.monotonic() + duration
        await asyncio.gather(*(Client(i, http, plan, tally).run(until) for i in range(connections)))
    return tally


def _count_and_journal(backend: str, store: str) -> tuple[int, Counter[str]]:
    """The layer's rows and the journal's API entries per writer, read from the store."""
    query = (f"SELECT actor, count(*) FROM geocommuns_journal WHERE via = 'api' "
             f"AND actor IN ({', '.join(repr(w) for w in WRITERS)}) GROUP BY actor")
    if backend == "geocommuns-postgis":
        with psycopg.connect(store) as con:
            rows = con.execute(f'SELECT count(*) FROM "{LAYER}"').fetchone()
            journal = con.execute(query).fetchall()
    else:
        con = sqlite3.connect(store)
        try:
            rows = con.execute(f'SELECT count(*) FROM "{LAYER}"').fetchone()
            journal = con.execute(query).fetchall()
        finally:
            con.close()
    return int(rows[0]) if rows else -1, Counter({str(a): int(n) for a, n in journal})


def run_backend(backend: str, ws: Workspace, plan: dict[str, Any], *, connections: int,
                duration: float) -> dict[str, Any]:
    """Serve, add the writers, load, check; the run's figures."""
    store = ws.database_url if backend == "geocommuns-postgis" else str(ws.gpkg)
    # the synthetic features spread over the Lot: writes are checked against it
    ws.serve_env = {"GEOCOMMUNS_TERRITORY": TERRITORY}
    env = {"GEOCOMMUNS_ROOT": str(ROOT), "GEOCOMMUNS_OUTPUT": str(ws.gpkg), **ws.serve_env}
    if backend == "geocommuns-postgis":
        env["GEOCOMMUNS_DATABASE_URL"] = ws.database_url
    plan = {**plan, "tokens": add_writers(env)}
    with running(backend, ws) as server:
        plan["items"] = server.items
        asyncio.run(load(server.url, plan, connections=connections, duration=min(10.0, duration)))
        _, journal_before = _count_and_journal(backend, store)  # the warm-up's writes
        rss_before = worker_rss(server.process.pid)
        load_before = os.getloadavg()
        started = time.monotonic()
        tally = asyncio.run(load(server.url, plan, connections=connections, duration=duration))
        elapsed = time.monotonic() - started
        rss_after = worker_rss(server.process.pid)
        load_after = os.getloadavg()
        matched = httpx.get(f"{server.url}{server.items}?limit=1", headers={"Accept": GEOJSON},
                            timeout=60).json().get("numberMatched")
    rows, journal_after = _count_and_journal(backend, store)
    journal = journal_after - journal_before
    ok_writes = sum(tally.writes_ok.values())
    errors = sum(n for (kind, status), n in tally.statuses.items() if status not in EXPECTED[kind])
    p99 = {k: float(np.percentile(v, 99)) for k, v in tally.latencies.items() if v}
    return {
        "backend": backend, "connections": connections, "duration_s": round(elapsed, 1),
        "requests": sum(tally.statuses.values()),
        "rps": round(sum(tally.statuses.values()) / elapsed, 1),
        "statuses": {f"{k} {s}": n for (k, s), n in sorted(tally.statuses.items())},
        "p99_ms": {k: round(v, 1) for k, v in sorted(p99.items())},
        "errors": errors, "unexpected": tally.unexpected,
        "expected_412": sum(n for (_, s), n in tally.statuses.items() if s == 412),
        "writes_ok": ok_writes, "journal_entries": sum(journal.values()),
        "journal_per_writer_matches": dict(journal) == dict(tally.writes_ok),
        "number_matched": matched, "table_count": rows,
        "rss_kb_before": sorted(rss_before.values()), "rss_kb_after": sorted(rss_after.values()),
        "rss_growth_kb": sum(rss_after.get(p, 0) - v for p, v in rss_before.items()),
        "load_before": [round(v, 2) for v in load_before], "load_after": [round(v, 2) for v in load_after],
    }


def markdown(results: list[dict[str, Any]], command: str, features: int) -> str:
    """One section of MIXED_LOAD.md."""
    lines = [
        f"## {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {features:,} features",
        "",
        f"Command: `{command}`",
        "",
        "| backend | req/s | requests | errors | 412 (expected) | writes ok | journal entries "
        "| numberMatched / table count | worker RSS kB before → after (growth) | load avg before → after |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['backend']} | {r['rps']} | {r['requests']:,} | {r['errors']} | {r['expected_412']} "
            f"| {r['writes_ok']} | {r['journal_entries']}"
            f"{'' if r['journal_per_writer_matches'] else ' (per writer: MISMATCH)'} "
            f"| {r['number_matched']} / {r['table_count']} "
            f"| {', '.join(map(str, r['rss_kb_before']))} → {', '.join(map(str, r['rss_kb_after']))} "
            f"({r['rss_growth_kb']:+,}) | {r['load_before'][0]} → {r['load_after'][0]} |"
        )
    lines.append("")
    for r in results:
        lines.append(f"- {r['backend']}: answers {r['statuses']}; p99 ms {r['p99_ms']}")
        for u in r["unexpected"]:
            lines.append(f"  - unexpected: {u}")
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=200_000)
    parser.add_argument("--duration", type=float, default=300)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backends", default="geocommuns-gpkg,geocommuns-postgis")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench")
    args = parser.parse_args(argv)
    command = "python -m bench.mixed_load " + " ".join(argv if argv is not None else sys.argv[1:])
    source = dataset(args.features, 46, ROOT / "bench" / "data")
    layers = layers_from_dir(ROOT / "layers")
    territory = territory_from_spec(TERRITORY)
    rng = np.random.default_rng(16)
    categories = list(layers[LAYER].field("categorie").constraints.enum or [])
    plan: dict[str, Any] = {
        "features": args.features,
        "bboxes": commune_bboxes(territory, 200, rng),
        "filters": [f"categorie='{c}'" for c in categories]
        + [f"S_INTERSECTS(geometry, {p})" for p in commune_polygons(territory, 20, rng)],
    }
    results = []
    with tempfile.TemporaryDirectory(prefix="geocommuns-mixed-") as tmp:
        scratch = Path(tmp)
        gpkg = scratch / "mixed.gpkg"
        shutil.copyfile(source, gpkg)  # the server writes into it
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            if backend == "geocommuns-postgis":
                with throwaway_postgis("mixed") as url:
                    publish(url, gpkg, layers)
                    ws = Workspace(gpkg=gpkg, layer=LAYER, database_url=url, scratch=scratch,
                                   workers=args.workers)
                    results.append(run_backend(backend, ws, plan, connections=args.connections,
                                               duration=args.duration))
            else:
                ws = Workspace(gpkg=gpkg, layer=LAYER, database_url="", scratch=scratch,
                               workers=args.workers)
                results.append(run_backend(backend, ws, plan, connections=args.connections,
                                           duration=args.duration))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "mixed_load.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    report = args.out_dir / "MIXED_LOAD.md"
    head = "" if report.exists() else (
        "# Mixed load (issue 16): reads and Part 4 writes together\n\n"
        "Written by `python -m bench.mixed_load` (see its docstring); one section per run, "
        "newest last. The client (Python, asyncio) runs on the same 2 cores as the servers "
        "and PostgreSQL.\n\n"
    )
    with report.open("a", encoding="utf-8") as fh:
        fh.write(head + markdown(results, command, args.features) + "\n")
    print(markdown(results, command, args.features))


if __name__ == "__main__":
    main()
