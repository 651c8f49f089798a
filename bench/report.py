"""bench.report: write the serving benchmark's ``results.json`` and ``RESULTS.md``.

``results.json`` is a list of measurements, one per backend, case, size and number of
connections (``backend``, ``case``, ``features``, ``concurrency``, ``rps``, ``p50_ms``,
``p99_ms``, ``errors``, plus ``requests``, ``bytes`` and ``encoding`` of the first answer
as sent, and ``check``: whether the answers were right). ``RESULTS.md`` describes the machine, gives the table, the ratios of
geocommuns to tipg, to stock pygeoapi on PostgreSQL and to the HTTP floor, and says which
goals of issue 21 are met.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from bench.cases import CASES

GEOCOMMUNS = ("geocommuns-postgis", "geocommuns-gpkg")
#: The goals of issue 21 at 4 connections: (backend, case, label, backend compared with,
#: minimum ratio of requests/s); below 1, "within 1/ratio×".
GOALS = (
    *((b, c, "tipg", "tipg", 10.0) for b in ("geocommuns-postgis",) for c in ("limit100", "bbox")),
    *(
        (b, c, "stock pygeoapi-PostgreSQL", "pygeoapi-postgresql", 20.0)
        for b in ("geocommuns-postgis",)
        for c in ("limit100", "bbox")
    ),
    *((b, c, "tipg", "tipg", 10.0) for b in GEOCOMMUNS for c in ("cql2", "cql2-spatial", "deep")),
    *(("geocommuns-gpkg", c, "HTTP floor", "http-floor", 1 / 3) for c in ("limit100", "item")),
)
#: The ratios tabulated: (label, backend compared with).
RATIOS = (
    ("tipg", "tipg"),
    ("stock pygeoapi-PostgreSQL", "pygeoapi-postgresql"),
    ("HTTP floor", "http-floor"),
)
#: p99 goal of geocommuns-postgis on these cases (issue 21).
GOAL_P99_CASES = ("limit100", "bbox")
GOAL_P99_MS = 50.0


@dataclass(frozen=True)
class Row:
    """One measurement (one line of results.json)."""

    backend: str
    case: str
    features: int
    concurrency: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    requests: int
    bytes: int
    encoding: str
    check: str


def write_json(rows: Sequence[Row], path: Path) -> None:
    """Write the measurements as a JSON list."""
    path.write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n", encoding="utf-8")


def _command(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return "absent"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0]
        if (done.stdout or done.stderr).strip()
        else "?"
    )


def machine_description(*, tipg_python: Path, postgres: str) -> list[str]:
    """Markdown lines describing the machine and the software versions.

    Parameters
    ----------
    tipg_python
        The tipg virtualenv's Python (to read tipg's version).
    postgres
        PostgreSQL and PostGIS versions, as the database reported them.

    Returns
    -------
    list
        Bullet lines.
    """
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    cpu = models[0] if models else "?"
    mem_kb = int(Path("/proc/meminfo").read_text(encoding="utf-8").split()[1])
    tipg = _command([str(tipg_python), "-c", "import tipg; print(tipg.__version__)"])
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores; memory {mem_kb / 1024 / 1024:.0f} GiB",
        f"- OS: {platform.platform()}; Python {platform.python_version()}",
        f"- pygeoapi {metadata.version('pygeoapi')}, gunicorn {metadata.version('gunicorn')}, "
        f"tipg {tipg} (own venv, uvicorn), {postgres}",
        f"- load tool: {_command(['wrk', '-v'])}",
    ]


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _name(backend: str) -> str:
    return f"**{backend}**" if backend in GEOCOMMUNS else backend


def _table(rows: Sequence[Row]) -> list[str]:
    out = [
        "| case | conn. | backend | req/s | p50 ms | p99 ms | errors | bytes | answers |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    order = {c: i for i, c in enumerate(CASES)}
    for r in sorted(rows, key=lambda r: (order.get(r.case, 99), r.concurrency)):
        out.append(
            f"| {r.case} | {r.concurrency} | {_name(r.backend)} | {r.rps:.1f} | {_fmt(r.p50_ms)} | "
            f"{_fmt(r.p99_ms)} | {r.errors if r.requests else 'none completed'} | {r.bytes}{' ' + r.encoding if r.encoding else ''} | {r.check} |"
        )
    return out


def _index(rows: Sequence[Row]) -> dict[tuple[str, str, int], Row]:
    return {(r.backend, r.case, r.concurrency): r for r in rows}


def _ratio(ours: Row | None, other: Row | None) -> str:
    if ours is None or other is None:
        return "not measured"
    if other.rps <= 0:
        return "∞ (other: 0 req/s)"
    text = f"{ours.rps / other.rps:.2f}×"
    if ours.errors:
        text += " (geocommuns errors)"
    return text


def _ratios(rows: Sequence[Row]) -> list[str]:
    idx = _index(rows)
    ours = [b for b in GEOCOMMUNS if any(r.backend == b for r in rows)]
    concurrencies = sorted({r.concurrency for r in rows})
    header = (
        "| case | conn. | "
        + " | ".join(f"{b} / {label}" for b in ours for label, _ in RATIOS)
        + " |"
    )
    out = [header, "|---|---:|" + "---:|" * (len(ours) * len(RATIOS))]
    for case in CASES:
        for c in concurrencies:
            if not any(r.case == case and r.concurrency == c for r in rows):
                continue
            cells = [
                _ratio(idx.get((b, case, c)), idx.get((other, case, c)))
                for b in ours
                for _, other in RATIOS
            ]
            out.append(f"| {case} | {c} | " + " | ".join(cells) + " |")
    return out


def _goal_lines(idx: dict[tuple[str, str, int], Row]) -> list[str]:
    """Each goal of :data:`GOALS`, the p99 goals and zero errors: met or not, and for a
    ratio missed, how far the HTTP floor itself is from the other backend."""
    lines = []
    for backend, case, label, other_name, goal in GOALS:
        ours, other = idx.get((backend, case, 4)), idx.get((other_name, case, 4))
        want = f"≥ {goal:g}×" if goal >= 1 else f"within {1 / goal:g}× (ratio ≥ {goal:.2f})"
        if ours is None or other is None or other.rps <= 0:
            lines.append(f"- {backend}, {case}: vs {label}, goal {want}: not measured")
            continue
        if other.check != "ok" or other.errors:
            lines.append(
                f"- {backend}, {case}: vs {label}, goal {want}: not comparable ({label} answered "
                f"{other.check!r} with {other.errors} errors: its requests/s count failures)"
            )
            continue
        ratio = ours.rps / other.rps
        verdict = "met" if ratio >= goal else "NOT met"
        line = f"- {backend}, {case}: {ratio:.2f}× {label}, goal {want}: **{verdict}**"
        floor = idx.get(("http-floor", case, 4))
        if ratio < goal and goal >= 1 and floor is not None:
            reach = floor.rps / other.rps
            line += f"; the HTTP floor itself is {reach:.1f}× {label}, so " + (
                "the serving stack alone bounds it here"
                if reach < goal
                else "what geocommuns does per request (database, JSON, Python) bounds it"
            )
        lines.append(line)
    for case in GOAL_P99_CASES:
        ours = idx.get(("geocommuns-postgis", case, 4))
        if ours is not None:
            ok = ours.p99_ms is not None and ours.p99_ms <= GOAL_P99_MS
            lines.append(
                f"- geocommuns-postgis, {case}: p99 {_fmt(ours.p99_ms)} ms, goal ≤ {GOAL_P99_MS:g} ms: "
                f"**{'met' if ok else 'NOT met'}**"
            )
    errors = [r for r in idx.values() if r.backend in GEOCOMMUNS and r.errors]
    lines.append(
        "- geocommuns, every case: zero errors: "
        + (
            "**met**"
            if not errors
            else "**NOT met** ("
            + ", ".join(f"{r.backend} {r.case} c={r.concurrency}: {r.errors}" for r in errors)
            + ")"
        )
    )
    wrong = [r for r in idx.values() if r.backend in GEOCOMMUNS and r.check != "ok"]
    lines.append(
        "- geocommuns, every case: answers checked: "
        + (
            "**met**"
            if not wrong
            else "**NOT met** ("
            + ", ".join(f"{r.backend} {r.case}: {r.check}" for r in wrong)
            + ")"
        )
    )
    return lines


def write_markdown(
    rows: Sequence[Row],
    path: Path,
    *,
    machine: list[str],
    setup: list[str],
    skipped: dict[str, str],
    notes: list[str],
) -> None:
    """Write RESULTS.md.

    Parameters
    ----------
    rows
        Every measurement.
    path
        Where to write.
    machine
        Lines from :func:`machine_description`.
    setup
        Lines describing the data, the cases and the run.
    skipped
        Backend to the reason it was not measured.
    notes
        Anything else the reader must know (shared machine, wrong answers...).
    """
    idx = _index(rows)
    features = sorted({r.features for r in rows})
    lines = [
        "# Serving benchmark: geocommuns against stock pygeoapi, tipg and the HTTP floor",
        "",
        "Generated by `bench/run` (see bench/README.md); raw numbers in `results.json`.",
        "",
        "## Machine",
        "",
        *machine,
        "",
        "## Run",
        "",
        *setup,
        "",
    ]
    if notes:
        lines += ["## Notes", "", *(f"- {n}" for n in notes), ""]
    if skipped:
        lines += ["## Backends not measured", ""]
        lines += [f"- **{b}**: {why}" for b, why in skipped.items()]
        lines.append("")
    lines += ["## Results", "", *_table(rows), "", "## Ratios (requests/s)", "", *_ratios(rows), ""]
    lines += ["## Goals of issue 21 (4 connections)", ""]
    if features != [200_000]:
        lines += [f"(The goals are stated for 200,000 features; this run had {features}.)", ""]
    lines += _goal_lines(idx)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
