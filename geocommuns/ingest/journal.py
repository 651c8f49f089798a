"""geocommuns.ingest.journal: the journal of human changes, and the conflicts a refresh finds.

Every change that is not a source import — an OGC API Part 4 create, replace, update or
delete, a bulk contribution, a conflict settled — is one row of ``geocommuns_journal``,
written in the same transaction as the change: who (user and role), when, through what
(``api``, ``contribute``, ``conflicts``...), which layer and feature, the action, and the
whole feature before and after (sensitive fields included: the journal is for
administrators and the feature's history, never served as such). The same model lives in
PostGIS and in the GeoPackage (:mod:`geocommuns.ingest.sqldb`).

A refresh (:mod:`geocommuns.ingest.replay`) replays the journal on top of the imports.
Where the source changed a field a technician also changed, the conflict is kept in
``geocommuns_conflicts`` until someone settles it (``geocommuns conflicts resolve``).
``geocommuns_meta`` holds small facts of the store (the last journal entry a build
replayed, the secret of edit ETags).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from geocommuns.ingest.sqldb import Db, as_db

Action = Literal["create", "replace", "update", "delete", "resolve"]
ACTIONS: tuple[Action, ...] = ("create", "replace", "update", "delete", "resolve")
JOURNAL_TABLE = "geocommuns_journal"
CONFLICTS_TABLE = "geocommuns_conflicts"
META_TABLE = "geocommuns_meta"
#: The last imported values of each feature (what the next import is compared with).
IMPORTS_TABLE = "geocommuns_imports"
#: What each import changed, feature by feature (``geocommuns history``).
IMPORT_LOG_TABLE = "geocommuns_import_log"
#: The review queue: technicians' submissions and citizens' reports, by commune
#: (:mod:`geocommuns.contrib.reviews` reads and writes it; made here, with the journal, by
#: whoever owns the store, so the API's write login only uses it).
REVIEWS_TABLE = "geocommuns_reviews"
#: The table of the audit that became the journal (renamed on first use).
_OLD_AUDIT_TABLE = "geocommuns_audit"
_ACTION_CHECK = ", ".join(f"'{a}'" for a in ACTIONS)

#: Column types of the two dialects (one schema, written once below).
_TYPES = {
    "postgres": {"key": "bigserial PRIMARY KEY", "time": "timestamptz", "json": "jsonb",
                 "now": "clock_timestamp()"},
    "sqlite": {"key": "INTEGER PRIMARY KEY AUTOINCREMENT", "time": "TEXT", "json": "TEXT",
               "now": "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"},
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {journal} (
    seq {key},
    at {time} NOT NULL DEFAULT {now},
    actor text NOT NULL,
    role text NOT NULL,
    via text NOT NULL,
    layer text NOT NULL,
    feature_id text NOT NULL,
    action text NOT NULL CONSTRAINT {journal}_action_check CHECK (action IN ({actions})),
    before {json},
    after {json},
    note text
);
CREATE INDEX IF NOT EXISTS {journal}_feature ON {journal} (layer, feature_id);
CREATE TABLE IF NOT EXISTS {conflicts} (
    id {key},
    layer text NOT NULL,
    feature_id text NOT NULL,
    field text NOT NULL,
    seen {json},
    edit {json},
    source {json},
    found_at {time} NOT NULL DEFAULT {now},
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'edit', 'source')),
    resolved_by text,
    resolved_at {time}
);
CREATE TABLE IF NOT EXISTS {meta} (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS {imports} (
    layer text NOT NULL,
    feature_id text NOT NULL,
    doc {json} NOT NULL,
    present integer NOT NULL DEFAULT 1,
    digest text,
    PRIMARY KEY (layer, feature_id)
);
CREATE TABLE IF NOT EXISTS {log} (
    seq {key},
    at {time} NOT NULL,
    layer text NOT NULL,
    feature_id text NOT NULL,
    action text NOT NULL,
    changes {json}
);
CREATE INDEX IF NOT EXISTS {log}_feature ON {log} (feature_id);
CREATE TABLE IF NOT EXISTS {reviews} (
    id {key},
    kind text NOT NULL CHECK (kind IN ('submission', 'report')),
    state text NOT NULL DEFAULT 'proposed'
        CHECK (state IN ('proposed', 'accepted', 'refused', 'done')),
    commune text,
    epci text,
    layer text NOT NULL,
    feature_id text,
    message text NOT NULL,
    payload {json},
    reporter_email text,
    submitted_by text NOT NULL,
    created_at {time} NOT NULL DEFAULT {now},
    decided_by text,
    decided_at {time},
    comment text
);
CREATE INDEX IF NOT EXISTS {reviews}_queue ON {reviews} (commune, state)
"""


