"""A throwaway PostgreSQL + PostGIS server for the tests (Debian's postgresql-15-postgis-3).

The cluster lives under a temporary folder, listens on 127.0.0.1 on a free port with
trust authentication, and is stopped at the end of the session. When running as root,
the server runs as the ``postgres`` system user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def pg_bin() -> Path | None:
    """The folder of PostgreSQL's server binaries, newest version first."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return found[0].parent if found else None


def postgis_available() -> bool:
    """Whether a PostgreSQL server with the PostGIS extension is installed."""
    controls = Path("/usr/share/postgresql").glob("*/extension/postgis.control")
    return pg_bin() is not None and any(True for _ in controls)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@contextlib.contextmanager
def throwaway_postgis() -> Iterator[str]:
    """Start a private cluster, create a database with PostGIS, yield its URL, stop it."""
    bindir = pg_bin()
    if bindir is None:
        msg = "PostgreSQL server binaries not found; install postgresql-15-postgis-3"
        raise RuntimeError(msg)
    base = Path(tempfile.mkdtemp(prefix="geocommuns-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    port = _free_port()
    subprocess.run(
        _as_server_user([str(bindir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres",
                         "--encoding=UTF8", "--no-locale"]),
        check=True, capture_output=True,
    )
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l",
                         str(base / "log"), "start"]),
        check=True, capture_output=True,
    )
    try:
        subprocess.run(
            _as_server_user([str(bindir.parent / "bin" / "createdb"), "-h", "127.0.0.1", "-p",
                             str(port), "-U", "postgres", "geocommuns"]),
            check=True, capture_output=True,
        )
        yield f"postgresql://postgres@127.0.0.1:{port}/geocommuns"
    finally:
        subprocess.run(
            _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            check=False, capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)
