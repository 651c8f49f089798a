"""geocommuns.contrib.auth: who may change what: users, roles and API tokens, stored hashed.

Six roles:

- **anonymous** (no token): reads the public fields of the public layers, writes nothing;
- **reader**: reads the public fields of the public layers, writes nothing (its database
  login reads the tables directly);
- **partner** (external applications): reads the public fields of every layer, the
  restricted ones (``access: restricted``) included, writes nothing;
- **contributor**, bound to one commune (INSEE code) or one EPCI (SIREN): creates, changes
  and deletes the features located in that territory, of every layer, and reads their
  sensitive fields;
- **editor**, bound to some layers: changes every feature of those layers in the whole
  territory;
- **admin**: everything.

Who may read a layer at all is :func:`may_read_layer` (anonymous callers included) or
:meth:`Principal.may_read_layer`; the API, the exports and the database roles follow it.

A token is shown once, when the user is created: ``gct_<token id>_<secret>``. Only a
salted scrypt hash of the secret is stored, in the ``geocommuns_users`` table of the
living store (PostGIS, or the GeoPackage of the embedded default: every function takes
either connection). A token
verified once is remembered by the process as a SHA-256 of the secret, so requests do not
pay the scrypt cost every time; a revoked user is refused at once (the row is read on
every request).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg

from geocommuns.errors import GeocommunsError
from geocommuns.ingest.sqldb import Db, as_db

Role = Literal["reader", "partner", "contributor", "editor", "admin"]
ROLES: tuple[Role, ...] = ("reader", "partner", "contributor", "editor", "admin")
#: Roles that read and never write (no territory, no layers of their own).
READ_ONLY_ROLES: tuple[Role, ...] = ("reader", "partner")
#: Roles that may read the layers whose definition says ``access: restricted``.
RESTRICTED_READERS: tuple[Role, ...] = ("partner", "contributor", "editor", "admin")
_ROLE_CHECK = "role IN ('reader', 'partner', 'contributor', 'editor', 'admin')"

USERS_TABLE = "geocommuns_users"
TOKEN_PREFIX = "gct"

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {USERS_TABLE} (
    name text PRIMARY KEY,
    role text NOT NULL CONSTRAINT {USERS_TABLE}_role_check CHECK ({_ROLE_CHECK}),
    commune text,
    epci text,
    layers text[] NOT NULL DEFAULT '{{}}',
    token_id text NOT NULL UNIQUE,
    salt bytea NOT NULL,
    token_hash bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    expires_at timestamptz
)
"""

_SQLITE_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {USERS_TABLE} (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK ({_ROLE_CHECK}),
    commune TEXT,
    epci TEXT,
    layers TEXT NOT NULL DEFAULT '[]',
    token_id TEXT NOT NULL UNIQUE,
    salt BLOB NOT NULL,
    token_hash BLOB NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    revoked_at TEXT,
    expires_at TEXT
)
"""

_VERIFIED: dict[str, bytes] = {}
_VERIFIED_LOCK = threading.Lock()


class AuthError(GeocommunsError):
    """A user cannot be created, found or revoked as asked."""


@dataclass(frozen=True)
class Principal:
    """An authenticated user and what they may touch.

    ``commune`` / ``epci`` bind a contributor to a territory; ``layers`` bind an editor
    (and optionally a contributor) to some layers (empty: every layer).
    """

    name: str
    role: Role
    commune: str | None = None
    epci: str | None = None
    layers: tuple[str, ...] = field(default_factory=tuple)

    def may_edit_layer(self, layer: str) -> bool:
        """Whether the user may change features of ``layer`` at all."""
        if self.role == "admin":
            return True
        if self.role in READ_ONLY_ROLES:
            return False
        return not self.layers or layer in self.layers

    def may_read_layer(self, layer_id: str, access: str) -> bool:
        """Whether the user may read layer ``layer_id`` at all (its public fields).

        Every user reads the public layers. A restricted layer (``access: restricted`` in
        its definition) is read by partners, contributors, editors and admins, whatever
        their territory or layers (they read its public fields; sensitive ones follow
        :meth:`reads_sensitive`), never by readers. Any ``access`` other than ``public``
        counts as restricted.

        Parameters
        ----------
        layer_id
            The layer's id (kept for rules per layer; every layer follows its access).
        access
            The layer's ``access`` (``public`` or ``restricted``).

        Returns
        -------
        bool
            True when the layer may be listed and served to the user.
        """
        del layer_id  # the rule depends on the layer's access only
        return access == "public" or self.role in RESTRICTED_READERS

    def owns(self, code_insee: str | None, epci: str | None) -> bool:
        """Whether a place in commune ``code_insee`` (of EPCI ``epci``) is in the user's territory.

        Editors and admins own the whole territory; a place outside every commune of the
        territory (``code_insee`` None) is nobody's.
        """
        if code_insee is None or self.role in READ_ONLY_ROLES:
            return False
        if self.role != "contributor":
            return True
        if self.commune is not None:
            return code_insee == self.commune
        return self.epci is not None and epci == self.epci

    def reads_sensitive(self, layer: str, code_insee: str | None, epci: str | None) -> bool:
        """Whether the user may read the sensitive fields of a feature."""
        return self.may_edit_layer(layer) and self.owns(code_insee, epci)

    @property
    def scope(self) -> str:
        """The user's rights in words (for listings and audit)."""
        where = (
            f"commune:{self.commune}" if self.commune
            else f"epci:{self.epci}" if self.epci
            else "territory"
        )
        what = ",".join(self.layers) if self.layers else "all layers"
        return f"{self.role} {where} {what}"