def _schema(dialect: str) -> str:
    return _SCHEMA.format(
        journal=JOURNAL_TABLE, conflicts=CONFLICTS_TABLE, meta=META_TABLE, imports=IMPORTS_TABLE,
        log=IMPORT_LOG_TABLE, reviews=REVIEWS_TABLE, actions=_ACTION_CHECK, **_TYPES[dialect],
    )


#: ``field`` of a conflict about the whole feature: its source row disappeared.
WHOLE_FEATURE = "*"


@dataclass(frozen=True)
class Change:
    """One journal entry: a human change to one feature."""

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
    note: str | None = None

    def changed_fields(self) -> list[str]:
        """Names of the properties (and ``geometry``) that differ between before and after."""
        before, after = self.before or {}, self.after or {}
        return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


@dataclass(frozen=True)
class Conflict:
    """A field a technician changed that the source changed too since (or a vanished source row).

    ``seen`` is the value the technician saw (the import they corrected), ``edit`` their
    value, ``source`` the value the source delivers now. For a whole-feature conflict
    (``field == "*"``) the source no longer delivers the feature at all.
    """

    layer: str
    feature_id: str
    field: str
    seen: Any
    edit: Any
    source: Any
    id: int = 0
    status: str = "open"
    found_at: dt.datetime | None = None
    resolved_by: str | None = None
    resolved_at: dt.datetime | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies a conflict across refreshes."""
        return (self.layer, self.feature_id, self.field)


def ensure_schema(conn: Any) -> None:
    """Create the journal, conflicts, meta, imports and review queue tables when missing.

    On PostGIS, a ``geocommuns_audit`` table written by an earlier version becomes the
    journal (renamed, its entries kept). ``conn`` is a :class:`Db` or a psycopg / sqlite3
    connection.
    """
    db = as_db(conn)
    if db.dialect == "postgres":
        with db.transaction():
            if db.table_exists(_OLD_AUDIT_TABLE) and not db.table_exists(JOURNAL_TABLE):
                db.script(
                    f"ALTER TABLE {_OLD_AUDIT_TABLE} RENAME TO {JOURNAL_TABLE};\n"
                    f"ALTER TABLE {JOURNAL_TABLE} DROP CONSTRAINT IF EXISTS {_OLD_AUDIT_TABLE}_action_check;\n"
                    f"ALTER TABLE {JOURNAL_TABLE} ADD CONSTRAINT {JOURNAL_TABLE}_action_check "
                    f"CHECK (action IN ({_ACTION_CHECK}));\n"
                    f"ALTER TABLE {JOURNAL_TABLE} ADD COLUMN IF NOT EXISTS note text"
                )
            db.script(_schema("postgres"))
        return
    if not all(db.table_exists(t) for t in (JOURNAL_TABLE, IMPORT_LOG_TABLE, REVIEWS_TABLE)):
        with db.transaction():
            db.script(_schema("sqlite"))


def record(
    db: Db,
    *,
    actor: str,
    role: str,
    via: str,
    layer: str,
    feature_id: str,
    action: Action,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    note: str | None = None,
) -> int:
    """Write one journal entry inside the caller's transaction; return its sequence number."""
    row = db.execute(
        f"INSERT INTO {JOURNAL_TABLE} (actor, role, via, layer, feature_id, action, before, after, note) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING seq",
        [actor, role, via, layer, feature_id, action,
         db.json_param(before), db.json_param(after), note],
    ).fetchone()
    return int(row[0])


