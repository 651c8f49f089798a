"""Stage 5 — serve: the OGC API – Features service and the web pages, over HTTP.

Owns the generated pygeoapi configuration (:mod:`.pygeoapi_config`), the provider plugins
(:mod:`.provider`, :mod:`.provider_gpkg`, :mod:`.provider_postgis`), CQL2 (:mod:`.cql`),
the WSGI application and its middlewares (:mod:`.server`), the fast path
(:mod:`.fastpath`), HTTP caching (:mod:`.httpcache`) and the OpenAPI document
(:mod:`.openapi`).

May import every lower stage: :mod:`geocommuns.contrib`, :mod:`geocommuns.publish`,
:mod:`geocommuns.ingest`, :mod:`geocommuns.definitions` and the top-level
``settings`` / ``errors``. Only :mod:`geocommuns.cli` imports this stage.
"""