#: The name other modules may know a principal by (a token's or a login's user).
User = Principal


def may_read_layer(principal: Principal | None, layer_id: str, access: str) -> bool:
    """Whether a caller (None: anonymous) may read layer ``layer_id`` of access ``access``.

    Anonymous callers read the public layers only; a user follows
    :meth:`Principal.may_read_layer`.
    """
    if principal is None:
        return access == "public"
    return principal.may_read_layer(layer_id, access)


@dataclass(frozen=True)
class UserRow:
    """A user as listed by ``geocommuns users list`` (never the hash)."""

    principal: Principal
    token_id: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None


def ensure_schema(conn: Db | psycopg.Connection[Any] | sqlite3.Connection) -> None:
    """Create the users table when missing (PostGIS or GeoPackage).

    The table is looked for first: the API's write login (which may create or alter no
    table) only reads it. A table of an earlier version is brought up to date by the
    owner (the next ``geocommuns users`` command or ``db-roles``).
    """
    db = as_db(conn)
    if db.dialect == "postgres":
        if not db.table_exists(USERS_TABLE):
            db.execute(_SCHEMA)
            _grant_api_roles(db)
        check = db.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
            "AND contype = 'c' AND pg_get_constraintdef(oid) LIKE %s",
            [USERS_TABLE, "%role%"],
        ).fetchone()
        if check is not None and "partner" not in check[0]:
            # A table of an earlier version: let it hold readers and partners too.
            try:
                with db.transaction():
                    db.execute(
                        f"ALTER TABLE {USERS_TABLE} DROP CONSTRAINT IF EXISTS {USERS_TABLE}_role_check"
                    )
                    db.execute(
                        f"ALTER TABLE {USERS_TABLE} ADD CONSTRAINT {USERS_TABLE}_role_check CHECK ({_ROLE_CHECK})"
                    )
            except psycopg.errors.InsufficientPrivilege:
                pass  # not the owner: it reads the users it finds
    elif not db.table_exists(USERS_TABLE):
        with db.transaction():
            db.execute(_SQLITE_SCHEMA)
    _add_expiry_column(db)
    if db.dialect == "sqlite":
        _widen_sqlite_roles(db)


def _grant_api_roles(db: Db) -> None:
    """Let the API's database roles read the users table (tokens are checked there)."""
    from geocommuns.publish.dbsecurity import API_READ, API_WRITE

    roles = [r[0] for r in db.execute(
        "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", [[API_READ, API_WRITE]]
    ).fetchall()]
    if roles:
        db.execute(f"GRANT SELECT ON {USERS_TABLE} TO {', '.join(roles)}")


_COLUMNS = "name, role, commune, epci, layers, token_id, salt, token_hash, created_at, revoked_at, expires_at"


def _widen_sqlite_roles(db: Db) -> None:
    """Rebuild a GeoPackage users table of an earlier version whose CHECK lacks a role.

    SQLite cannot change a CHECK constraint in place: the rows are copied into a table
    of the current schema, in one transaction.
    """
    row = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = %s", [USERS_TABLE]
    ).fetchone()
    if row is None or "'partner'" in row[0]:
        return
    with db.transaction():
        db.execute(f"ALTER TABLE {USERS_TABLE} RENAME TO {USERS_TABLE}_old")
        db.execute(_SQLITE_SCHEMA)
        db.execute(f"INSERT INTO {USERS_TABLE} ({_COLUMNS}) SELECT {_COLUMNS} FROM {USERS_TABLE}_old")
        db.execute(f"DROP TABLE {USERS_TABLE}_old")


