"""geocommuns.serve.app: the WSGI application ``geocommuns serve`` runs, as a pipeline.

pygeoapi's Flask application answers OGC API – Features; geocommuns puts a stack of small
middlewares in front of it (:mod:`geocommuns.serve.middleware`, one job each).
:func:`dispatcher` stacks them: read it top to bottom and you follow a request in.
:func:`create_app` is what gunicorn calls in each worker: it reads the configuration once
(:func:`geocommuns.serve.config.read_service_config`), corrects pygeoapi
(:mod:`geocommuns.serve.pygeoapi_compat`), builds the fast path and the edit service from
that one configuration and hands them to :func:`dispatcher`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING

from geocommuns.errors import ServeError
from geocommuns.serve.config import ServiceConfig, read_service_config
from geocommuns.serve.fastpath import FastItems
from geocommuns.serve.middleware.bodylimit import bounded_bodies
from geocommuns.serve.middleware.cors import open_to_reads, preflight
from geocommuns.serve.middleware.downloads import downloads
from geocommuns.serve.middleware.enclosures import download_links
from geocommuns.serve.middleware.fast import fast_path
from geocommuns.serve.middleware.features import features_headers
from geocommuns.serve.middleware.handoff import hand_off
from geocommuns.serve.middleware.home import home, site_assets
from geocommuns.serve.middleware.httpcache import compressed_and_tagged
from geocommuns.serve.middleware.mount import mounted
from geocommuns.serve.middleware.paging import last_page_without_next
from geocommuns.serve.middleware.query import (
    bounded_offset,
    known_parameters_only,
    normalised_query,
)
from geocommuns.serve.middleware.replicas import own_writes_from_primary
from geocommuns.serve.middleware.reports import citizen_reports, report_form_for
from geocommuns.serve.middleware.static import static_files, vendored_libraries
from geocommuns.serve.pygeoapi_compat import patch_pygeoapi
from geocommuns.serve.site import Site, site_from_settings
from geocommuns.serve.wsgi import Handler, Middleware, WSGIApp

if TYPE_CHECKING:
    from geocommuns.contrib.edits import EditService

#: Environment variable naming the folder served at /map/ (set by ``geocommuns serve``).
WEBMAP_ENV = "GEOCOMMUNS_WEBMAP_DIR"
#: Environment variable the generated configuration reads the HTML templates' folder from
#: (``server.templates.path``); each worker sets it to :data:`TEMPLATES`.
TEMPLATES_ENV = "GEOCOMMUNS_TEMPLATES"
#: geocommuns' overrides of pygeoapi's HTML templates (pygeoapi_compat correction 10).
TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Environment variable the generated configuration reads pygeoapi's ``server.locale_dir``
#: from; each worker sets it to :data:`LOCALE` (the French messages of the HTML pages).
LOCALE_ENV = "GEOCOMMUNS_LOCALE"
LOCALE = Path(__file__).resolve().parent / "locale"


def stack(app: WSGIApp, *middlewares: Middleware) -> WSGIApp:
    """Wrap ``app`` in ``middlewares``, the first one outermost (the first to see a request)."""
    return reduce(lambda inner, middleware: middleware(inner), reversed(middlewares), app)


def dispatcher(
    api: WSGIApp,
    webmap: Path | None,
    queryables: Mapping[str, frozenset[str]] | None = None,
    edits: Handler | None = None,
    fast: Handler | None = None,
    restricted: Handler | None = None,
    *,
    reports: Handler | None = None,
    espace: WSGIApp | None = None,
    site: Site | None = None,
) -> WSGIApp:
    """pygeoapi behind the geocommuns middlewares, in the order a request meets them.

    Parameters
    ----------
    api
        pygeoapi's Flask application (or any WSGI application).
    webmap
        Folder served at ``/map/`` (None: no map).
    queryables
        Property names each collection can be filtered on; an items request with any
        other, unknown query parameter is answered 400, as OGC API – Features Part 1
        requires (None: no check).
    edits
        The OGC API – Features Part 4 writes and authenticated item reads
        (:func:`edit_service_from_config`; None: read-only service).
    fast
        Answers GeoJSON pages and items by id from the providers' JSON text
        (:class:`geocommuns.serve.fastpath.FastItems`; None: everything goes to pygeoapi).
    restricted
        The reads of the ``access: restricted`` collections by the tokens that may read
        them (:class:`geocommuns.serve.restricted.RestrictedReads`; None: none). For
        everyone else pygeoapi answers as for a collection that does not exist.
    reports
        The citizens' « Signaler une erreur » form at ``/espace/signaler``
        (:class:`geocommuns.serve.middleware.reports.ReportForm`; None: no reports).
    espace
        The technician web space answering the rest of ``/espace/``
        (:func:`geocommuns.serve.espace.app.espace_from_config`; None: no space).
    site
        The home page, the downloads and the DCAT-AP catalogue (:class:`Site`; None:
        none of them).

    Returns
    -------
    callable
        The WSGI application.
    """
    site = site or Site()
    return stack(
        api,
        # the technician web space: its own pages and upload cap (the citizens' form below)
        mounted("/espace", espace, leave=("/espace/signaler",)),
        bounded_bodies(),  # a request body over 1 MB: 413, on every route
        own_writes_from_primary,  # with a token: reads from the primary, not a replica
        compressed_and_tagged,  # ETag, 304, gzip of the finished GET answer
        preflight(edits=edits is not None),  # OPTIONS preflight: 204 with the CORS rules
        citizen_reports(reports),  # /espace/signaler: the citizens' report form
        hand_off(restricted),  # restricted collections read with a token allowed to
        hand_off(edits),  # Part 4 writes and token reads: the edit service answers
        open_to_reads,  # CORS headers on every GET/HEAD answer below
        home(site.home_page),  # /: the home page for browsers (JSON clients: OGC landing)
        site_assets,  # /assets/: geocommuns' stylesheet
        downloads(site.export_dir, site.layers),  # /telechargements/, /catalogue.jsonld|.ttl
        static_files(webmap),  # /map/: the citizen map
        vendored_libraries,  # /vendor/: Leaflet for pygeoapi's HTML item pages
        download_links(site.export_dir, site.layers, site.url, site.catalogues),  # downloads
        features_headers,  # features said as GeoJSON, with their Link header
        normalised_query,  # filter-lang and sortby as pygeoapi reads them
        known_parameters_only(queryables),  # unknown query parameter: 400
        bounded_offset,  # offset not a whole number in range: 400
        fast_path(fast),  # GeoJSON pages and items from the database's JSON text
        last_page_without_next,  # pygeoapi's next link after the last page dropped
    )


def edit_service_from_config(config: ServiceConfig) -> EditService | None:
    """The Part 4 edit service of a configuration's collections, on either backend.

    Parameters
    ----------
    config
        The service configuration.

    Returns
    -------
    EditService or None
        The edits of the living store the collections are served from: the PostGIS
        database, or the GeoPackage of the embedded default. None when no collection is
        served by a geocommuns provider.

    Raises
    ------
    ServeError
        When the collections are served from more than one store.
    """
    from geocommuns.contrib.edits import EditService
    from geocommuns.contrib.layerstore import GeoPackageStore, LivingStore, PostgisStore
    from geocommuns.serve.provider import layer_definitions, project_path, settings

    served = config.served_by("postgis", "gpkg", restricted=True)
    stores = {
        (c.provider.backend, c.provider.data) for c in served.values() if c.provider is not None
    }
    if not stores:
        return None
    if len(stores) > 1:
        msg = f"{config.path}: the collections must share one store (one database or one GeoPackage), found {len(stores)}"
        raise ServeError(msg)
    backend, data = stores.pop()
    tables = [c.provider.table for c in served.values() if c.provider is not None and c.provider.table]
    current = settings()
    every = layer_definitions(project_path(current.layers_dir))
    layers = {t: every[t] for t in tables if t in every}
    store: LivingStore
    if backend == "postgis":
        from geocommuns.serve.provider_postgis import role_url

        # the write login: the layer tables and the journal, no schema change (publish
        # made the tables); the owner's URL when no separate roles are configured
        store = PostgisStore(role_url(data, "write"), owner=False)
    else:
        store = GeoPackageStore(project_path(data))
    return EditService(store, layers, current.territory)


def create_app() -> WSGIApp:
    """The WSGI application gunicorn runs (``geocommuns.serve.app:create_app()``).

    ``PYGEOAPI_CONFIG`` and ``PYGEOAPI_OPENAPI`` must be set before pygeoapi's Flask
    module is imported; ``geocommuns serve`` sets them.

    Returns
    -------
    callable
        The WSGI application.

    Raises
    ------
    ServeError
        When the environment variables are missing.
    """
    missing = [v for v in ("PYGEOAPI_CONFIG", "PYGEOAPI_OPENAPI") if not os.environ.get(v)]
    if missing:
        msg = f"{', '.join(missing)} not set; start the server with 'geocommuns serve'"
        raise ServeError(msg)
    # pygeoapi reads its configuration when its Flask module is imported: the templates'
    # folder must be known by then (the configuration names it through this variable)
    os.environ[TEMPLATES_ENV] = str(TEMPLATES)
    os.environ[LOCALE_ENV] = str(LOCALE)
    from pygeoapi.flask_app import APP

    config = read_service_config(Path(os.environ["PYGEOAPI_CONFIG"]))
    edits = edit_service_from_config(config)
    if edits is not None:
        from geocommuns.contrib.edits import PART4_CONFORMANCE

        patch_pygeoapi(PART4_CONFORMANCE)
    else:
        patch_pygeoapi()
    webmap = os.environ.get(WEBMAP_ENV)
    reports = report_form_for(config, edits)
    restricted = None
    if edits is not None and config.restricted:
        from geocommuns.serve.restricted import RestrictedReads

        restricted = RestrictedReads(config, edits)
    return dispatcher(
        APP, Path(webmap) if webmap else None, config.queryables(), edits, FastItems(config), restricted,
        reports=reports, espace=espace_for(edits), site=site_of(config),
    )


def espace_for(edits: EditService | None) -> WSGIApp | None:
    """The technician web space on the edit service's living store (None without one)."""
    if edits is None:
        return None
    from geocommuns.serve.espace.app import espace_from_config

    return espace_from_config(edits)


def site_of(config: ServiceConfig) -> Site:
    """The home page, downloads and catalogue of the project the server runs in."""
    from geocommuns.serve.provider import settings
    from geocommuns.serve.pygeoapi_config import CATALOGUE_ID

    catalogues = frozenset({CATALOGUE_ID} & set(config.collections))
    return site_from_settings(settings(), config.url, catalogues)
