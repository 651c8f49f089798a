"""Stage 1 — definitions: what a layer, a source and a territory are.

Owns the YAML models of ``layers/*.yml`` (:mod:`.layerdef`) and of the commune source
declarations (:mod:`.sourcedef`), and the territory reference data: communes, EPCIs,
town halls (:mod:`.territory`).

May import: :mod:`geocommuns.settings`, :mod:`geocommuns.errors`. Nothing else of the
package (every other stage builds on this one).
"""
