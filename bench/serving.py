"""bench.serving: the serving benchmark, every backend in one sitting on the same data.

``python -m bench.serving`` (what ``bench/run`` calls):

1. writes (or reuses) the synthetic GeoPackage of :mod:`bench.synth` under ``bench/data/``;
2. starts a throwaway PostgreSQL + PostGIS cluster on 127.0.0.1 (:mod:`harness.postgres`,
   the tests' too) and loads the layers with
   :func:`geocommuns.publish.postgis.publish`;
3. for each backend of :mod:`bench.backends`, in turn: starts it, checks its answer to
   every case (:mod:`bench.cases`), then loads it with wrk (:mod:`bench.load`) for each case
   and number of connections, and stops it; geocommuns' answers are captured first so the
   HTTP floor returns responses of the same size;
4. writes ``results.json`` and ``RESULTS.md`` (:mod:`bench.report`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import json
import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import psycopg

from bench.backends import (
    BACKENDS,
    ROOT,
    TIPG_VENV,
    BackendUnavailable,
    Server,
    Workspace,
    command_line,
    running,
)
from bench.cases import CASES, Case, make_cases, parse_body
from bench.floor import PREFIX, save_response
from bench.load import HEADERS, LoadError, run_load, wrk_path
from bench.report import Row, machine_description, write_json, write_markdown
from bench.synth import TERRITORY, write_synthetic_gpkg
from geocommuns.definitions.layerdef import layers_from_dir
from geocommuns.definitions.territory import territory_from_spec
from geocommuns.ingest.store import indexed_fields
from geocommuns.publish.postgis import publish
from harness.postgres import PACKAGES as POSTGIS_PACKAGES
from harness.postgres import postgis_available, throwaway_postgis

logger = logging.getLogger("bench.serving")

LAYER = "equipements"
#: Other layers are generated too (the server config lists all five), this many features.
OTHER_LAYERS_MAX = 10_000


def dataset(features: int, seed: int, data_dir: Path) -> Path:
    """The synthetic GeoPackage for this size and seed, generated when missing."""
    layers = layers_from_dir(ROOT / "layers")
    # a change of the layer definitions (or of the indexes a build makes of them) gives
    # another file name: never reuse stale data
    fields = json.dumps({k: [v.field_names, indexed_fields(v)] for k, v in sorted(layers.items())})
    digest = hashlib.sha256(fields.encode()).hexdigest()[:8]
    path = data_dir / f"synth-{features}-s{seed}-{digest}.gpkg"
    if path.exists():
        logger.info("reusing %s", path)
        return path
    counts = {k: features if k == LAYER else min(features, OTHER_LAYERS_MAX) for k in layers}
    data_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    write_synthetic_gpkg(path, counts, layers=layers, seed=seed)
    logger.info("wrote %s in %.0f s", path, time.monotonic() - start)
    return path


def fetch(client: httpx.Client, url: str) -> tuple[int, bytes, dict[str, str]]:
    """GET ``url`` with the benchmark's headers: status, raw body (as sent), headers."""
    with client.stream("GET", url, headers=HEADERS) as r:
        raw = b"".join(r.iter_raw())
        keep = {k: v for k, v in r.headers.items() if k.lower() in {"content-type", "content-encoding"}}
        return r.status_code, raw, keep


def check_case(client: httpx.Client, server: Server, case: Case) -> tuple[str, int, bytes, dict[str, str]]:
    """Check the answers to a case's first requests.

    Returns
    -------
    tuple
        ``ok`` or what is wrong, the raw size of the first answer, its body and headers.
    """
    verdict, first = "ok", None
    for suffix in case.suffixes[:3]:
        url = server.url + (server.items if server.backend != "http-floor" else PREFIX + case.name)
        if server.backend != "http-floor":
            url += suffix
        try:
            status, raw, headers = fetch(client, url)
        except httpx.HTTPError as e:
            return f"request failed ({type(e).__name__})", 0, b"", {}
        if first is None:
            first = (raw, headers)
        if server.backend == "http-floor":
            return ("ok" if status == 200 else f"HTTP {status}"), len(raw), raw, headers
        if status != 200:
            verdict = f"HTTP {status}"
            break
        gzipped = headers.get("content-encoding", "").lower() == "gzip"
        body = gzip.decompress(raw) if gzipped else raw
        problem = case.check(suffix, parse_body(body))
        if problem:
            verdict = problem
            break
    raw, headers = first or (b"", {})
    return verdict, len(raw), raw, headers


