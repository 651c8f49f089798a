"""geocommuns.contrib.reviews: the review queue of each commune (submissions and citizens' reports).

Two kinds of items wait in one queue, ``geocommuns_reviews``, beside the journal in the
living store (PostGIS or the GeoPackage, the same SQL through :class:`~geocommuns.ingest.sqldb.Db`):

- a **submission**: a technician's delivery or correction held for review when the EPCI
  requires it; its ``payload`` carries what would be applied (JSON);
- a **report**: a citizen's « Signaler une erreur » about one feature, with no account,
  what is wrong in a few words and, optionally, an e-mail address to answer to.

Each item is bound to a commune (the INSEE code of the feature concerned, found from the
feature itself for a report) and its EPCI, and moves once from ``proposed`` to
``accepted`` or ``refused`` (:func:`decide`, with a comment), or to ``done``
(:func:`mark_done`; an accepted submission is ``done`` once applied).

Who sees what
    A user reviews the items of their territory and layers (the rule of a feature's
    sensitive fields, :meth:`Principal.reads_sensitive`): the EPCI (admin, or an editor
    for their layers) sees every commune, a contributor their commune's. A submitter also
    sees their own submissions and the decision. The reporter's e-mail is sensitive: it
    is only in the :class:`Item` of a user who reviews the item (``None`` for anyone
    else), and nothing of the queue is ever published (API, map, exports, dashboard read
    the layers, never this table).

How to use it (the web space, the CLI)::

    with store.writing() as db:            # a LivingStore of contrib.layerstore
        item = reviews.submit(db, kind="submission", layer="equipements", commune="46042",
                              epci="200023737", message="Livraison de mars",
                              payload={...}, submitted_by=user.name)
    with store.reading() as db:
        waiting = reviews.list_items(db, user, state="proposed")
    with store.writing() as db, db.transaction():
        item = reviews.decide(db, admin, item.id, accept=True, comment="Vu")
        ...  # apply item.payload in the same transaction, then
        reviews.mark_done(db, admin, item.id)

Every function takes a session (:class:`Db`) so that a caller can join the change to its
own transaction; each write opens a transaction of its own otherwise.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

from geocommuns.contrib.auth import Principal
from geocommuns.contrib.layerstore import table_of
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.errors import GeocommunsError
from geocommuns.i18n import N_
from geocommuns.ingest import journal
from geocommuns.ingest.journal import REVIEWS_TABLE
from geocommuns.ingest.sqldb import Db, as_db

Kind = Literal["submission", "report"]
KINDS: tuple[Kind, ...] = ("submission", "report")
State = Literal["proposed", "accepted", "refused", "done"]
STATES: tuple[State, ...] = ("proposed", "accepted", "refused", "done")
#: Longest message (what is wrong) and comment kept, in characters.
MAX_MESSAGE = 2000
#: Longest e-mail address (RFC 5321's path limit).
MAX_EMAIL = 254
#: An e-mail address as people write it: one ``@``, a dot in the domain, no spaces.
EMAIL = re.compile(r"[^@\s<>\"'(),;:]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251})\.[A-Za-z]{2,63}")
#: Who submitted a citizen's report (no account).
ANONYMOUS = "citoyen"


_COLUMNS = (
    "id, kind, state, commune, epci, layer, feature_id, message, payload, reporter_email, "
    "submitted_by, created_at, decided_by, decided_at, comment"
)


class ReviewError(GeocommunsError):
    """An item cannot be queued, found or decided as asked (the message says why)."""


@dataclass(frozen=True)
class Item:
    """One item of a review queue, as one user may see it.

    ``reporter_email`` is None unless the user reviews the item (see :func:`may_review`).
    """

    id: int
    kind: Kind
    state: State
    commune: str | None
    epci: str | None
    layer: str
    feature_id: str | None
    message: str
    payload: Any
    submitted_by: str
    created_at: dt.datetime
    decided_by: str | None = None
    decided_at: dt.datetime | None = None
    comment: str | None = None
    reporter_email: str | None = None


def ensure_schema(conn: Any) -> None:
    """Make sure the queue table exists (it is made with the journal's tables).

    The table is looked for first, so a login that may not create tables (the API's
    write login on PostGIS) works once the owner made it (``geocommuns publish``).
    """
    db = as_db(conn)
    if not db.table_exists(REVIEWS_TABLE):
        journal.ensure_schema(db)


def clean_text(value: str, *, limit: int = MAX_MESSAGE) -> str:
    """A person's free text as kept: control characters dropped, spaces trimmed, bounded.

    Line breaks and tabs stay; the text is never interpreted (pages escape it).

    Parameters
    ----------
    value
        The text as typed.
    limit
        Longest result, in characters.

    Returns
    -------
    str
        The cleaned text.
    """
    kept = "".join(
        ch
        for ch in value
        if ch in "\n\t" or unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Co"}
    )
    return kept.replace("\r", "").strip()[:limit]


def clean_email(value: str | None) -> str | None:
    """An optional e-mail address, trimmed; None when empty.

    Raises
    ------
    ReviewError
        When something was typed that is not an e-mail address.
    """
    text = (value or "").strip()
    if not text:
        return None
    if len(text) > MAX_EMAIL or EMAIL.fullmatch(text) is None:
        msg = N_("the e-mail address is not valid (for example: first.last@example.org)")
        raise ReviewError(msg)
    return text


def may_review(principal: Principal, item: Item) -> bool:
    """Whether a user reviews an item: sees it whole (e-mail included) and may decide it.

    The EPCI (an admin; an editor for their layers) reviews every commune's items, a
    contributor those of their commune (or EPCI) and layers; a reader none. A submitter
    never decides their own submission.
    """
    if principal.role == "reader":
        return False
    if (
        item.kind == "submission"
        and item.submitted_by == principal.name
        and principal.role != "admin"
    ):
        return False
    if principal.role == "admin":
        return True
    if not principal.may_edit_layer(item.layer):
        return False
    if principal.role == "editor":
        return True
    if item.kind == "submission":
        return False  # a commune's submissions are reviewed by the EPCI
    return principal.owns(item.commune, item.epci)


def _whole(db: Db, row: tuple[Any, ...]) -> Item:
    """An item with every column read back."""
    return Item(
        id=int(row[0]),
        kind=row[1],
        state=row[2],
        commune=row[3],
        epci=row[4],
        layer=row[5],
        feature_id=row[6],
        message=row[7],
        payload=db.json_value(row[8]),
        reporter_email=row[9],
        submitted_by=row[10],
        created_at=db.timestamp(row[11]),
        decided_by=row[12],
        decided_at=None if row[13] is None else db.timestamp(row[13]),
        comment=row[14],
    )


def seen_by(item: Item, principal: Principal | None) -> Item:
    """An item as a user may see it: the reporter's e-mail only for who reviews it."""
    if item.reporter_email is None or (principal is not None and may_review(principal, item)):
        return item
    return dataclasses.replace(item, reporter_email=None)


def submit(
    db: Db,
    *,
    kind: Kind,
    layer: str,
    message: str,
    submitted_by: str,
    commune: str | None,
    epci: str | None = None,
    feature_id: str | None = None,
    payload: Any = None,
    reporter_email: str | None = None,
) -> Item:
    """Put an item in the queue of a commune (state ``proposed``).

    Parameters
    ----------
    db
        A session on the living store (joins the caller's transaction, if any).
    kind
        ``submission`` or ``report``.
    layer
        The layer id.
    message
        What the item is about (a report: what is wrong), cleaned and bounded.
    submitted_by
        The user's name, or :data:`ANONYMOUS` for a citizen's report.
    commune
        The INSEE code of the commune whose queue it joins (None: outside every
        commune, the EPCI's queue only).
    epci
        The commune's EPCI (SIREN).
    feature_id
        The feature concerned (None: a whole delivery).
    payload
        What a submission would apply (JSON-ready), or the report's context.
    reporter_email
        A citizen's address (sensitive), checked.

    Returns
    -------
    Item
        The queued item, whole.

    Raises
    ------
    ReviewError
        When the kind is unknown, the message empty or the e-mail invalid.
    """
    if kind not in KINDS:
        msg = N_("unknown kind {kind}; use one of: {kinds}").format(
            kind=repr(kind), kinds=", ".join(KINDS)
        )
        raise ReviewError(msg)
    text = clean_text(message)
    if not text:
        msg = N_("the message is empty: say in a few words what is wrong")
        raise ReviewError(msg)
    email = clean_email(reporter_email)
    ensure_schema(db)
    with db.transaction():
        row = db.execute(
            f"INSERT INTO {REVIEWS_TABLE} (kind, commune, epci, layer, feature_id, message, payload, "
            "reporter_email, submitted_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
            f"RETURNING {_COLUMNS}",
            [
                kind,
                commune,
                epci,
                layer,
                feature_id,
                text,
                db.json_param(payload),
                email,
                submitted_by,
            ],
        ).fetchone()
    return _whole(db, tuple(row))


def report(
    db: Db,
    layers: dict[str, LayerDef],
    *,
    layer: str,
    feature_id: str,
    message: str,
    reporter_email: str | None = None,
) -> Item:
    """Queue a citizen's report about one feature, in the queue of the feature's commune.

    Parameters
    ----------
    db
        A session on the living store.
    layers
        The layer definitions, by id (the layers that may be reported on).
    layer
        The layer id (the collection of the citizen map's popup).
    feature_id
        The feature's id.
    message
        What is wrong.
    reporter_email
        Where to answer, optional (sensitive: never published).

    Returns
    -------
    Item
        The queued report (``payload``: the feature's name when it has one).

    Raises
    ------
    ReviewError
        When the layer or the feature does not exist, or the text is not acceptable.
    """
    definition = layers.get(layer)
    if definition is None:
        msg = N_("unknown layer {layer}").format(layer=repr(layer))
        raise ReviewError(msg)
    stored = table_of(db).get(definition, feature_id) if 0 < len(feature_id) <= 200 else None
    if stored is None:
        msg = N_("no feature {feature} in layer {layer}").format(
            feature=repr(feature_id), layer=repr(layer)
        )
        raise ReviewError(msg)
    doc = stored.doc
    name = doc.get("nom")
    return submit(
        db,
        kind="report",
        layer=layer,
        feature_id=feature_id,
        message=message,
        submitted_by=ANONYMOUS,
        commune=doc.get("code_insee"),
        epci=doc.get("epci"),
        payload={"nom": name} if isinstance(name, str) else None,
        reporter_email=reporter_email,
    )


def list_items(
    db: Db,
    principal: Principal,
    *,
    kind: Kind | None = None,
    state: State | None = None,
    commune: str | None = None,
    limit: int = 500,
) -> list[Item]:
    """The items a user sees, newest first: those they review, and their own submissions.

    Parameters
    ----------
    db
        A session on the living store.
    principal
        The user (the EPCI's operator on the command line: an ``admin``).
    kind
        Only submissions or only reports.
    state
        Only this state (``proposed``: what waits).
    commune
        Only this commune (INSEE code).
    limit
        How many at most.

    Returns
    -------
    list of Item
        The items, the reporter's e-mail only where the user reviews the item.
    """
    if not db.table_exists(REVIEWS_TABLE):
        return []
    clauses, params = ["1 = 1"], list[Any]()
    for column, value in (("kind", kind), ("state", state), ("commune", commune)):
        if value is not None:
            clauses.append(f"{column} = %s")
            params.append(value)
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM {REVIEWS_TABLE} WHERE {' AND '.join(clauses)} ORDER BY id DESC",
        params,
    ).fetchall()
    found = []
    for row in rows:
        item = _whole(db, tuple(row))
        if may_review(principal, item) or item.submitted_by == principal.name:
            found.append(seen_by(item, principal))
            if len(found) >= limit:
                break
    return found


