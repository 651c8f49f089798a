"""Stage 5 — serve: the OGC API – Features service and the web pages, over HTTP.

Owns the generated pygeoapi configuration (:mod:`.pygeoapi_config`) and its typed reading
(:mod:`.config`), the provider plugins (:mod:`.provider`, :mod:`.provider_gpkg`,
:mod:`.provider_postgis`), CQL2 (:mod:`.cql`), the WSGI application (:mod:`.app`: the
pipeline of :mod:`.middleware`, in :mod:`.wsgi` terms), the fast path (:mod:`.fastpath`),
the corrections of pygeoapi (:mod:`.pygeoapi_compat`), the OpenAPI document
(:mod:`.openapi`), the technician web space at ``/espace/`` (:mod:`.espace`) and
``geocommuns serve`` (:mod:`.server`).

May import every lower stage: :mod:`geocommuns.contrib`, :mod:`geocommuns.publish`,
:mod:`geocommuns.ingest`, :mod:`geocommuns.definitions` and the top-level
``settings`` / ``errors``. Only :mod:`geocommuns.cli` imports this stage.
"""