Sequence_ = tuple[Any, ...]


def _change(db: Db, row: Sequence_) -> Change:
    return Change(
        seq=int(row[0]), at=db.timestamp(row[1]), actor=row[2], role=row[3], via=row[4],
        layer=row[5], feature_id=row[6], action=row[7],
        before=db.json_value(row[8]), after=db.json_value(row[9]), note=row[10],
    )


def changes(
    db: Db,
    *,
    since: int = 0,
    layer: str | None = None,
    feature_id: str | None = None,
    actor: str | None = None,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[Change]:
    """Journal entries, oldest first (or newest first).

    Parameters
    ----------
    db
        The living store.
    since
        Only entries with a sequence number above this one.
    layer
        Only this layer.
    feature_id
        Only this feature.
    actor
        Only this user.
    limit
        How many at most.
    newest_first
        Newest first (listings) instead of oldest first (replay).

    Returns
    -------
    list of Change
        The entries.
    """
    if not db.table_exists(JOURNAL_TABLE):
        return []
    clauses: list[str] = ["seq > %s"]
    params: list[Any] = [since]
    for column, value in (("layer", layer), ("feature_id", feature_id), ("actor", actor)):
        if value is not None:
            clauses.append(f"{column} = %s")
            params.append(value)
    order = "DESC" if newest_first else "ASC"
    tail = " LIMIT %s" if limit is not None else ""
    rows = db.execute(
        "SELECT seq, at, actor, role, via, layer, feature_id, action, before, after, note "
        f"FROM {JOURNAL_TABLE} WHERE {' AND '.join(clauses)} ORDER BY seq {order}{tail}",
        [*params, *([limit] if limit is not None else [])],
    ).fetchall()
    return [_change(db, r) for r in rows]


def recent(
    conn: Any,
    *,
    limit: int = 20,
    layer: str | None = None,
    feature_id: str | None = None,
    actor: str | None = None,
) -> list[Change]:
    """The latest journal entries, newest first (``geocommuns audit``).

    Parameters
    ----------
    conn
        A :class:`Db`, or a psycopg / sqlite3 connection to the living store.
    limit
        How many at most.
    layer
        Only this layer.
    feature_id
        Only this feature.
    actor
        Only this user.

    Returns
    -------
    list of Change
        Newest first.
    """
    return changes(
        as_db(conn), layer=layer, feature_id=feature_id, actor=actor, limit=limit, newest_first=True
    )


def last_seq(db: Db) -> int:
    """The sequence number of the newest journal entry (0 when none)."""
    if not db.table_exists(JOURNAL_TABLE):
        return 0
    row = db.execute(f"SELECT max(seq) FROM {JOURNAL_TABLE}").fetchone()
    return int(row[0] or 0)


# -- conflicts -------------------------------------------------------------------------


def _conflict(db: Db, row: Sequence_) -> Conflict:
    return Conflict(
        id=int(row[0]), layer=row[1], feature_id=row[2], field=row[3],
        seen=db.json_value(row[4]), edit=db.json_value(row[5]), source=db.json_value(row[6]),
        found_at=db.timestamp(row[7]), status=row[8], resolved_by=row[9],
        resolved_at=None if row[10] is None else db.timestamp(row[10]),
    )


_CONFLICT_COLUMNS = "id, layer, feature_id, field, seen, edit, source, found_at, status, resolved_by, resolved_at"


def open_conflicts(db: Db, *, layer: str | None = None) -> list[Conflict]:
    """The conflicts nobody has settled yet, oldest first."""
    if not db.table_exists(CONFLICTS_TABLE):
        return []
    where, params = "status = 'open'", list[Any]()
    if layer is not None:
        where += " AND layer = %s"
        params.append(layer)
    rows = db.execute(
        f"SELECT {_CONFLICT_COLUMNS} FROM {CONFLICTS_TABLE} WHERE {where} ORDER BY id", params
    ).fetchall()
    return [_conflict(db, r) for r in rows]


def conflict_by_id(db: Db, conflict_id: int) -> Conflict | None:
    """One conflict, settled or not."""
    if not db.table_exists(CONFLICTS_TABLE):
        return None
    row = db.execute(
        f"SELECT {_CONFLICT_COLUMNS} FROM {CONFLICTS_TABLE} WHERE id = %s", [conflict_id]
    ).fetchone()
    return None if row is None else _conflict(db, row)


def save_conflicts(db: Db, found: list[Conflict]) -> list[Conflict]:
    """Make the open conflicts exactly ``found`` (inside the caller's transaction).

    A conflict still found keeps its number (updated with the source's current value);
    one no longer found is dropped; a new one is added.

    Returns
    -------
    list of Conflict
        The open conflicts with their numbers.
    """
    current = {c.key: c for c in open_conflicts(db)}
    wanted = {c.key: c for c in found}
    for key, old in current.items():
        if key not in wanted:
            db.execute(f"DELETE FROM {CONFLICTS_TABLE} WHERE id = %s", [old.id])
    for key, new in wanted.items():
        if key in current:
            db.execute(
                f"UPDATE {CONFLICTS_TABLE} SET seen = %s, edit = %s, source = %s WHERE id = %s",
                [db.json_param(new.seen), db.json_param(new.edit), db.json_param(new.source),
                 current[key].id],
            )
        else:
            db.execute(
                f"INSERT INTO {CONFLICTS_TABLE} (layer, feature_id, field, seen, edit, source) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                [new.layer, new.feature_id, new.field, db.json_param(new.seen),
                 db.json_param(new.edit), db.json_param(new.source)],
            )
    return open_conflicts(db)


