"""geocommuns.publish.homepage: the French home page people get at ``/``.

Written at each refresh (``accueil.html`` in the map's folder) from the service file and
the layers' states (:func:`geocommuns.publish.catalogue.layer_states`): the territory's
name, the citizen map embedded, each public layer with its number of places, its
producers per commune with the date each source was last imported, the date of the last
correction by a person (the living store's journal), its licence and its downloads; links
to the dashboard, the downloads, the API, the catalogue and the technicians' space; and
the date of the refresh. The server answers it at ``/`` to browsers, while clients asking
for JSON keep the OGC API landing document (:mod:`geocommuns.serve.middleware.home`).

Every text from a file or a feature is escaped; the page loads nothing from another
origin (its stylesheet is the server's ``/assets/geocommuns.css``).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.service import Service, service_from_root
from geocommuns.definitions.territory import territory_from_spec
from geocommuns.publish.catalogue import (
    DOWNLOADS_PATH,
    CatalogueFiles,
    LayerState,
    atomic_write,
    write_catalogue,
)
from geocommuns.settings import Settings

#: The page's file name in the map's folder.
HOME_NAME = "accueil.html"
_MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


def date_fr(value: str | None) -> str | None:
    """An ISO date or date-time as French words (``1 décembre 2026``), None for None."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value[:10])
    except ValueError:
        return html.escape(value)
    return f"{when.day} {_MONTHS[when.month - 1]} {when.year}"


def _time(value: str) -> str:
    """``<time>`` element of an ISO value, its text in French."""
    return f'<time datetime="{html.escape(value)}">{date_fr(value)}</time>'


def _layer_section(layer: LayerDef, state: LayerState) -> str:
    e = html.escape
    sources = (
        "".join(
            f"<li>{e(s.attribution or s.source)}"
            + (
                f" ({e(', '.join(s.communes))})"
                if s.communes and len(s.communes) <= 6
                else f" ({len(s.communes)} communes)"
                if s.communes
                else ""
            )
            + (f" : importé le {_time(s.last_import)}" if s.last_import else "")
            + "</li>"
            for s in state.sources
        )
        or "<li>Aucune source importée pour l'instant.</li>"
    )
    correction = (
        f"Dernière correction par un technicien : {_time(state.last_correction)}."
        if state.last_correction
        else "Aucune correction par un technicien."
    )
    updated = (
        f" Données mises à jour par les producteurs jusqu'au {_time(state.last_update)}."
        if state.last_update
        else ""
    )
    files = (
        f'<a href="{DOWNLOADS_PATH}/#l-{e(layer.id)}">Télécharger</a> '
        f"({', '.join(sorted({d.format.upper() for d in state.downloads if d.format != 'json'}))})"
        if state.downloads
        else "Pas encore de téléchargement."
    )
    licence = f'<a href="{e(state.licence_url or layer.licence.url)}">{e(state.licence_title or layer.licence.title)}</a>'
    heading = f"h-{e(layer.id)}"
    return (
        f'<section class="gc-layer" aria-labelledby="{heading}">'
        f'<h3 id="{heading}">{e(layer.title.fr)}</h3>'
        f'<p class="gc-count"><strong>{state.features}</strong> lieu{"x" if state.features > 1 else ""}.{updated}</p>'
        f"<p>{e(layer.description.fr)}</p>"
        f"<p>Sources :</p><ul>{sources}</ul>"
        f"<p>{correction}</p>"
        f"<p>Licence : {licence}. {files} · "
        f'<a href="collections/{e(layer.id)}">API</a> · '
        f'<a href="collections/catalogue/items/{e(layer.id)}">Fiche de métadonnées</a></p>'
        "</section>"
    )


