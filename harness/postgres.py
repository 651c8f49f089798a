"""A throwaway PostgreSQL + PostGIS cluster (Debian's ``postgresql-15-postgis-3``).

The cluster lives under a temporary folder, listens on 127.0.0.1 on a free port
without fsync (the superuser trusted, other roles with their SCRAM password), and is
stopped (``pg_ctl -m immediate``) and removed when its block ends. When running as root, the server runs as the ``postgres``
system user, since PostgreSQL refuses to run as root.

Starting a cluster costs a few seconds (``initdb``), a database a fraction of one: the
cluster holds a template database with PostGIS already created, and
:meth:`Cluster.create_database` copies it. So a test session starts one cluster and each
test module gets its own database (``tests/conftest.py``), which it may fill and change
without any other module seeing it. :func:`replica` adds a streaming hot standby of a
cluster (``pg_basebackup -R``), for the scale-out test and benchmark.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg

from harness.processes import free_port

#: The Debian packages a cluster needs, as ``apt-get install`` takes them.
PACKAGES = "postgresql-15-postgis-3"
#: The database every new database is copied from: PostGIS is already created in it.
TEMPLATE = "geocommuns_template"
SUPERUSER = "postgres"


def pg_bin() -> Path | None:
    """The folder of PostgreSQL's server binaries, newest version first."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return found[0].parent if found else None


def postgis_available() -> bool:
    """Whether a PostgreSQL server with the PostGIS extension is installed."""
    controls = Path("/usr/share/postgresql").glob("*/extension/postgis.control")
    return pg_bin() is not None and any(True for _ in controls)


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", SUPERUSER, "--", *cmd]
    return cmd


class Cluster:
    """A running cluster: where it listens, and its databases.

    Parameters
    ----------
    port
        Its 127.0.0.1 port.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self._names = itertools.count(1)

    def url(self, database: str) -> str:
        """The connection URL of ``database`` (superuser, no password)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new database with PostGIS, copied from the template; its URL.

        Parameters
        ----------
        name
            A hint for its name (a test module's, say): lower-cased, reduced to letters,
            digits and ``_``, and made unique with a counter. Default ``db``.
        """
        hint = re.sub(r"[^a-z0-9_]+", "_", (name or "db").lower()).strip("_")[:40] or "db"
        database = f"{hint}_{next(self._names)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(
                f'CREATE DATABASE "{database}" TEMPLATE {TEMPLATE} STRATEGY FILE_COPY'
            )
        return self.url(database)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url``, closing whatever connections it still has."""
        database = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@contextlib.contextmanager
def cluster() -> Iterator[Cluster]:
    """Start a private cluster with a PostGIS template database, yield it, always stop it.

    Raises
    ------
    RuntimeError
        When PostgreSQL's server binaries are not installed.
    """
    bindir = pg_bin()
    if bindir is None:
        msg = f"PostgreSQL server binaries not found; run: apt-get install {PACKAGES}"
        raise RuntimeError(msg)
    base = Path(tempfile.mkdtemp(prefix="geocommuns-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, SUPERUSER, SUPERUSER)
    port = free_port()
    subprocess.run(
        _as_server_user([str(bindir / "initdb"), "-D", str(data), "--auth=trust", "-U", SUPERUSER,
                         "--encoding=UTF8", "--no-locale", "--no-sync"]),
        check=True, capture_output=True,
    )
    # The superuser connects without a password; every other role (technicians' logins)
    # with its SCRAM password, as on a real server.
    hba = data / "pg_hba.conf"
    hba.write_text(
        f"local all {SUPERUSER} trust\nhost all {SUPERUSER} 127.0.0.1/32 trust\n"
        f"host replication {SUPERUSER} 127.0.0.1/32 trust\n"
        "local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n"
    )
    if os.geteuid() == 0:
        shutil.chown(hba, SUPERUSER, SUPERUSER)
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    try:
        subprocess.run(
            _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l",
                             str(base / "log"), "start"]),
            check=True, capture_output=True,
        )
        pg = Cluster(port)
        with psycopg.connect(pg.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {TEMPLATE}")
        with psycopg.connect(pg.url(TEMPLATE), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
        yield pg
    finally:
        subprocess.run(
            _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            check=False, capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def replica(primary: Cluster, *, timeout_s: float = 60) -> Iterator[Cluster]:
    """A hot standby of ``primary``, streaming its WAL: yield it, always stop it.

    PostgreSQL's own streaming replication: ``pg_basebackup -R`` copies the primary
    (its template and databases included) and writes the ``primary_conninfo`` and
    ``standby.signal`` that make the copy a read-only standby replaying the primary's
    WAL as it comes. What is committed on the primary appears on the standby a moment
    later (:func:`wait_for_replay`).

    Parameters
    ----------
    primary
        A running cluster of :func:`cluster` (it accepts the superuser's replication
        connections from 127.0.0.1).
    timeout_s
        Longest the copy and the start may take.

    Raises
    ------
    RuntimeError
        When PostgreSQL's server binaries are not installed.
    """
    bindir = pg_bin()
    if bindir is None:
        msg = f"PostgreSQL server binaries not found; run: apt-get install {PACKAGES}"
        raise RuntimeError(msg)
    base = Path(tempfile.mkdtemp(prefix="geocommuns-pg-replica-"))
    data = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, SUPERUSER, SUPERUSER)
    port = free_port()
    try:
        subprocess.run(
            _as_server_user([str(bindir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
                             "-U", SUPERUSER, "-D", str(data), "-R", "-X", "stream", "-c", "fast",
                             "--no-sync"]),
            check=True, capture_output=True, timeout=timeout_s,
        )
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c hot_standby=on"
        subprocess.run(
            _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-w",
                             "-t", str(int(timeout_s)), "-l", str(base / "log"), "start"]),
            check=True, capture_output=True, timeout=timeout_s + 5,
        )
        yield Cluster(port)
    finally:
        subprocess.run(
            _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            check=False, capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


def wait_for_replay(primary_url: str, replica_url: str, *, timeout_s: float = 30) -> float:
    """Wait until the replica has replayed everything the primary had committed.

    Parameters
    ----------
    primary_url, replica_url
        Connection URLs of the same database on the primary and on its standby.
    timeout_s
        Longest wait.

    Returns
    -------
    float
        Seconds waited.

    Raises
    ------
    TimeoutError
        When the replica is still behind after ``timeout_s``.
    """
    import time

    with psycopg.connect(primary_url, autocommit=True) as conn:
        lsn = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]  # type: ignore[index]
    started = time.monotonic()
    with psycopg.connect(replica_url, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn]
            ).fetchone()
            if row is not None and row[0]:
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                msg = f"the replica has not replayed {lsn} after {timeout_s:g} s"
                raise TimeoutError(msg)
            time.sleep(0.02)


@contextlib.contextmanager
def throwaway_postgis(name: str = "geocommuns") -> Iterator[str]:
    """A cluster of its own with one PostGIS database; yield the database's URL."""
    with cluster() as pg:
        yield pg.create_database(name)
