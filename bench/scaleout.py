"""Scale-out benchmark: two ``geocommuns serve`` behind nginx over a primary and a streaming replica.

``python -m bench.scaleout`` (after ``bench/run`` installed what it needs; nginx from
Debian: ``scripts/debian-packages.sh nginx-light``):

1. starts a throwaway PostgreSQL + PostGIS cluster (the primary) and publishes the
   synthetic layers of :mod:`bench.synth` into it, then a hot standby of it
   (``pg_basebackup -R``, :func:`harness.postgres.replica`) and waits for its replay;
2. **single**: one ``geocommuns serve`` (``--workers`` workers) on the primary alone,
   loaded with wrk on each case of :mod:`bench.cases`;
3. **scale-out**: two ``geocommuns serve`` (``--workers`` workers each), reading from the
   replica (``GEOCOMMUNS_DATABASE_REPLICA_URLS``) and writing through the primary, behind
   Debian's nginx as load balancer (round robin), loaded
   the same way through nginx;
4. writes the table to ``bench/SCALEOUT.md`` (and ``bench/scaleout.json``), with the load
   average beside it.

Everything runs on one machine: the figures say what the scale-out path costs or gains
here, not what more machines would bring (see docs/exploitation.md).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.backends import ROOT
from bench.cases import make_cases
from bench.load import run_load, wrk_path
from bench.serving import LAYER, dataset
from bench.synth import TERRITORY
from geocommuns.definitions.layerdef import layers_from_dir
from geocommuns.definitions.territory import territory_from_spec
from geocommuns.publish.postgis import publish
from geocommuns.serve.pygeoapi_config import config_from_settings, write_config
from geocommuns.settings import Settings
from harness.postgres import cluster, replica, wait_for_replay
from harness.processes import Service, clean_environment, free_port, serve_argv, spawned

NGINX = """worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    upstream geocommuns {{
        # gunicorn's sync workers close each connection after the answer: no upstream
        # keep-alive; an instance busy past a timeout is not taken out of the rotation
        {servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://geocommuns;
            proxy_set_header Host $http_host;
            proxy_read_timeout 120s;
            # a page's Link header repeats its query (a CQL2 polygon) in every link
            proxy_buffer_size 64k;
            proxy_buffers 8 64k;
            proxy_busy_buffers_size 128k;
            proxy_buffering on;
        }}
    }}
}}
"""


@contextlib.contextmanager
def nginx(folder: Path, upstreams: Sequence[int]) -> Iterator[Service]:
    """Debian's nginx on a free port, balancing over ``upstreams`` (127.0.0.1 ports)."""
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(exe).exists():
        msg = "nginx is missing; run: scripts/debian-packages.sh nginx-light"
        raise SystemExit(msg)
    port = free_port()
    conf = folder / "nginx.conf"
    servers = "\n        ".join(f"server 127.0.0.1:{p} max_fails=0;" for p in upstreams)
    conf.write_text(NGINX.format(folder=folder, servers=servers, port=port), encoding="utf-8")
    argv = [exe, "-p", str(folder), "-c", str(conf), "-g", "daemon off;"]
    try:
        with spawned(argv, port=port, log=folder / "nginx.log") as service:
            yield service
    finally:
        errors = folder / "nginx-error.log"
        if errors.exists():
            tail = errors.read_text(errors="replace").splitlines()[-5:]
            print("nginx error log (last lines):", *tail, sep="\n  ")


@contextlib.contextmanager
def instance(folder: Path, config: Path, env: dict[str, str], workers: int) -> Iterator[Service]:
    """One ``geocommuns serve`` with ``env``."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = serve_argv(port, config, folder / "openapi.yml", workers=workers)
    with spawned(argv, port=port, log=folder / "server.log", env=clean_environment(env)) as s:
        yield s


def settle(url: str, timeout: float = 90) -> None:
    """Wait until ``url`` answers its landing page again (queued requests drained)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/", timeout=timeout).status_code < 500:
                break
        except httpx.HTTPError:
            time.sleep(1)
    time.sleep(1)