def get_item(db: Db, principal: Principal, item_id: int) -> Item:
    """One item a user sees (see :func:`list_items`).

    Raises
    ------
    ReviewError
        When there is no such item, or the user does not see it (the same answer: an
        item of another commune is not disclosed).
    """
    row = None
    if db.table_exists(REVIEWS_TABLE):
        row = db.execute(
            f"SELECT {_COLUMNS} FROM {REVIEWS_TABLE} WHERE id = %s", [item_id]
        ).fetchone()
    item = None if row is None else _whole(db, tuple(row))
    if item is None or not (may_review(principal, item) or item.submitted_by == principal.name):
        msg = N_("no item {item} in your review queue").format(item=item_id)
        raise ReviewError(msg)
    return seen_by(item, principal)


def _move(db: Db, principal: Principal, item_id: int, to: State, comment: str | None) -> Item:
    """Move an item to ``to`` from the states it may come from, in one transaction."""
    sources: dict[State, tuple[State, ...]] = {
        "accepted": ("proposed",),
        "refused": ("proposed",),
        "done": ("proposed", "accepted"),
    }
    with db.transaction():
        item = get_item(db, principal, item_id)
        if not may_review(principal, item):
            msg = N_("user {user} ({scope}) may not decide item {item}").format(
                user=principal.name, scope=principal.scope, item=item_id
            )
            raise ReviewError(msg)
        allowed = sources[to]
        if item.kind == "submission" and to == "done":
            allowed = ("accepted",)  # a submission is applied only once accepted
        if item.state not in allowed:
            msg = N_("item {item} is {state}; it cannot become {target}").format(
                item=item_id, state=item.state, target=to
            )
            raise ReviewError(msg)
        note = clean_text(comment or "") or None
        db.execute(
            f"UPDATE {REVIEWS_TABLE} SET state = %s, decided_by = %s, decided_at = {db.now_sql()}, "
            "comment = COALESCE(%s, comment) WHERE id = %s",
            [to, principal.name, note, item_id],
        )
        return get_item(db, principal, item_id)


