"""Roles and layer access (geocommuns.contrib.auth): who reads which layer, partner tokens.

The partner role reads the restricted layers and writes nothing; a users table of an
earlier version (its role CHECK without ``partner``) takes partners after
:func:`ensure_schema`, on the GeoPackage and on PostGIS.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from geocommuns.contrib.auth import (
    ROLES,
    AuthError,
    Principal,
    add_user,
    authenticate,
    list_users,
    may_read_layer,
)
from geocommuns.ingest.sqldb import Db

#: Who reads a restricted layer (True) or not, per role kind; None is an anonymous caller.
RESTRICTED: dict[str | None, bool] = {
    None: False,
    "reader": False,
    "partner": True,
    "contributor": True,
    "editor": True,
    "admin": True,
}


def _principal(role: str) -> Principal:
    if role == "contributor":
        return Principal("u", "contributor", commune="46042")
    if role == "editor":
        return Principal("u", "editor", layers=("wifi",))
    return Principal("u", role)  # type: ignore[arg-type]


@pytest.mark.parametrize("role", [None, *ROLES])
def test_who_reads_which_layer(role: str | None) -> None:
    principal = None if role is None else _principal(role)
    assert may_read_layer(principal, "equipements", "public")
    assert may_read_layer(principal, "equipements", "restricted") is RESTRICTED[role]
    # an editor of other layers still reads a restricted layer (public fields)
    assert may_read_layer(principal, "telesante", "restricted") is RESTRICTED[role]
    # an unknown access value is treated as restricted
    assert may_read_layer(principal, "x", "internal") is RESTRICTED[role]
    if principal is not None:
        assert principal.may_read_layer("equipements", "restricted") is RESTRICTED[role]


def test_partner_reads_and_writes_nothing(tmp_path: Path) -> None:
    db = Db(sqlite3.connect(tmp_path / "store.gpkg"), "sqlite")
    token = add_user(db, "appli-mobilite", "partner")
    partner = authenticate(db, token)
    assert partner == Principal("appli-mobilite", "partner")
    assert not partner.may_edit_layer("equipements")
    assert not partner.owns("46042", "200023737")
    assert not partner.reads_sensitive("wifi", "46042", "200023737")
    with pytest.raises(AuthError, match="partner reads every public field"):
        add_user(db, "autre", "partner", commune="46042")


def _old_sqlite_table(db: Db) -> None:
    """A users table as the GeoPackage of an earlier version held it (no partner role)."""
    db.execute(
        "CREATE TABLE geocommuns_users (name TEXT PRIMARY KEY, role TEXT NOT NULL CHECK "
        "(role IN ('reader', 'contributor', 'editor', 'admin')), commune TEXT, epci TEXT, "
        "layers TEXT NOT NULL DEFAULT '[]', token_id TEXT NOT NULL UNIQUE, salt BLOB NOT NULL, "
        "token_hash BLOB NOT NULL, created_at TEXT NOT NULL DEFAULT "
        "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), revoked_at TEXT)"
    )
    db.con.commit()


def test_an_earlier_geopackage_table_takes_partners(tmp_path: Path) -> None:
    con = sqlite3.connect(tmp_path / "store.gpkg")
    db = Db(con, "sqlite")
    _old_sqlite_table(db)
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(
            "INSERT INTO geocommuns_users (name, role, token_id, salt, token_hash) VALUES ('p', 'partner', 'x', x'00', x'00')"
        )
    con.rollback()
    token = add_user(db, "cahors", "contributor", commune="46042")
    add_user(db, "appli", "partner")
    assert [(u.principal.name, u.principal.role) for u in list_users(db)] == [
        ("appli", "partner"),
        ("cahors", "contributor"),
    ]
    assert authenticate(db, token) == Principal("cahors", "contributor", commune="46042")


def test_an_earlier_postgis_table_takes_partners(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS geocommuns_users")
        conn.execute(
            "CREATE TABLE geocommuns_users (name text PRIMARY KEY, role text NOT NULL CONSTRAINT "
            "geocommuns_users_role_check CHECK (role IN ('reader', 'contributor', 'editor', 'admin')), "
            "commune text, epci text, layers text[] NOT NULL DEFAULT '{}', token_id text NOT NULL UNIQUE, "
            "salt bytea NOT NULL, token_hash bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), "
            "revoked_at timestamptz)"
        )
        token = add_user(conn, "appli", "partner")
        assert authenticate(conn, token) == Principal("appli", "partner")
        conn.execute("DROP TABLE geocommuns_users")