def _add_expiry_column(db: Db) -> None:
    """Give a users table of an earlier version its ``expires_at`` column (once)."""
    if db.dialect == "postgres":
        found = db.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = %s AND column_name = 'expires_at'",
            [USERS_TABLE],
        ).fetchone()
        kind = "timestamptz"
    else:
        found = next((r for r in db.execute(f"PRAGMA table_info({USERS_TABLE})").fetchall()
                      if r[1] == "expires_at"), None)
        kind = "TEXT"
    if found is None:
        try:
            with db.transaction():
                db.execute(f"ALTER TABLE {USERS_TABLE} ADD COLUMN expires_at {kind}")
        except psycopg.errors.InsufficientPrivilege:
            # a role that may not change the table (the API's): the owner adds it with the
            # next 'geocommuns users add'; until then no token has an expiry
            return


def _expired(value: Any, now: dt.datetime) -> bool:
    """Whether a stored ``expires_at`` (timestamptz, or ISO text on the GeoPackage) is past."""
    if value is None:
        return False
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when <= now


def _layers_param(db: Db, layers: Sequence[str]) -> Any:
    return list(layers) if db.dialect == "postgres" else json.dumps(list(layers))


def _layers_value(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        return tuple(json.loads(raw))
    return tuple(raw or ())


def _hash(secret: str, salt: bytes) -> bytes:
    """scrypt of a token secret (16 MiB of memory, about 50 ms: slow to brute-force)."""
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=2**14, r=8, p=1, dklen=32)


def add_user(
    conn: Db | psycopg.Connection[Any] | sqlite3.Connection,
    name: str,
    role: Role,
    *,
    commune: str | None = None,
    epci: str | None = None,
    layers: Sequence[str] = (),
    known_layers: Iterable[str] = (),
    known_communes: Iterable[str] = (),
    known_epcis: Iterable[str] = (),
    expires: dt.datetime | None = None,
) -> str:
    """Create a user and return their API token (shown once: only its hash is kept).

    Parameters
    ----------
    conn
        A read-write connection to the living store (PostGIS or GeoPackage).
    name
        The user name (unique; e.g. ``cahors-sig``).
    role
        ``reader``, ``partner``, ``contributor``, ``editor`` or ``admin``.
    commune
        A contributor's commune (INSEE code of the territory).
    epci
        A contributor's EPCI (SIREN), instead of a commune.
    layers
        The layers an editor may change (a contributor: limit to these; empty: all).
    known_layers
        The layer ids that exist (checked when given).
    known_communes
        The INSEE codes of the territory (checked when given).
    known_epcis
        The EPCI SIRENs of the territory (checked when given).
    expires
        When the token stops working (an aware datetime; None: never).

    Returns
    -------
    str
        The token, ``gct_<token id>_<secret>``.

    Raises
    ------
    AuthError
        When the rights are inconsistent or the name is taken.
    """
    if role not in ROLES:
        msg = f"unknown role {role!r}; use one of: {', '.join(ROLES)}"
        raise AuthError(msg)
    if role in READ_ONLY_ROLES and (commune or epci or layers):
        msg = f"a {role} reads every public field of the territory; drop --commune/--epci/--layers"
        raise AuthError(msg)
    if role == "contributor" and (commune is None) == (epci is None):
        msg = "a contributor needs exactly one of --commune INSEE or --epci SIREN"
        raise AuthError(msg)
    if role != "contributor" and (commune or epci):
        msg = f"--commune/--epci bind contributors only; an {role} works on the whole territory"
        raise AuthError(msg)
    if role == "editor" and not layers:
        msg = "an editor needs --layers (comma-separated layer ids)"
        raise AuthError(msg)
    if role == "admin" and layers:
        msg = "an admin changes every layer; drop --layers"
        raise AuthError(msg)
    _check_known("commune", [commune] if commune else [], known_communes)
    _check_known("EPCI", [epci] if epci else [], known_epcis)
    _check_known("layer", list(layers), known_layers)
    if expires is not None and (expires.tzinfo is None or expires <= dt.datetime.now(dt.UTC)):
        msg = f"the expiry date must be in the future (got {expires.isoformat()})"
        raise AuthError(msg)
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    db = as_db(conn)
    ensure_schema(db)
    try:
        with db.transaction():
            db.execute(
                f"INSERT INTO {USERS_TABLE} (name, role, commune, epci, layers, token_id, salt, "
                "token_hash, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [name, role, commune, epci, _layers_param(db, layers), token_id, salt,
                 _hash(secret, salt),
                 expires if expires is None or db.dialect == "postgres" else expires.isoformat()],
            )
    except (psycopg.errors.UniqueViolation, sqlite3.IntegrityError):
        msg = f"user {name!r} already exists; choose another name (or revoke it and add a new one)"
        raise AuthError(msg) from None
    return f"{TOKEN_PREFIX}_{token_id}_{secret}"