def home_page(
    layers: Mapping[str, LayerDef],
    states: Mapping[str, LayerState],
    service: Service,
    *,
    now: datetime | None = None,
) -> str:
    """The home page's HTML.

    Parameters
    ----------
    layers
        The layer definitions (restricted ones are left out).
    states
        Their states.
    service
        The service file.
    now
        The refresh time shown (default: now, UTC).

    Returns
    -------
    str
        A whole HTML document, in French.
    """
    e = html.escape
    now = now or datetime.now(UTC)
    public = [(k, layer) for k, layer in layers.items() if layer.access != "restricted"]
    total = sum(states[k].features for k, _ in public)
    sections = "".join(_layer_section(layer, states[k]) for k, layer in public)
    contact = service.contact
    contact_line = e(contact.name) + (
        f' – <a href="mailto:{e(contact.email)}">{e(contact.email)}</a>' if contact.email else ""
    )
    stamp = now.isoformat(timespec="seconds")
    return f"""<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(service.title.fr)}</title>
<meta name="description" content="{e(service.description.fr)}">
<link rel="stylesheet" href="assets/geocommuns.css">
<link rel="alternate" type="application/json" href="?f=json" title="API OGC (JSON)">
<link rel="alternate" type="application/ld+json" href="catalogue.jsonld" title="Catalogue DCAT-AP">
</head>
<body class="gc-home">
<a class="gc-skip" href="#contenu">Aller au contenu</a>
<header class="gc-header">
<p class="gc-territory">{e(service.epci.name)}</p>
<nav aria-label="Navigation principale"><ul>
<li><a href="map/">Carte</a></li>
<li><a href="map/indicateurs.html">Tableau de bord</a></li>
<li><a href="{DOWNLOADS_PATH}/">Téléchargements</a></li>
<li><a href="collections">API</a></li>
<li><a href="collections/catalogue/items">Catalogue</a></li>
<li><a href="espace/">Espace technicien</a></li>
</ul></nav>
</header>
<main id="contenu">
<h1>{e(service.title.fr)}</h1>
<p>{e(service.description.fr)}</p>
<section aria-labelledby="h-carte">
<h2 id="h-carte">La carte</h2>
<iframe class="gc-map" src="map/#embed=1" title="Carte des services publics ({e(service.epci.name)})" loading="lazy"></iframe>
<p><a href="map/">Ouvrir la carte en plein écran</a></p>
</section>
<section aria-labelledby="h-couches">
<h2 id="h-couches">Les données ({total} lieux)</h2>
{sections}
</section>
<section aria-labelledby="h-reutiliser">
<h2 id="h-reutiliser">Réutiliser les données</h2>
<ul>
<li><a href="{DOWNLOADS_PATH}/">Téléchargements</a> : GeoJSON, GeoPackage, CSV et CSV au schéma national.</li>
<li><a href="collections">API OGC – Features</a> (QGIS, GDAL, OWSLib…) ; <a href="openapi?f=json">description OpenAPI</a>, <a href="conformance">conformité</a>.</li>
<li><a href="collections/catalogue/items">Catalogue OGC API – Records</a> et <a href="catalogue.jsonld">catalogue DCAT-AP</a> (<a href="catalogue.ttl">Turtle</a>), moissonnable par data.gouv.fr.</li>
</ul>
</section>
</main>
<footer class="gc-footer">
<p>Dernière mise à jour : {_time(stamp)}. Contact : {contact_line}.</p>
</footer>
</body>
</html>
"""


def write_home_page(
    layers: Mapping[str, LayerDef],
    states: Mapping[str, LayerState],
    service: Service,
    out_dir: Path,
    *,
    now: datetime | None = None,
) -> Path:
    """Write ``accueil.html`` into ``out_dir`` (the map's folder), atomically."""
    path = out_dir / HOME_NAME
    atomic_write(path, home_page(layers, states, service, now=now))
    return path


def write_site(
    settings: Settings,
    layers: Mapping[str, LayerDef],
    gpkg: Path,
    *,
    base_url: str | None = None,
    now: datetime | None = None,
) -> tuple[CatalogueFiles, Path]:
    """The refresh's last step: the catalogue (Records, DCAT-AP) and the home page.

    Parameters
    ----------
    settings
        The project's settings (service file at its root, export and map folders).
    layers
        The layer definitions.
    gpkg
        The living layers (after the exports, which the catalogue describes).
    base_url
        The public URL written in the catalogue (default: the service file's).
    now
        The refresh time.

    Returns
    -------
    tuple
        What the catalogue wrote, and the home page's path.
    """
    now = now or datetime.now(UTC)
    service = service_from_root(settings.root)
    bounds = territory_from_spec(settings.territory).communes.total_bounds
    bbox = (
        round(float(bounds[0]), 4),
        round(float(bounds[1]), 4),
        round(float(bounds[2]), 4),
        round(float(bounds[3]), 4),
    )
    files = write_catalogue(
        gpkg,
        layers,
        service,
        settings.path(settings.export_dir),
        territory_bbox=bbox,
        base_url=base_url,
        now=now,
    )
    page = write_home_page(
        layers, files.states, service, settings.path(settings.webmap_dir), now=now
    )
    return files, page
