"""geocommuns.contrib.conflicts: settle a conflict between a correction and its source.

A refresh lists a conflict when a source changed a field a technician had corrected
(:mod:`geocommuns.ingest.replay`); the correction is kept meanwhile. Settling it is a human
change like any other, journaled: ``--keep edit`` keeps the correction (and the next
refreshes stop flagging it while the source keeps that value), ``--keep source`` puts the
source's value in the layer at once (and the next refreshes follow the source). For a
feature whose source row disappeared, ``--keep source`` deletes it and ``--keep edit``
keeps it as the technicians' own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from geocommuns.contrib.layerstore import LivingStore, table_of
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.errors import GeocommunsError
from geocommuns.ingest import journal
from geocommuns.ingest.journal import WHOLE_FEATURE, Conflict

Keep = Literal["edit", "source"]


class ConflictError(GeocommunsError):
    """A conflict cannot be settled as asked."""


@dataclass(frozen=True)
class Settled:
    """A settled conflict and the journal entry that records it."""

    conflict: Conflict
    keep: Keep
    seq: int


def list_conflicts(store: LivingStore, *, layer: str | None = None) -> list[Conflict]:
    """The open conflicts of the living store (all layers, or one)."""
    with store.reading() as db:
        return journal.open_conflicts(db, layer=layer)


def resolve_conflict(
    store: LivingStore,
    layers: dict[str, LayerDef],
    conflict_id: int,
    *,
    keep: Keep,
    actor: str,
    role: str = "operator",
) -> Settled:
    """Settle one open conflict, apply the kept value and journal it, in one transaction.

    Parameters
    ----------
    store
        The living store.
    layers
        The layer definitions.
    conflict_id
        The number ``geocommuns conflicts`` shows.
    keep
        ``edit`` (the technician's value) or ``source`` (the source's value).
    actor
        Who settles it (recorded in the journal).
    role
        Their role, as recorded.

    Returns
    -------
    Settled
        The conflict and the journal entry's number.

    Raises
    ------
    ConflictError
        When the conflict does not exist or is already settled.
    """
    if keep not in ("edit", "source"):
        msg = f"--keep must be 'edit' or 'source', got {keep!r}"
        raise ConflictError(msg)
    with store.writing() as db, db.transaction():
        found = journal.conflict_by_id(db, conflict_id)
        if found is None:
            msg = f"no conflict {conflict_id}; list them with 'geocommuns conflicts'"
            raise ConflictError(msg)
        if found.status != "open":
            msg = f"conflict {conflict_id} was already settled ({found.status}, by {found.resolved_by})"
            raise ConflictError(msg)
        layer = layers.get(found.layer)
        if layer is None:
            msg = f"conflict {conflict_id} is about layer {found.layer!r}, which is no longer defined"
            raise ConflictError(msg)
        table = table_of(db)
        before = table.get(layer, found.feature_id)
        if keep == "source":
            if found.field == WHOLE_FEATURE:
                table.delete(layer, found.feature_id)
            elif before is not None:
                table.set_field(layer, found.feature_id, found.field, found.source)
        after = table.get(layer, found.feature_id)
        seq = journal.record(
            db, actor=actor, role=role, via="conflicts", layer=layer.id,
            feature_id=found.feature_id, action="resolve",
            before=None if before is None else before.doc,
            after={"field": found.field, "keep": keep, "source": found.source, "edit": found.edit,
                   "conflict": found.id, "feature": None if after is None else after.doc},
            note=f"conflict {found.id} on {found.field}: kept the {keep} value",
        )
        journal.settle_conflict(db, found.id, keep=keep, actor=actor)
    return Settled(conflict=found, keep=keep, seq=seq)
