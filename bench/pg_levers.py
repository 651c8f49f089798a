"""PostGIS levers of the serving path, measured in process: ``python -m bench.pg_levers``.

The provider's own SQL for each case of the serving benchmark (captured from
:class:`geocommuns.serve.provider_postgis.PostGISProvider` on the synthetic layer) is run
again and again on one connection, each lever's two sides interleaved (A, B, A, B...) so
that the machine's other load hits both alike; the best (minimum) and median of N runs
are reported, with the load average beside the table:

``jit``
    ``SET jit = on`` (PostgreSQL's default) against ``off``: JIT compilation starts
    above ``jit_above_cost`` (100,000), which a count over a large table reaches.
``prepare``
    psycopg's server-side prepared statement (``prepare=True``, what the provider does)
    against a statement parsed and planned each time.
``json_agg``
    The page assembled by PostgreSQL as one JSON text (``json_agg``, what the provider
    does) against the same rows fetched one by one (each feature's JSON text) and joined
    in Python.

Usage::

    python -m bench.pg_levers --features 200000 --runs 30

Writes ``bench/PG_LEVERS.md``. Pool sizing is not measured here: gunicorn's sync workers
serve one request at a time, so a worker uses one pooled connection (see RESULTS.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg

from bench.backends import ROOT
from bench.cases import commune_bboxes, commune_polygons
from bench.serving import LAYER, dataset
from bench.synth import TERRITORY
from geocommuns.definitions.layerdef import layers_from_dir
from geocommuns.definitions.territory import territory_from_spec
from geocommuns.publish.postgis import publish
from geocommuns.serve.cql import parse_text
from geocommuns.serve.provider_postgis import PostGISProvider
from harness.postgres import throwaway_postgis

Statement = tuple[str, list[Any]]


class CapturingProvider(PostGISProvider):
    """The PostGIS provider, remembering the statements it runs."""

    def __init__(self, provider_def: dict[str, Any]) -> None:
        self.captured: list[Statement] = []
        super().__init__(provider_def)

    def _run(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        self.captured.append((sql, list(params)))
        return super()._run(sql, params)


def statements(url: str, numbers: int = 1) -> dict[str, list[Statement]]:
    """The provider's SQL for each case: ``{case: [count statement, page statement]}``."""
    provider = CapturingProvider(
        {"name": "PostGIS", "type": "feature", "data": url, "table": LAYER, "id_field": "id"}
    )
    territory = territory_from_spec(TERRITORY)
    import numpy as np

    rng = np.random.default_rng(46)
    bbox = [float(v) for v in commune_bboxes(territory, 1, rng)[0].split(",")]
    polygon = commune_polygons(territory, 1, rng)[0]
    calls: dict[str, dict[str, Any]] = {
        "limit100": {"limit": 100},
        "bbox": {"limit": 100, "bbox": bbox},
        "cql2": {"limit": 100, "filterq": parse_text("categorie='sport'")},
        "cql2-spatial": {"limit": 100, "filterq": parse_text(f"S_INTERSECTS(geometry, {polygon})")},
        "deep": {"limit": 100, "offset": 150_000},
    }
    out = {}
    for case, kwargs in calls.items():
        provider.captured = []
        provider.page(**kwargs)
        out[case] = [s for s in provider.captured if "features FROM" not in s[0]]
    return out


def timed(fn: Callable[[], object]) -> float:
    """Milliseconds one call of ``fn`` takes."""
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def ab(a: Callable[[], object], b: Callable[[], object], runs: int) -> tuple[list[float], list[float]]:
    """Interleaved runs of ``a`` and ``b`` (after one warm-up each): their times in ms."""
    a()
    b()
    ta, tb = [], []
    for _ in range(runs):
        ta.append(timed(a))
        tb.append(timed(b))
    return ta, tb


def _fmt(times: list[float]) -> str:
    return f"{min(times):.2f} / {statistics.median(times):.2f}"


def rows_fetch(con: psycopg.Connection[Any], sql: str, params: list[Any]) -> str:
    """The page's features fetched as rows (one JSON text each), joined in Python."""
    head, tail = sql.split("), '[]')::text FROM", 1)
    feature, order = head.removeprefix("SELECT count(*), coalesce(json_agg(").rsplit(" ORDER BY ", 1)
    inner = f"SELECT ({feature})::text FROM{tail} ORDER BY {order}"
    rows = con.execute(inner, params, prepare=True).fetchall()
    return "[" + ",".join(r[0] for r in rows) + "]"


def measure(url: str, runs: int) -> list[str]:
    """One line of the markdown table per lever and case."""
    lines = []
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("SET default_transaction_read_only = on")
        for case, stmts in statements(url).items():
            for sql, params in stmts:
                kind = "page" if "json_agg" in sql else "count"

                def jit(on: bool, sql: str = sql, params: list[Any] = params) -> Callable[[], object]:
                    def run() -> object:
                        con.execute(f"SET jit = {'on' if on else 'off'}")
                        return con.execute(sql, params, prepare=True).fetchall()

                    return run

                ta, tb = ab(jit(True), jit(False), runs)
                lines.append(f"| {case} | {kind} | jit on / off | {_fmt(ta)} | {_fmt(tb)} |")
                con.execute("SET jit = off")
                ta, tb = ab(
                    lambda sql=sql, params=params: con.execute(sql, params, prepare=True).fetchall(),
                    lambda sql=sql, params=params: con.execute(sql, params, prepare=False).fetchall(),
                    runs,
                )
                lines.append(f"| {case} | {kind} | prepared / not | {_fmt(ta)} | {_fmt(tb)} |")
                if kind == "page":
                    ta, tb = ab(
                        lambda sql=sql, params=params: con.execute(sql, params, prepare=True).fetchall(),
                        lambda sql=sql, params=params: rows_fetch(con, sql, params),
                        runs,
                    )
                    lines.append(f"| {case} | {kind} | json_agg / rows | {_fmt(ta)} | {_fmt(tb)} |")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "PG_LEVERS.md")
    args = parser.parse_args(argv)
    gpkg = dataset(args.features, 46, ROOT / "bench" / "data")
    layers = layers_from_dir(ROOT / "layers")
    before = os.getloadavg()
    started = dt.datetime.now(dt.UTC)
    with throwaway_postgis("levers") as url:
        publish(url, gpkg, layers)
        with psycopg.connect(url, autocommit=True) as con:
            con.execute("VACUUM ANALYZE")
        lines = measure(url, args.runs)
    after = os.getloadavg()
    text = [
        "# PostGIS levers of the serving path",
        "",
        f"`python -m bench.pg_levers --features {args.features} --runs {args.runs}` "
        f"({started:%Y-%m-%d %H:%M} UTC; see the module docstring). Each lever's two sides "
        "run interleaved on one connection, the provider's own SQL for each case; times in ms, "
        f"best / median of {args.runs}.",
        "",
        f"Load average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in before)}; "
        f"after: {', '.join(f'{v:.2f}' for v in after)} (2 cores shared with other work).",
        "",
        "| case | statement | lever (A / B) | A: best / median ms | B: best / median ms |",
        "|---|---|---|---:|---:|",
        *lines,
        "",
    ]
    args.out.write_text("\n".join(text), encoding="utf-8")
    print("\n".join(text))


if __name__ == "__main__":
    main()
