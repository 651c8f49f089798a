"""geocommuns.contrib.ratelimit: at most so many actions per key in a sliding window.

Citizens' reports (« Signaler une erreur ») need no account, so they are limited per
client address: :class:`RateLimit` counts each accepted action of a key in a small SQLite
file shared by every server worker (WAL mode, one short ``IMMEDIATE`` transaction per
action) and refuses the next one once ``limit`` were accepted in the last ``window``,
saying how long to wait. Keys are stored as given: callers pass a hash (see
:func:`address_key`), never an address in clear.
"""

from __future__ import annotations

import hashlib
import ipaddress
import sqlite3
import time
from contextlib import closing
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hits (key TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS hits_key ON hits (key, at);
"""


def address_key(address: str, *, salt: str = "") -> str:
    """The key of a client address: a SHA-256, an IPv6 address counted by its /64 network.

    A household or a phone gets a whole IPv6 /64, so counting single IPv6 addresses would
    let one client change address at will.

    Parameters
    ----------
    address
        ``REMOTE_ADDR`` as the server saw it.
    salt
        Mixed into the hash (e.g. the purpose: ``signaler``).

    Returns
    -------
    str
        The hexadecimal key.
    """
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        base = address.strip()
    else:
        base = str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip)
    return hashlib.sha256(f"{salt}|{base}".encode()).hexdigest()


class RateLimit:
    """At most ``limit`` actions per key in any ``window_s`` seconds, counted in ``path``.

    Parameters
    ----------
    path
        The SQLite file (created with its folder).
    limit
        Actions accepted per key in a window.
    window_s
        The window, in seconds.
    """

    def __init__(self, path: Path, *, limit: int, window_s: float) -> None:
        if limit < 1 or window_s <= 0:
            msg = f"a rate limit needs limit >= 1 and a positive window (got {limit}, {window_s})"
            raise ValueError(msg)
        self.path = path
        self.limit = limit
        self.window_s = window_s

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.executescript(_SCHEMA)
        return con

    def take(self, key: str, *, now: float | None = None) -> int:
        """Count one action of ``key`` if the limit allows it.

        Parameters
        ----------
        key
            Whose action (a hash: see :func:`address_key`).
        now
            The time (seconds since the epoch; tests pass their own).

        Returns
        -------
        int
            0 when the action is accepted (and counted); otherwise the seconds to wait
            before the next one is (nothing counted).
        """
        at = time.time() if now is None else now
        with closing(self._connect()) as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                con.execute("DELETE FROM hits WHERE at <= ?", [at - self.window_s])
                count, oldest = con.execute(
                    "SELECT count(*), min(at) FROM hits WHERE key = ?", [key]
                ).fetchone()
                if count >= self.limit:
                    con.execute("COMMIT")
                    return max(1, int(oldest + self.window_s - at + 0.999))
                con.execute("INSERT INTO hits (key, at) VALUES (?, ?)", [key, at])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return 0
