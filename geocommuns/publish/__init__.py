"""Stage 3 — publish: what is made from the built layers for people and other systems.

Owns loading into PostGIS (:mod:`.postgis`), open-data exports and national-schema files
(:mod:`.export`, :mod:`.schemafile`, :mod:`.schemacheck`), the territorial indicators and
their dashboard (:mod:`.indicators`, :mod:`.dashboard`) and the citizen map
(:mod:`.webmap`, with its ``static/`` assets and ``vendor/`` libraries).

May import: :mod:`geocommuns.ingest`, :mod:`geocommuns.definitions` and the top-level
``settings`` / ``errors``.
"""
