"""geocommuns.contrib.portal.sessions: browser sessions of the technician web space.

A session id is 32 random bytes given to the browser once, in a cookie; only its SHA-256
is stored, in a small SQLite file of the space's folder shared by every server worker.
Each session carries its own CSRF token (every form sends it back), ends at sign-out, at
its absolute expiry, or after a while without requests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS signin_failures (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_at TEXT NOT NULL
);
"""


def connect(path: Path) -> sqlite3.Connection:
    """Open (and create) the space's SQLite file, in WAL mode so workers share it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=10, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.executescript(_SCHEMA)
    return con


def now() -> dt.datetime:
    """The current time (UTC, whole seconds)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Session:
    """A signed-in browser: whose it is, its CSRF token, when it ends."""

    user: str
    csrf: str
    expires_at: dt.datetime
    #: The id the browser holds (only known when the session is opened).
    secret: str = ""


class SessionStore:
    """Sessions kept in ``path`` (SQLite).

    Parameters
    ----------
    path
        The SQLite file.
    lifetime
        How long a session lasts after sign-in.
    idle
        How long a session lasts without a request.
    """

    def __init__(self, path: Path, *, lifetime: dt.timedelta, idle: dt.timedelta) -> None:
        self.path = path
        self.lifetime = lifetime
        self.idle = idle

    def open(self, user: str) -> Session:
        """Start a session for ``user`` (after a successful sign-in)."""
        secret = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        start = now()
        expires = start + self.lifetime
        with closing(connect(self.path)) as con:
            con.execute(
                "DELETE FROM sessions WHERE expires_at <= ?", [start.isoformat()]
            )
            con.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)",
                [_digest(secret), user, csrf, start.isoformat(), start.isoformat(), expires.isoformat()],
            )
        return Session(user=user, csrf=csrf, expires_at=expires, secret=secret)

    def find(self, secret: str) -> Session | None:
        """The live session of a cookie's id, or None (unknown, signed out, expired, idle)."""
        if not secret or len(secret) > 100:
            return None
        at = now()
        with closing(connect(self.path)) as con:
            row = con.execute(
                "SELECT user_name, csrf, seen_at, expires_at FROM sessions WHERE id_hash = ?",
                [_digest(secret)],
            ).fetchone()
            if row is None:
                return None
            seen, expires = dt.datetime.fromisoformat(row[2]), dt.datetime.fromisoformat(row[3])
            if expires <= at or seen + self.idle <= at:
                con.execute("DELETE FROM sessions WHERE id_hash = ?", [_digest(secret)])
                return None
            con.execute(
                "UPDATE sessions SET seen_at = ? WHERE id_hash = ?", [at.isoformat(), _digest(secret)]
            )
        return Session(user=row[0], csrf=row[1], expires_at=expires)

    def close(self, secret: str) -> None:
        """End a session (sign-out): its cookie no longer opens anything."""
        with closing(connect(self.path)) as con:
            con.execute("DELETE FROM sessions WHERE id_hash = ?", [_digest(secret)])

    def close_user(self, user: str) -> int:
        """End every session of ``user`` (their token was revoked); how many ended."""
        with closing(connect(self.path)) as con:
            return int(con.execute("DELETE FROM sessions WHERE user_name = ?", [user]).rowcount)
