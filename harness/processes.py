"""Servers in their own process group on 127.0.0.1: start, wait until they answer, stop.

:func:`spawned` runs any command line (gunicorn, uvicorn, ``geocommuns serve``) with its
output in a log file, waits until a URL answers 200 and, on the way out, stops the whole
process group (the master and its workers) by the group's id, never by name.
:func:`geocommuns_serve` is the one way tests and benchmarks start ``geocommuns serve``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

#: The repository root: servers run from there, as ``scripts/demo.sh`` does.
ROOT = Path(__file__).resolve().parents[1]
#: How long a server may take to answer its first request.
READY_TIMEOUT = 120.0
#: Prefixes of the environment variables that configure a server under test.
SERVER_VARIABLES = ("GEOCOMMUNS_", "PYGEOAPI_", "TIPG_")


class ServerNotReady(RuntimeError):
    """A server exited, or did not answer in time; the message ends with its log."""


@dataclass
class Service:
    """A running server and where to find it."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    argv: list[str] = field(default_factory=list)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any server setting, plus ``extra``.

    A server under test must be configured by its caller only, not by whatever
    ``GEOCOMMUNS_*``, ``PYGEOAPI_*`` or ``TIPG_*`` variables the shell happens to hold.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(SERVER_VARIABLES)}
    env.update(extra or {})
    return env


def _log_tail(log: Path, size: int = 1500) -> str:
    return log.read_text(errors="replace")[-size:] if log.exists() else "(no log)"


def wait_ready(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = READY_TIMEOUT
) -> None:
    """Wait until ``url`` answers 200.

    Raises
    ------
    ServerNotReady
        When the process exits or ``url`` does not answer in time (with the end of its log).
    """
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            msg = f"server exited with {process.returncode}:\n{_log_tail(log)}"
            raise ServerNotReady(msg)
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            msg = f"server not ready after {timeout:.0f} s:\n{_log_tail(log)}"
            raise ServerNotReady(msg)
        time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server's process group (its own, from ``start_new_session``): TERM, then KILL."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def spawned(
    argv: Sequence[str],
    *,
    port: int,
    log: Path,
    env: Mapping[str, str] | None = None,
    ready_path: str = "/",
    timeout: float = READY_TIMEOUT,
) -> Iterator[Service]:
    """Run ``argv`` (a server listening on ``port``) until the block ends, then stop it.

    Parameters
    ----------
    argv
        The command line; it runs from the repository root in a new session, so that
        stopping its process group stops its workers too.
    port
        The 127.0.0.1 port it listens on (see :func:`free_port`).
    log
        File receiving its standard output and error.
    env
        Its whole environment (default: this process's).
    ready_path
        Path that answers 200 once it is ready.
    timeout
        Seconds to wait for that answer.

    Raises
    ------
    ServerNotReady
        When it exits or does not answer in time; it is stopped first.
    """
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(argv), cwd=ROOT, env=dict(os.environ if env is None else env),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_ready(url + ready_path, process, log, timeout)
        yield Service(url=url, port=port, process=process, log=log, argv=list(argv))
    finally:
        stop(process)


def serve_argv(port: int, config: Path, openapi: Path, *, workers: int = 2) -> list[str]:
    """The ``geocommuns serve`` command line of this virtualenv, on 127.0.0.1:``port``."""
    exe = Path(sys.executable).parent / "geocommuns"
    return [
        str(exe), "serve", "--port", str(port), "--workers", str(workers),
        "--config", str(config), "--openapi", str(openapi),
    ]


@contextlib.contextmanager
def geocommuns_serve(
    folder: Path,
    config: Path,
    *,
    workers: int = 2,
    env: Mapping[str, str] | None = None,
    timeout: float = READY_TIMEOUT,
) -> Iterator[Service]:
    """``geocommuns serve`` on ``config`` and a free port, its files in ``folder``.

    Parameters
    ----------
    folder
        Receives the generated ``openapi.yml`` and the ``server.log``.
    config
        The pygeoapi configuration to serve.
    workers
        gunicorn workers.
    env
        The server's whole environment (default: this process's, with ``GEOCOMMUNS_ROOT``
        set to the repository root).
    timeout
        Seconds to wait for the landing page.
    """
    port = free_port()
    if env is None:
        env = {**os.environ, "GEOCOMMUNS_ROOT": str(ROOT)}
    argv = serve_argv(port, config, folder / "openapi.yml", workers=workers)
    with spawned(argv, port=port, log=folder / "server.log", env=env, timeout=timeout) as service:
        yield service