def _check_known(what: str, values: list[str], known: Iterable[str]) -> None:
    allowed = set(known)
    if not allowed:
        return
    unknown = [v for v in values if v not in allowed]
    if unknown:
        msg = f"unknown {what} {', '.join(unknown)}; known: {', '.join(sorted(allowed))}"
        raise AuthError(msg)


def list_users(conn: Db | psycopg.Connection[Any] | sqlite3.Connection) -> list[UserRow]:
    """Every user, revoked ones included, by name."""
    db = as_db(conn)
    ensure_schema(db)
    rows = db.execute(
        f"SELECT name, role, commune, epci, layers, token_id, created_at, revoked_at "
        f"FROM {USERS_TABLE} ORDER BY name"
    ).fetchall()
    return [
        UserRow(
            principal=Principal(r[0], r[1], r[2], r[3], _layers_value(r[4])),
            token_id=r[5],
            created_at=db.timestamp(r[6]),
            revoked_at=None if r[7] is None else db.timestamp(r[7]),
        )
        for r in rows
    ]


def revoke_user(conn: Db | psycopg.Connection[Any] | sqlite3.Connection, name: str) -> None:
    """Revoke a user's token at once (the row stays for the audit trail).

    Raises
    ------
    AuthError
        When no active user has that name.
    """
    db = as_db(conn)
    ensure_schema(db)
    with db.transaction():
        done = db.execute(
            f"UPDATE {USERS_TABLE} SET revoked_at = {db.now_sql()} WHERE name = %s AND revoked_at IS NULL",
            [name],
        ).rowcount
    if not done:
        msg = f"no active user {name!r}; see 'geocommuns users list'"
        raise AuthError(msg)


def find_user(conn: Db | psycopg.Connection[Any] | sqlite3.Connection, name: str) -> Principal | None:
    """The active user called ``name``, or None (unknown or revoked)."""
    db = as_db(conn)
    ensure_schema(db)
    row = db.execute(
        f"SELECT name, role, commune, epci, layers FROM {USERS_TABLE} "
        "WHERE name = %s AND revoked_at IS NULL",
        [name],
    ).fetchone()
    return None if row is None else Principal(row[0], row[1], row[2], row[3], _layers_value(row[4]))


def authenticate(conn: Db | psycopg.Connection[Any] | sqlite3.Connection, token: str) -> Principal | None:
    """The user a token belongs to, or None (unknown, malformed, wrong secret, revoked, expired).

    Parameters
    ----------
    conn
        A connection to the database holding the users table.
    token
        ``gct_<token id>_<secret>`` as given in ``Authorization: Bearer``.

    Returns
    -------
    Principal or None
        The user, when the token is valid, not revoked and not expired.
    """
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    _, token_id, secret = parts
    db = as_db(conn)
    columns = "name, role, commune, epci, layers, salt, token_hash, expires_at"
    try:
        try:
            row = db.execute(
                f"SELECT {columns} FROM {USERS_TABLE} WHERE token_id = %s AND revoked_at IS NULL",
                [token_id],
            ).fetchone()
        except psycopg.errors.UndefinedColumn:  # a table of an earlier version: no expiry
            columns = columns.replace("expires_at", "NULL")
            row = db.execute(
                f"SELECT {columns} FROM {USERS_TABLE} WHERE token_id = %s AND revoked_at IS NULL",
                [token_id],
            ).fetchone()
    except (psycopg.errors.UndefinedTable, sqlite3.OperationalError):
        return None
    if row is None or _expired(row[7], dt.datetime.now(dt.UTC)):
        return None
    fast = hashlib.sha256(secret.encode("utf-8")).digest()
    with _VERIFIED_LOCK:
        known = _VERIFIED.get(token_id)
    if known is None or not hmac.compare_digest(known, fast):
        if not hmac.compare_digest(_hash(secret, bytes(row[5])), bytes(row[6])):
            return None
        with _VERIFIED_LOCK:
            _VERIFIED[token_id] = fast
    return Principal(row[0], row[1], row[2], row[3], _layers_value(row[4]))
