"""geocommuns.contrib.audit: the record of every change made to the published layers.

Each create, replace, update or delete, through the API or a bulk contribution, writes one
row in ``geocommuns_audit`` in the same transaction as the change: who, when, which layer
and feature, how, and the whole feature before and after (as JSON, sensitive fields
included: the table is for administrators, never served).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg.types.json import Jsonb

Action = Literal["create", "replace", "update", "delete"]
AUDIT_TABLE = "geocommuns_audit"

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {AUDIT_TABLE} (
    seq bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor text NOT NULL,
    role text NOT NULL,
    via text NOT NULL,
    layer text NOT NULL,
    feature_id text NOT NULL,
    action text NOT NULL CHECK (action IN ('create', 'replace', 'update', 'delete')),
    before jsonb,
    after jsonb
);
CREATE INDEX IF NOT EXISTS {AUDIT_TABLE}_feature ON {AUDIT_TABLE} (layer, feature_id)
"""


@dataclass(frozen=True)
class AuditEntry:
    """One recorded change."""

    seq: int
    at: dt.datetime
    actor: str
    role: str
    via: str
    layer: str
    feature_id: str
    action: Action
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def changed_fields(self) -> list[str]:
        """Names of the properties (and ``geometry``) that differ between before and after."""
        before, after = self.before or {}, self.after or {}
        return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def ensure_schema(conn: psycopg.Connection[Any]) -> None:
    """Create the audit table when missing."""
    conn.execute(_SCHEMA)


def record(
    cur: psycopg.Cursor[Any],
    *,
    actor: str,
    role: str,
    via: str,
    layer: str,
    feature_id: str,
    action: Action,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Write one audit row, inside the caller's transaction."""
    cur.execute(
        f"INSERT INTO {AUDIT_TABLE} (actor, role, via, layer, feature_id, action, before, after) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        [
            actor, role, via, layer, feature_id, action,
            None if before is None else Jsonb(before),
            None if after is None else Jsonb(after),
        ],
    )


def recent(
    conn: psycopg.Connection[Any],
    *,
    limit: int = 20,
    layer: str | None = None,
    feature_id: str | None = None,
    actor: str | None = None,
) -> list[AuditEntry]:
    """The latest changes, newest first.

    Parameters
    ----------
    conn
        A connection to the database.
    limit
        How many rows at most.
    layer
        Only this layer.
    feature_id
        Only this feature.
    actor
        Only this user.

    Returns
    -------
    list of AuditEntry
        Newest first.
    """
    ensure_schema(conn)
    clauses, params = [], []
    for column, value in (("layer", layer), ("feature_id", feature_id), ("actor", actor)):
        if value is not None:
            clauses.append(f"{column} = %s")
            params.append(value)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = conn.execute(
        f"SELECT seq, at, actor, role, via, layer, feature_id, action, before, after "
        f"FROM {AUDIT_TABLE} {where} ORDER BY seq DESC LIMIT %s",
        [*params, limit],
    ).fetchall()
    return [AuditEntry(*r) for r in rows]
