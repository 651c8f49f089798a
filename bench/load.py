"""bench.load: one bounded load run with ``wrk`` (Debian package ``wrk``) against 127.0.0.1.

wrk keeps ``concurrency`` connections busy for ``duration`` seconds and reports
requests/s and latency percentiles. A generated Lua script makes it cycle through a list of
request paths (seeded bboxes, ids, offsets), so a server cannot answer the same query from a
cache. Every run is wrapped in ``timeout`` and only ever targets 127.0.0.1.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

#: Headers every benchmark request carries: what a web map or GDAL sends.
HEADERS = {"Accept": "application/geo+json", "Accept-Encoding": "gzip"}
_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_LATENCY = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


class LoadError(RuntimeError):
    """The load tool is missing or did not produce a report."""


@dataclass(frozen=True)
class Measurement:
    """What one load run measured."""

    requests: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int


def wrk_path() -> str:
    """The wrk executable.

    Raises
    ------
    LoadError
        When wrk is not installed.
    """
    found = shutil.which("wrk")
    if found is None:
        msg = "wrk is not installed; run: apt-get install -y wrk (see bench/README.md)"
        raise LoadError(msg)
    return found


def _lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def lua_script(paths: list[str]) -> str:
    """A wrk script sending the paths in order, round and round (per connection thread)."""
    items = ",\n  ".join(_lua_string(p) for p in paths)
    return (
        f"local paths = {{\n  {items}\n}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #paths + 1\n"
        '  return wrk.format("GET", paths[i])\n'
        "end\n"
    )


def parse_wrk(output: str) -> Measurement:
    """Read requests/s, p50, p99 and errors (non-2xx/3xx plus socket errors) from wrk's report.

    Parameters
    ----------
    output
        wrk's standard output, run with ``--latency``.

    Returns
    -------
    Measurement
        The numbers; latencies are None when no request completed.

    Raises
    ------
    LoadError
        When the text is not a wrk report.
    """
    rps = _RPS.search(output)
    total = _TOTAL.search(output)
    if rps is None or total is None:
        msg = f"wrk printed no report:\n{output.strip()[-2000:]}"
        raise LoadError(msg)
    latency = {q: float(v) * _UNITS_MS[u] for q, v, u in _LATENCY.findall(output)}
    errors = sum(int(v) for v in _NON_2XX.findall(output))
    socket = _SOCKET.search(output)
    if socket:
        errors += sum(int(v) for v in socket.groups())
    requests = int(total.group(1))
    return Measurement(
        requests=requests,
        rps=float(rps.group(1)),
        p50_ms=latency.get("50") if requests else None,
        p99_ms=latency.get("99") if requests else None,
        errors=errors,
    )


def run_load(
    base_url: str,
    paths: list[str],
    *,
    concurrency: int,
    duration: float,
    request_timeout: float = 30.0,
) -> Measurement:
    """Load ``base_url`` with ``concurrency`` connections for ``duration`` seconds.

    Parameters
    ----------
    base_url
        ``http://127.0.0.1:<port>``; any other host is refused.
    paths
        Request paths (with query strings), cycled through in order.
    concurrency
        Open connections (one wrk thread drives them all).
    duration
        Seconds of load.
    request_timeout
        A request slower than this counts as an error.

    Returns
    -------
    Measurement
        The run's numbers.

    Raises
    ------
    LoadError
        When the URL is not local, wrk is missing, or it does not report.
    """
    host = urllib.parse.urlsplit(base_url).hostname
    if host != "127.0.0.1":
        msg = f"refusing to load {base_url}: the benchmark only targets 127.0.0.1"
        raise LoadError(msg)
    if not paths:
        msg = "no request paths to send"
        raise LoadError(msg)
    seconds = max(1, round(duration))
    with tempfile.TemporaryDirectory(prefix="geocommuns-wrk-") as tmp:
        script = Path(tmp) / "paths.lua"
        script.write_text(lua_script(paths), encoding="utf-8")
        argv = [
            "timeout", "--kill-after=5", str(seconds + 2 * int(request_timeout) + 15),
            wrk_path(), "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency",
            f"--timeout={int(request_timeout)}s", "-s", str(script),
        ]
        for name, value in HEADERS.items():
            argv += ["-H", f"{name}: {value}"]
        argv.append(base_url + paths[0])
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        msg = f"wrk exited with {done.returncode}: {done.stderr.strip()[-500:]}"
        raise LoadError(msg)
    return parse_wrk(done.stdout)
