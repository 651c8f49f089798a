"""Stage 2 — ingest: from delivered files, the annuaire and OpenStreetMap to one GeoPackage.

Owns reading files (:mod:`.reader`), positions and CRS (:mod:`.position`), value parsing
(:mod:`.values`), harmonisation (:mod:`.harmonise`), OpenStreetMap (:mod:`.osm`,
:mod:`.osm_fetch`), conflation (:mod:`.conflate`), the source registry (:mod:`.sources`),
the build (:mod:`.build`), the GeoPackage writer/reader (:mod:`.store`) and the row
accounting report (:mod:`.report`).

May import: :mod:`geocommuns.definitions` and the top-level ``settings`` / ``errors``.
"""