def wait_idle(server: Server, timeout: float = 90) -> None:
    """Wait until the server answers again (queued slow requests have drained)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(server.url + "/", timeout=timeout).status_code < 500:
                break
        except httpx.HTTPError:
            time.sleep(1)
    time.sleep(1)


def bench_backend(
    backend: str,
    ws: Workspace,
    cases: dict[str, Case],
    *,
    features: int,
    concurrencies: Sequence[int],
    duration: float,
    notes: list[str],
    commands: dict[str, str],
) -> list[Row]:
    """Start one backend, check and load every case, stop it; its measurements."""
    rows = []
    with running(backend, ws) as server, httpx.Client(timeout=120) as client:
        logger.info("%s up at %s", backend, server.url)
        commands[backend] = " ".join(Path(a).name if a.startswith("/") and Path(a).is_file() else a
                                     for a in server.argv)
        if backend == "geocommuns-gpkg":
            ws.serve_argv = command_line(server.process.pid)
        checks = {}
        for name, case in cases.items():
            verdict, size, raw, headers = check_case(client, server, case)
            checks[name] = (verdict, size, headers.get("content-encoding", ""))
            if backend == "geocommuns-gpkg" and ws.floor_dir is not None:
                save_response(ws.floor_dir, name, raw, headers)
            if verdict != "ok":
                notes.append(f"{backend}, {name}: {verdict}")
            logger.info("  %s: %s, %d bytes", name, verdict, size)
        for name, case in cases.items():
            paths = (
                [PREFIX + name] if backend == "http-floor"
                else [server.items + s for s in case.suffixes]
            )
            for c in concurrencies:
                wait_idle(server)
                try:
                    m = run_load(server.url, paths, concurrency=c, duration=duration)
                except LoadError as e:
                    notes.append(f"{backend}, {name}, {c} connections: load run failed ({e})")
                    continue
                verdict, size, encoding = checks[name]
                rows.append(Row(
                    backend=backend, case=name, features=features, concurrency=c,
                    rps=round(m.rps, 2),
                    p50_ms=None if m.p50_ms is None else round(m.p50_ms, 2),
                    p99_ms=None if m.p99_ms is None else round(m.p99_ms, 2),
                    errors=m.errors, requests=m.requests, bytes=size, encoding=encoding,
                    check=verdict,
                ))
                logger.info("  %s c=%d: %.1f req/s p50 %s p99 %s errors %d", name, c, m.rps,
                            m.p50_ms, m.p99_ms, m.errors)
        wait_idle(server)
        rss = process_rss(server.process.pid)
        if rss:
            notes.append(f"{backend}: resident memory (RSS) after its runs, master and workers: "
                         + ", ".join(f"{kb / 1024:.0f} MB" for kb in rss))
    return rows


def process_rss(pid: int) -> list[int]:
    """RSS (kB) of ``pid`` and its descendants (a server's master and workers)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop(0)
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out.append(int(line.split()[1]))
            todo += [int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except OSError:
            continue
    return out


def _git_state() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                          capture_output=True, text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "geocommuns"],
                           cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
    return f"{head}" + (" with uncommitted changes in geocommuns/" if dirty else "")


def main(argv: Sequence[str] | None = None) -> None:
    """Command line of the serving benchmark."""
    parser = argparse.ArgumentParser(description="Serving benchmark (see bench/README.md).")
    parser.add_argument("--features", type=int, default=200_000,
                        help="features of the benchmarked layer: 10000, 200000 or 1000000")
    parser.add_argument("--duration", type=float, default=10, help="seconds of load per run")
    parser.add_argument("--concurrency", default="1,4", help="connections, comma-separated")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--seed", type=int, default=46)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "bench" / "data")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench",
                        help="where RESULTS.md and results.json go")
    parser.add_argument("--note", action="append", default=[],
                        help="a note for RESULTS.md (e.g. 'machine shared during the run')")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    wrk_path()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backends {unknown}; backends are: {', '.join(BACKENDS)}")
    # geocommuns first: the floor replays its answers
    backends.sort(key=lambda b: (b != "geocommuns-gpkg", b == "http-floor"))
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    wanted = [c.strip() for c in args.cases.split(",") if c.strip()]

    gpkg = dataset(args.features, args.seed, args.data_dir)
    layers = layers_from_dir(ROOT / "layers")
    territory = territory_from_spec(TERRITORY)
    all_cases = make_cases(
        features=args.features, id_prefix=f"synth-{LAYER}--",
        categories=list(layers[LAYER].field("categorie").constraints.enum or []),
        territory=territory, seed=args.seed,
    )
    cases = {k: v for k, v in all_cases.items() if k in wanted}
    if not postgis_available():
        msg = f"PostgreSQL with PostGIS is missing; run: apt-get install -y {POSTGIS_PACKAGES}"
        raise SystemExit(msg)
    notes = list(args.note)
    rows: list[Row] = []
    skipped: dict[str, str] = {}
    commands: dict[str, str] = {}
    load_before = os.getloadavg()
    started = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="geocommuns-bench-") as tmp, \
            throwaway_postgis("bench") as url:
        t = time.monotonic()
        publish(url, gpkg, layers)
        logger.info("published to PostGIS in %.0f s", time.monotonic() - t)
        with psycopg.connect(url) as conn:
            pg = conn.execute("SELECT split_part(version(), ' on ', 1), postgis_lib_version()").fetchone()
        postgres = f"{pg[0]}, PostGIS {pg[1]}" if pg else "PostgreSQL ?"
        ws = Workspace(gpkg=gpkg, layer=LAYER, database_url=url, scratch=Path(tmp),
                       workers=args.workers, floor_dir=Path(tmp) / "floor")
        for backend in backends:
            try:
                rows += bench_backend(backend, ws, cases, features=args.features,
                                      concurrencies=concurrencies, duration=args.duration,
                                      notes=notes, commands=commands)
            except BackendUnavailable as e:
                logger.warning("%s not measured: %s", backend, e)
                skipped[backend] = str(e).splitlines()[0][:400]
            except Exception as e:  # one broken backend must not lose the others' numbers
                logger.exception("%s failed", backend)
                skipped[backend] = f"the run failed: {type(e).__name__}: {str(e)[:300]}"
            args.out_dir.mkdir(parents=True, exist_ok=True)
            write_json(rows, args.out_dir / "results.json")  # partial results as we go
        machine = machine_description(tipg_python=TIPG_VENV / "bin" / "python", postgres=postgres)
    load_after = os.getloadavg()
    setup = [
        f"- {started:%Y-%m-%d %H:%M} UTC, geocommuns {_git_state()}",
        f"- data: `{LAYER}`, {args.features:,} synthetic features (seed {args.seed}) spread over "
        f"the Lot's communes; the four other layers {min(args.features, OTHER_LAYERS_MAX):,} each",
        f"- servers: {args.workers} workers each, 127.0.0.1; PostgreSQL in a throwaway cluster "
        "on the same machine",
        f"- load: wrk, one thread, {', '.join(map(str, concurrencies))} connections, "
        f"{args.duration:g} s per run, headers {', '.join(f'{k}: {v}' for k, v in HEADERS.items())}",
        "- cases: " + "; ".join(f"`{k}` {v.suffixes[0]}" for k, v in cases.items())
        + " (bbox, item, cql2 and deep cycle through seeded variants)",
        f"- load average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in load_before)}; "
        f"after: {', '.join(f'{v:.2f}' for v in load_after)}",
        "- the HTTP floor replays geocommuns-gpkg's answer to each case's first request",
        "- server command lines (ports differ per run):",
        *(f"  - {b}: `{c}`" for b, c in commands.items()),
    ]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_json(rows, args.out_dir / "results.json")
    write_markdown(rows, args.out_dir / "RESULTS.md", machine=machine, setup=setup,
                   skipped=skipped, notes=notes)
    logger.info("wrote %s and %s", args.out_dir / "RESULTS.md", args.out_dir / "results.json")


if __name__ == "__main__":
    main()