def load_all(url: str, cases: dict[str, Any], *, concurrency: int, duration: float,
             label: str) -> list[dict[str, Any]]:
    """wrk on every case through ``url``; one row each."""
    rows = []
    items = f"/collections/{LAYER}/items"
    for name, case in cases.items():
        settle(url)
        m = run_load(url, [items + s for s in case.suffixes], concurrency=concurrency, duration=duration)
        rows.append({"setup": label, "case": name, "concurrency": concurrency, "rps": round(m.rps, 1),
                     "p50_ms": m.p50_ms, "p99_ms": m.p99_ms, "errors": m.errors, "requests": m.requests})
        print(f"{label} {name} c={concurrency}: {m.rps:.1f} req/s p99 {m.p99_ms} errors {m.errors}")
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=200_000)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="workers per instance")
    parser.add_argument("--cases", default="limit100,bbox,item,cql2,cql2-spatial")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench")
    args = parser.parse_args(argv)
    wrk_path()
    gpkg = dataset(args.features, 46, ROOT / "bench" / "data")
    layers = layers_from_dir(ROOT / "layers")
    categories = list(layers[LAYER].field("categorie").constraints.enum or [])
    cases = {
        k: v for k, v in make_cases(features=args.features, id_prefix=f"synth-{LAYER}--",
                                     categories=categories, territory=territory_from_spec(TERRITORY)).items()
        if k in args.cases.split(",")
    }
    started = dt.datetime.now(dt.UTC)
    rows: list[dict[str, Any]] = []
    loads = {"before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="geocommuns-scaleout-") as tmp, cluster() as primary:
        scratch = Path(tmp)
        url = primary.create_database("scaleout")
        publish(url, gpkg, layers)
        with replica(primary) as standby:
            dbname = url.rsplit("/", 1)[1]
            standby_url = standby.url(dbname)
            lag = wait_for_replay(url, standby_url, timeout_s=120)
            settings = Settings(output=gpkg, database_url=url, root=ROOT)
            config = scratch / "pygeoapi-config.yml"
            write_config(config_from_settings(settings, extent="data", backend="postgis"), config)
            base = {"GEOCOMMUNS_ROOT": str(ROOT), "GEOCOMMUNS_OUTPUT": str(gpkg), "GEOCOMMUNS_DATABASE_URL": url}
            with instance(scratch / "single", config, base, args.workers) as single:
                rows += load_all(single.url, cases, concurrency=args.concurrency, duration=args.duration,
                                 label=f"single: 1 instance x {args.workers} workers, primary")
            scaled = {**base, "GEOCOMMUNS_DATABASE_REPLICA_URLS": standby_url}
            with instance(scratch / "a", config, scaled, args.workers) as a, \
                    instance(scratch / "b", config, scaled, args.workers) as b, \
                    nginx(scratch, [a.port, b.port]) as balancer:
                rows += load_all(balancer.url, cases, concurrency=args.concurrency, duration=args.duration,
                                 label=f"scale-out: nginx, 2 instances x {args.workers} workers, replica reads")
    loads["after"] = os.getloadavg()
    nginx_version = subprocess.run([shutil.which("nginx") or "nginx", "-v"], capture_output=True,
                                   text=True, check=False).stderr.strip()
    lines = [
        "# Scale-out: two instances behind nginx over a primary and a streaming replica",
        "",
        f"`python -m bench.scaleout --features {args.features} --concurrency {args.concurrency} "
        f"--duration {args.duration:g}` ({started:%Y-%m-%d %H:%M} UTC, {nginx_version}; see the "
        "module docstring). Replica caught up with the published layers in "
        f"{lag:.2f} s after publish. Load average (1, 5, 15 min) before: "
        f"{', '.join(f'{v:.2f}' for v in loads['before'])}; after: "
        f"{', '.join(f'{v:.2f}' for v in loads['after'])} (2 cores shared by both setups, both "
        "PostgreSQL clusters, nginx and wrk).",
        "",
        "| case | setup | conn. | req/s | p50 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name in cases:
        for r in rows:
            if r["case"] == name:
                lines.append(f"| {name} | {r['setup']} | {r['concurrency']} | {r['rps']} | {r['p50_ms']} "
                             f"| {r['p99_ms']} | {r['errors']} |")
    lines.append("")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "SCALEOUT.md").write_text("\n".join(lines), encoding="utf-8")
    (args.out_dir / "scaleout.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