def settle_conflict(db: Db, conflict_id: int, *, keep: str, actor: str) -> None:
    """Mark a conflict settled (``keep`` is ``edit`` or ``source``), in the caller's transaction."""
    db.execute(
        f"UPDATE {CONFLICTS_TABLE} SET status = %s, resolved_by = %s, resolved_at = {db.now_sql()} "
        "WHERE id = %s",
        [keep, actor, conflict_id],
    )


# -- meta ------------------------------------------------------------------------------


def get_meta(db: Db, key: str) -> str | None:
    """A value of ``geocommuns_meta``."""
    if not db.table_exists(META_TABLE):
        return None
    row = db.execute(f"SELECT value FROM {META_TABLE} WHERE key = %s", [key]).fetchone()
    return None if row is None else str(row[0])


def set_meta(db: Db, key: str, value: str) -> None:
    """Set a value of ``geocommuns_meta`` (in the caller's transaction)."""
    db.execute(
        f"INSERT INTO {META_TABLE} (key, value) VALUES (%s, %s) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )


def etag_secret(db: Db) -> bytes:
    """The store's secret for edit ETags (made on first use, kept in ``geocommuns_meta``).

    An ETag is an HMAC of the stored feature under this secret: it changes whenever the
    feature changes, and reveals nothing of fields the caller may not read.
    """
    found = get_meta(db, "etag_secret")
    if found is None:
        with db.transaction():
            found = get_meta(db, "etag_secret")
            if found is None:
                found = secrets.token_hex(32)
                set_meta(db, "etag_secret", found)
    return bytes.fromhex(found)


# -- what imports changed --------------------------------------------------------------


@dataclass(frozen=True)
class ImportChange:
    """What one import changed in one feature: ``changes`` maps a field to [old, new]."""

    seq: int
    at: dt.datetime
    layer: str
    feature_id: str
    action: str
    changes: dict[str, list[Any]] | None


#: Features compared, written and logged per round trip by :func:`log_imports`.
_LOG_BATCH = 1000


def doc_digest(doc: Mapping[str, Any]) -> str:
    """A short, stable digest of a feature's imported values (JSON with sorted keys)."""
    text = json.dumps(doc, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


#: Columns the imports table gained after its first release: added to older stores.
_LATER_IMPORT_COLUMNS = (("present", "integer NOT NULL DEFAULT 1"), ("digest", "text"))


def _ensure_import_columns(db: Db) -> None:
    """Stores written by earlier versions gain the imports table's later columns (their
    rows count as present; their digests are computed from their documents when first
    compared)."""
    if db.dialect == "postgres":
        for name, kind in _LATER_IMPORT_COLUMNS:
            db.execute(f"ALTER TABLE {IMPORTS_TABLE} ADD COLUMN IF NOT EXISTS {name} {kind}")
        return
    columns = {row[1] for row in db.execute(f"PRAGMA table_info({IMPORTS_TABLE})").fetchall()}
    for name, kind in _LATER_IMPORT_COLUMNS:
        if name not in columns:
            db.execute(f"ALTER TABLE {IMPORTS_TABLE} ADD COLUMN {name} {kind}")


def log_imports(
    db: Db,
    layer: str,
    docs: Mapping[str, dict[str, Any]] | Iterable[tuple[str, dict[str, Any]]],
    at: dt.datetime,
) -> dict[str, int]:
    """Compare a layer's new import with the previous one; log and keep what changed.

    Runs inside the caller's transaction. The first import of a feature is logged as
    ``added`` (with its values), a change as ``changed`` (the fields, old and new), a
    feature its sources no longer deliver as ``removed`` (once; its last imported values
    are kept, see :func:`imported_docs`), and a removed feature delivered again as
    ``added``.

    Only the digests of the previous import are read; a feature's previous values are
    fetched when its digest differs, and the features are compared and written a batch
    at a time, so a refresh that changes little reads and holds little, whatever the
    layer's size.

    Parameters
    ----------
    db
        The living store.
    layer
        The layer id.
    docs
        The imported values of each feature, by id (JSON-ready): a mapping, or pairs
        ``(id, values)`` produced one at a time.
    at
        When the import ran.

    Returns
    -------
    dict
        How many features were added, changed and removed.
    """
    _ensure_import_columns(db)
    rows = db.execute(
        f"SELECT feature_id, digest, present, CASE WHEN digest IS NULL THEN doc END "
        f"FROM {IMPORTS_TABLE} WHERE layer = %s",
        [layer],
    ).fetchall()
    digests: dict[str, str] = {}
    present: set[str] = set()
    backfill: list[tuple[str, str, str]] = []
    for fid, digest, is_present, legacy in rows:
        if digest is None:
            digest = doc_digest(db.json_value(legacy))
            backfill.append((digest, layer, str(fid)))
        digests[str(fid)] = digest
        if is_present:
            present.add(str(fid))
    db.executemany(
        f"UPDATE {IMPORTS_TABLE} SET digest = %s WHERE layer = %s AND feature_id = %s", backfill
    )
    counts = {"added": 0, "changed": 0, "removed": 0}
    stamp = at.isoformat()
    delivered: set[str] = set()
    pending: list[tuple[str, dict[str, Any], str]] = []
    pairs = docs.items() if isinstance(docs, Mapping) else docs
    for fid, doc in pairs:
        delivered.add(fid)
        digest = doc_digest(doc)
        if fid in present and digests.get(fid) == digest:
            continue
        pending.append((fid, doc, digest))
        if len(pending) >= _LOG_BATCH:
            _log_batch(db, layer, pending, digests.keys(), present, stamp, counts)
            pending = []
    _log_batch(db, layer, pending, digests.keys(), present, stamp, counts)
    removed = sorted(present - delivered)
    counts["removed"] = len(removed)
    db.executemany(
        f"UPDATE {IMPORTS_TABLE} SET present = 0 WHERE layer = %s AND feature_id = %s",
        [(layer, fid) for fid in removed],
    )
    db.executemany(
        f"INSERT INTO {IMPORT_LOG_TABLE} (at, layer, feature_id, action, changes) VALUES (%s, %s, %s, %s, %s)",
        [(stamp, layer, fid, "removed", None) for fid in removed],
    )
    return counts


def _log_batch(
    db: Db,
    layer: str,
    batch: list[tuple[str, dict[str, Any], str]],
    known: Collection[str],
    present: set[str],
    stamp: str,
    counts: dict[str, int],
) -> None:
    """Write and log a batch of added or changed features (see :func:`log_imports`)."""
    if not batch:
        return
    olds = _docs_of(db, layer, [fid for fid, _doc, _digest in batch if fid in present])
    updates: list[tuple[Any, ...]] = []
    inserts: list[tuple[Any, ...]] = []
    logged: list[tuple[Any, ...]] = []
    for fid, doc, digest in batch:
        old = olds.get(fid)
        if old is None:
            action, diff = "added", {k: [None, v] for k, v in doc.items() if v is not None}
        else:
            action = "changed"
            diff = {k: [old.get(k), doc.get(k)] for k in sorted(old.keys() | doc.keys()) if old.get(k) != doc.get(k)}
        if fid in known:
            updates.append((db.json_param(doc), digest, layer, fid))
        else:
            inserts.append((layer, fid, db.json_param(doc), digest))
        logged.append((stamp, layer, fid, action, db.json_param(diff)))
        counts[action] += 1
    db.executemany(
        f"UPDATE {IMPORTS_TABLE} SET doc = %s, digest = %s, present = 1 WHERE layer = %s AND feature_id = %s",
        updates,
    )
    db.executemany(
        f"INSERT INTO {IMPORTS_TABLE} (layer, feature_id, doc, digest) VALUES (%s, %s, %s, %s)", inserts
    )
    db.executemany(
        f"INSERT INTO {IMPORT_LOG_TABLE} (at, layer, feature_id, action, changes) VALUES (%s, %s, %s, %s, %s)",
        logged,
    )


def _docs_of(db: Db, layer: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The stored import documents of some features of a layer, by id."""
    wanted = list(dict.fromkeys(ids))
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ", ".join(["%s"] * len(chunk))
        rows = db.execute(
            f"SELECT feature_id, doc FROM {IMPORTS_TABLE} WHERE layer = %s AND feature_id IN ({marks})",
            [layer, *chunk],
        ).fetchall()
        out.update((str(fid), db.json_value(doc)) for fid, doc in rows)
    return out


def imported_docs(
    db: Db, layer: str, ids: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The last imported values of the features a layer's sources delivered, by id.

    A refresh keeps a corrected feature its sources dropped from these values plus the
    corrections (see :func:`geocommuns.ingest.replay.replay`); it asks only for the
    features the journal names (``ids``). Without ``ids``: every feature ever delivered.
    """
    if not db.table_exists(IMPORTS_TABLE):
        return {}
    if ids is not None:
        return _docs_of(db, layer, ids)
    rows = db.execute(f"SELECT feature_id, doc FROM {IMPORTS_TABLE} WHERE layer = %s", [layer]).fetchall()
    return {str(fid): db.json_value(doc) for fid, doc in rows}


def imports_of(db: Db, feature_id: str) -> list[ImportChange]:
    """What imports changed in a feature, oldest first."""
    if not db.table_exists(IMPORT_LOG_TABLE):
        return []
    rows = db.execute(
        f"SELECT seq, at, layer, feature_id, action, changes FROM {IMPORT_LOG_TABLE} "
        "WHERE feature_id = %s ORDER BY seq",
        [feature_id],
    ).fetchall()
    return [
        ImportChange(int(r[0]), db.timestamp(r[1]), r[2], r[3], r[4], db.json_value(r[5]))
        for r in rows
    ]