def decide(
    db: Db, principal: Principal, item_id: int, *, accept: bool, comment: str | None = None
) -> Item:
    """Accept or refuse a proposed item, with a comment the submitter reads.

    Parameters
    ----------
    db
        A session on the living store (joins the caller's transaction: apply an accepted
        submission in the same one).
    principal
        Who decides (they must review the item: see :func:`may_review`).
    item_id
        The item's number.
    accept
        True: ``accepted``; False: ``refused``.
    comment
        Why (shown to the submitter).

    Returns
    -------
    Item
        The item as decided.

    Raises
    ------
    ReviewError
        When the item is unknown to the user, not theirs to decide, or already decided.
    """
    return _move(db, principal, item_id, "accepted" if accept else "refused", comment)


def mark_done(db: Db, principal: Principal, item_id: int, *, comment: str | None = None) -> Item:
    """Mark an item done: a report dealt with, or an accepted submission applied.

    Parameters
    ----------
    db
        A session on the living store.
    principal
        Who marks it (they must review the item).
    item_id
        The item's number.
    comment
        What was done (optional; keeps the decision's comment when empty).

    Returns
    -------
    Item
        The item, ``done``.

    Raises
    ------
    ReviewError
        When the item is unknown to the user, not theirs, or not in a state that can be done.
    """
    return _move(db, principal, item_id, "done", comment)
