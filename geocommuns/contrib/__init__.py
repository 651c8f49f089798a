"""Stage 4 — contrib: people who change the shared layers.

Owns users, roles and tokens (:mod:`.auth`), OGC API Part 4 writes (:mod:`.edits`),
checking a written feature with the delivery rules (:mod:`.payload`), the record of
human changes (:mod:`geocommuns.ingest.journal`, which it writes), the living layers as writers see them (:mod:`.layerstore`) a commune's bulk re-delivery (:mod:`.contribute`), the review queue (:mod:`.reviews`)
and the logic of the technician web space (:mod:`.portal`).

May import: :mod:`geocommuns.publish`, :mod:`geocommuns.ingest`,
:mod:`geocommuns.definitions` and the top-level ``settings`` / ``errors``.
"""
