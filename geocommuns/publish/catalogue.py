"""geocommuns.publish.catalogue: what each layer is, how fresh, and where to get it, for harvesters.

At each refresh, after the exports, :func:`write_catalogue` describes every layer three ways,
all from the same facts (:func:`layer_states`: the layer and service files, the living
layers and their journal, the files ``geocommuns export`` wrote):

- ``catalogue.tinydb`` (beside the downloads): one OGC API – Records record per layer,
  served by pygeoapi as the ``catalogue`` collection
  (:class:`geocommuns.serve.provider_records.RecordsProvider`);
- ``catalogue.jsonld``, ``catalogue.ttl`` and ``catalogue.rdf`` (RDF/XML): the same
  catalogue in DCAT-AP 3.0 (the
  profile data.gouv.fr and the European data portal harvest): the catalogue, one
  ``dcat:Dataset`` per layer, one ``dcat:Distribution`` per download, and the OGC API
  as a ``dcat:DataService``.

A restricted layer (``access: restricted``) is left out of both, and none of its files
is offered: anonymous callers see no trace of it, as in the API.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.service import Service
from geocommuns.ingest import journal
from geocommuns.ingest.sqldb import Db, open_readonly

#: File names written in the export folder.
RECORDS_NAME = "catalogue.tinydb"
JSONLD_NAME = "catalogue.jsonld"
TURTLE_NAME = "catalogue.ttl"
RDFXML_NAME = "catalogue.rdf"
#: Where the downloads are served, below the public URL.
DOWNLOADS_PATH = "telechargements"
#: The descriptor every layer folder holds (Frictionless Data Package).
DATAPACKAGE = "datapackage.json"
DATAPACKAGE_TYPE = "application/json"

_EU = "http://publications.europa.eu/resource/authority/"
#: EU vocabularies (DCAT-AP): update frequencies, languages, file types, data themes.
FREQUENCIES = {
    "continuous": "CONT",
    "daily": "DAILY",
    "weekly": "WEEKLY",
    "monthly": "MONTHLY",
    "quarterly": "QUARTERLY",
    "annual": "ANNUAL",
    "irregular": "IRREG",
}
FILE_TYPES = {"geojson": "GEOJSON", "gpkg": "GPKG", "csv": "CSV", "json": "JSON"}
LANGUAGE_FR = _EU + "language/FRA"
LANGUAGE_EN = _EU + "language/ENG"
THEME_GOVERNMENT = _EU + "data-theme/GOVE"
IANA = "https://www.iana.org/assignments/media-types/"
RECORD_CONFORMANCE = "http://www.opengis.net/spec/ogcapi-records-1/1.0/req/record-core"

CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "locn": "http://www.w3.org/ns/locn#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
}


@dataclass(frozen=True)
class Download:
    """One file of a layer's downloads, as served under ``/telechargements/``."""

    #: Path below the export folder (``equipements/equipements.csv``).
    path: str
    title: str
    media_type: str
    #: The format's short name (``geojson``, ``gpkg``, ``csv``, ``json``).
    format: str
    length: int


@dataclass(frozen=True)
class SourceState:
    """One source of a layer: who delivers it, for which communes, last imported when."""

    source: str
    attribution: str
    communes: tuple[str, ...]
    features: int
    last_import: str | None


@dataclass
class LayerState:
    """What a layer holds now, how fresh it is, and its downloads."""

    layer: str
    features: int = 0
    #: Oldest and newest ``date_maj`` of its features (the producers' update dates).
    first_update: str | None = None
    last_update: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    sources: list[SourceState] = field(default_factory=list)
    #: When a person last corrected one of its features (the journal), ISO UTC.
    last_correction: str | None = None
    #: Its licence as the exports computed it (ODbL once OpenStreetMap data is in).
    licence_id: str | None = None
    licence_title: str | None = None
    licence_url: str | None = None
    downloads: list[Download] = field(default_factory=list)


def downloads_of(export_dir: Path, layer: LayerDef) -> list[Download]:
    """The files of one layer's downloads, read from its ``datapackage.json``.

    Restricted layers have none (they are not downloadable anonymously), nor has a layer
    not exported yet. The data package is listed last.

    Parameters
    ----------
    export_dir
        The export folder (``Settings.export_dir``).
    layer
        The layer.

    Returns
    -------
    list of Download
        The files present on disk, with their current length.
    """
    folder = export_dir / layer.id
    descriptor = folder / DATAPACKAGE
    if layer.access == "restricted" or not descriptor.is_file():
        return []
    try:
        package = json.loads(descriptor.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    out: list[Download] = []
    for resource in package.get("resources") or []:
        name = str(resource.get("path", ""))
        target = folder / name
        if "/" in name or not target.is_file():
            continue
        out.append(
            Download(
                path=f"{layer.id}/{name}",
                title=str(resource.get("title") or name),
                media_type=str(resource.get("mediatype") or "application/octet-stream"),
                format=str(resource.get("format") or target.suffix.lstrip(".")),
                length=target.stat().st_size,
            )
        )
    out.append(
        Download(
            path=f"{layer.id}/{DATAPACKAGE}",
            title=f"{layer.title.fr} : description des fichiers (Data Package)",
            media_type=DATAPACKAGE_TYPE,
            format="json",
            length=descriptor.stat().st_size,
        )
    )
    return out


def _licence_of(export_dir: Path, layer: LayerDef) -> tuple[str, str, str]:
    """The layer's licence as its exports computed it, else the layer file's."""
    descriptor = export_dir / layer.id / DATAPACKAGE
    try:
        first = json.loads(descriptor.read_text(encoding="utf-8"))["licenses"][0]
        return str(first["name"]), str(first.get("title") or first["name"]), str(first["path"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return layer.licence.id, layer.licence.title, layer.licence.url


def _columns(con: sqlite3.Connection, table: str) -> set[str]:
    return {str(r[1]) for r in con.execute(f'PRAGMA table_info("{table}")')}


def layer_states(
    gpkg: Path, layers: Mapping[str, LayerDef], export_dir: Path
) -> dict[str, LayerState]:
    """Counts, update dates, sources, last correction and downloads of every layer.

    Parameters
    ----------
    gpkg
        The living layers (:func:`geocommuns.publish.living.living_gpkg`; its journal
        gives the last human correction).
    layers
        The layer definitions.
    export_dir
        The export folder.

    Returns
    -------
    dict
        Layer id to its :class:`LayerState` (an absent table gives an empty state).
    """
    states = {k: LayerState(layer=k) for k in layers}
    for layer_id, layer in layers.items():
        state = states[layer_id]
        state.licence_id, state.licence_title, state.licence_url = _licence_of(export_dir, layer)
        state.downloads = downloads_of(export_dir, layer)
    if not gpkg.is_file():
        return states
    con = open_readonly(gpkg)
    try:
        tables = {
            str(r[0]) for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        for layer_id in layers:
            if layer_id in tables:
                _measure(con, layer_id, states[layer_id], tables)
        if journal.JOURNAL_TABLE in tables:
            db = Db(con, "sqlite")
            for layer_id, state in states.items():
                last = journal.recent(db, limit=1, layer=layer_id)
                if last:
                    state.last_correction = last[0].at.astimezone(UTC).isoformat(timespec="seconds")
    finally:
        con.close()
    return states


def _measure(con: sqlite3.Connection, table: str, state: LayerState, tables: set[str]) -> None:
    """Fill ``state`` from the layer's table (and its spatial index)."""
    columns = _columns(con, table)
    row = con.execute(
        f'SELECT count(*), min(date_maj), max(date_maj) FROM "{table}"'
        if "date_maj" in columns
        else f'SELECT count(*), NULL, NULL FROM "{table}"'
    ).fetchone()
    state.features, state.first_update, state.last_update = int(row[0]), row[1], row[2]
    rtree = f"rtree_{table}_geom"
    if rtree in tables:
        box = con.execute(
            f'SELECT min(minx), min(miny), max(maxx), max(maxy) FROM "{rtree}"'
        ).fetchone()
        if box and box[0] is not None:
            state.bbox = (
                round(float(box[0]), 6),
                round(float(box[1]), 6),
                round(float(box[2]), 6),
                round(float(box[3]), 6),
            )
    if not {"source", "commune", "attribution", "imported_at"} <= columns:
        return
    by_source: dict[str, dict[str, Any]] = {}
    query = (
        f'SELECT source, attribution, commune, count(*), max(imported_at) FROM "{table}" '
        "GROUP BY source, attribution, commune ORDER BY source, commune"
    )
    for source, attribution, commune, count, last in con.execute(query):
        entry = by_source.setdefault(
            str(source),
            {"attribution": attribution or "", "communes": [], "features": 0, "last": None},
        )
        if commune and commune not in entry["communes"]:
            entry["communes"].append(str(commune))
        entry["features"] += int(count)
        if last and (entry["last"] is None or str(last) > entry["last"]):
            entry["last"] = str(last)
    state.sources = [
        SourceState(
            source=s,
            attribution=e["attribution"],
            communes=tuple(e["communes"]),
            features=e["features"],
            last_import=e["last"],
        )
        for s, e in by_source.items()
    ]


# -- OGC API - Records ---------------------------------------------------------------------


def _polygon(bbox: tuple[float, float, float, float]) -> dict[str, Any]:
    minx, miny, maxx, maxy = bbox
    ring = [[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]
    return {"type": "Polygon", "coordinates": [ring]}


def _contributors(state: LayerState) -> list[dict[str, Any]]:
    """One contact per producer, naming the communes it delivers for."""
    return [
        {
            "organization": s.attribution or s.source,
            "roles": ["contributor"],
            "contactInstructions": "Communes : " + ", ".join(s.communes) if s.communes else None,
        }
        for s in state.sources
    ]


def record(
    layer: LayerDef,
    state: LayerState,
    service: Service,
    *,
    base_url: str,
    territory_bbox: tuple[float, float, float, float],
) -> dict[str, Any]:
    """The OGC API – Records record of one layer (GeoJSON, French first, English beside).

    Parameters
    ----------
    layer
        The layer.
    state
        Its current state (:func:`layer_states`).
    service
        The service file (publisher, contact, languages).
    base_url
        The service's public URL (links are absolute).
    territory_bbox
        Extent used when the layer is empty.

    Returns
    -------
    dict
        The record.
    """
    api = f"{base_url}/collections/{layer.id}"
    links: list[dict[str, Any]] = [
        {"rel": "collection", "href": api, "type": "application/json", "title": layer.title.fr},
        {
            "rel": "items",
            "href": f"{api}/items",
            "type": "application/geo+json",
            "title": f"{layer.title.fr} (OGC API – Features)",
        },
        {
            "rel": "related",
            "href": f"{base_url}/map/",
            "type": "text/html",
            "title": "Carte des services publics",
        },
        {
            "rel": "license",
            "href": state.licence_url,
            "type": "text/html",
            "title": state.licence_title,
        },
    ]
    schema = layer.national_schema
    if schema is not None:
        links.append(
            {
                "rel": "describedby",
                "href": schema.url,
                "type": "text/html",
                "hreflang": "fr",
                "title": f"Schéma national {schema.name} {schema.version}",
            }
        )
    links += [
        {
            "rel": "enclosure",
            "href": f"{base_url}/{DOWNLOADS_PATH}/{d.path}",
            "type": d.media_type,
            "length": d.length,
            "title": d.title,
        }
        for d in state.downloads
    ]
    contacts = [
        {
            "organization": service.epci.name,
            "roles": ["publisher"],
            **(
                {"links": [{"href": service.epci.url, "rel": "about", "type": "text/html"}]}
                if service.epci.url
                else {}
            ),
        },
        {
            "name": service.contact.name,
            "organization": service.epci.name,
            "roles": ["pointOfContact"],
            **({"emails": [{"value": service.contact.email}]} if service.contact.email else {}),
        },
        *_contributors(state),
    ]
    keywords = list(dict.fromkeys([*layer.keywords.fr, *layer.keywords.en]))
    interval = [state.first_update or "..", state.last_update or ".."]
    anytext = " ".join(
        [layer.title.fr, layer.title.en, layer.description.fr, layer.description.en, *keywords]
    )
    properties: dict[str, Any] = {
        "type": "dataset",
        "title": layer.title.fr,
        "description": layer.description.fr,
        "title_en": layer.title.en,
        "description_en": layer.description.en,
        "keywords": keywords,
        "language": {"code": "fr", "name": "français"},
        "languages": [{"code": "fr", "name": "français"}, {"code": "en", "name": "English"}],
        "formats": sorted({d.format.upper() for d in state.downloads}),
        "contacts": [{k: v for k, v in c.items() if v is not None} for c in contacts],
        "license": state.licence_id,
        "rights": state.licence_title,
        "updated": state.last_update,
        "updateFrequency": layer.update_frequency,
        "features": state.features,
        "lastCorrection": state.last_correction,
        "access": layer.access,
        "_metadata-anytext": anytext,
    }
    if schema is not None:
        properties["nationalSchema"] = {
            "name": schema.name,
            "version": schema.version,
            "url": schema.url,
        }
    return {
        "id": layer.id,
        "type": "Feature",
        "conformsTo": [RECORD_CONFORMANCE],
        "time": {"interval": interval},
        "geometry": _polygon(state.bbox or territory_bbox),
        "properties": {k: v for k, v in properties.items() if v is not None},
        "links": links,
    }


# -- DCAT-AP -------------------------------------------------------------------------------


def _typed(node_id: str, rdf_type: str | list[str], **values: Any) -> dict[str, Any]:
    return {"@id": node_id, "@type": rdf_type, **values}


def _text(value: str, lang: str) -> dict[str, str]:
    return {"@value": value, "@language": lang}


def _both(fr: str, en: str | None) -> list[dict[str, str]]:
    return [_text(fr, "fr"), *([_text(en, "en")] if en else [])]


def _date(value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    kind = "xsd:dateTime" if "T" in value else "xsd:date"
    return {"@value": value, "@type": kind}


def _location(bbox: tuple[float, float, float, float]) -> dict[str, Any]:
    minx, miny, maxx, maxy = bbox
    wkt = f"POLYGON(({minx} {miny},{maxx} {miny},{maxx} {maxy},{minx} {maxy},{minx} {miny}))"
    return {
        "@type": "dct:Location",
        "dcat:bbox": {"@value": wkt, "@type": "http://www.opengis.net/ont/geosparql#wktLiteral"},
    }


def dcat_document(
    layers: Mapping[str, LayerDef],
    states: Mapping[str, LayerState],
    service: Service,
    *,
    base_url: str,
    territory_bbox: tuple[float, float, float, float],
    now: datetime | None = None,
) -> dict[str, Any]:
    """The DCAT-AP 3.0 description of the catalogue, as JSON-LD (context embedded).

    Parameters
    ----------
    layers
        The layer definitions (one ``dcat:Dataset`` each).
    states
        Their states (:func:`layer_states`): distributions, dates, licences.
    service
        The service file (catalogue title, publisher, contact).
    base_url
        The service's public URL; every identifier is below it.
    territory_bbox
        The territory's extent (the catalogue's, and an empty layer's).
    now
        When the catalogue was written (default: now, UTC).

    Returns
    -------
    dict
        The JSON-LD document.
    """
    now = now or datetime.now(UTC)
    publisher_id = f"{base_url}/catalogue.jsonld#publisher"
    contact_id = f"{base_url}/catalogue.jsonld#contact"
    api_id = f"{base_url}/catalogue.jsonld#api"
    publisher = _typed(
        publisher_id,
        "foaf:Agent",
        **{
            "foaf:name": service.epci.name,
            "dct:identifier": service.epci.siren,
            **({"foaf:homepage": {"@id": service.epci.url}} if service.epci.url else {}),
        },
    )
    contact = _typed(
        contact_id,
        ["vcard:Kind", "vcard:Organization"],
        **{
            "vcard:fn": service.contact.name,
            **(
                {"vcard:hasEmail": {"@id": f"mailto:{service.contact.email}"}}
                if service.contact.email
                else {}
            ),
            **({"vcard:hasURL": {"@id": service.contact.url}} if service.contact.url else {}),
        },
    )
    languages = [
        _typed(LANGUAGE_FR, "dct:LinguisticSystem"),
        _typed(LANGUAGE_EN, "dct:LinguisticSystem"),
    ]
    datasets = [
        _dataset(
            layer,
            states[layer_id],
            base_url=base_url,
            publisher_id=publisher_id,
            contact_id=contact_id,
            api_id=api_id,
            territory_bbox=territory_bbox,
        )
        for layer_id, layer in layers.items()
    ]
    api = _typed(
        api_id,
        "dcat:DataService",
        **{
            "dct:title": _both("API OGC – Features et Records", "OGC API – Features and Records"),
            "dcat:endpointURL": {"@id": f"{base_url}/"},
            "dcat:endpointDescription": {"@id": f"{base_url}/openapi?f=json"},
            "dct:conformsTo": [
                _typed("http://www.opengis.net/spec/ogcapi-features-1/1.0", "dct:Standard"),
                _typed("http://www.opengis.net/spec/ogcapi-records-1/1.0", "dct:Standard"),
            ],
            "dcat:servesDataset": [{"@id": d["@id"]} for d in datasets],
            "dct:publisher": {"@id": publisher_id},
            "dct:license": _typed(
                service.licence.url, "dct:LicenseDocument", **{"dct:title": service.licence.title}
            ),
        },
    )
    catalogue = _typed(
        f"{base_url}/catalogue.jsonld",
        "dcat:Catalog",
        **{
            "dct:title": _both(service.title.fr, service.title.en),
            "dct:description": _both(service.description.fr, service.description.en),
            "dct:publisher": publisher,
            "dcat:contactPoint": contact,
            "foaf:homepage": _typed(f"{base_url}/", "foaf:Document"),
            "dct:language": languages,
            "dct:license": _typed(
                service.licence.url, "dct:LicenseDocument", **{"dct:title": service.licence.title}
            ),
            "dct:modified": _date(now.isoformat(timespec="seconds")),
            "dct:spatial": _location(territory_bbox),
            "dcat:dataset": datasets,
            "dcat:service": api,
        },
    )
    return {"@context": CONTEXT, "@graph": [catalogue]}


def _dataset(
    layer: LayerDef,
    state: LayerState,
    *,
    base_url: str,
    publisher_id: str,
    contact_id: str,
    api_id: str,
    territory_bbox: tuple[float, float, float, float],
) -> dict[str, Any]:
    """One layer as a ``dcat:Dataset`` with a distribution per download."""
    dataset_id = f"{base_url}/collections/{layer.id}"
    licence = _typed(
        state.licence_url or layer.licence.url,
        "dct:LicenseDocument",
        **{"dct:title": state.licence_title or layer.licence.title},
    )
    distributions = [
        _typed(
            f"{base_url}/{DOWNLOADS_PATH}/{d.path}#distribution",
            "dcat:Distribution",
            **{
                "dct:title": _text(d.title, "fr"),
                "dcat:accessURL": {"@id": f"{base_url}/{DOWNLOADS_PATH}/"},
                "dcat:downloadURL": {"@id": f"{base_url}/{DOWNLOADS_PATH}/{d.path}"},
                "dcat:mediaType": _typed(IANA + d.media_type, "dct:MediaType"),
                "dct:format": _typed(
                    _EU + "file-type/" + FILE_TYPES.get(d.format, d.format.upper()),
                    "dct:MediaTypeOrExtent",
                ),
                "dcat:byteSize": {"@value": str(d.length), "@type": "xsd:decimal"},
                "dct:license": licence,
            },
        )
        for d in state.downloads
    ]
    distributions.append(
        _typed(
            f"{dataset_id}#api",
            "dcat:Distribution",
            **{
                "dct:title": _both(
                    f"{layer.title.fr} (API OGC – Features)",
                    f"{layer.title.en} (OGC API – Features)",
                ),
                "dcat:accessURL": {"@id": f"{dataset_id}/items"},
                "dcat:accessService": {"@id": api_id},
                "dcat:mediaType": _typed(IANA + "application/geo+json", "dct:MediaType"),
                "dct:license": licence,
            },
        )
    )
    values: dict[str, Any] = {
        "dct:identifier": layer.id,
        "dct:title": _both(layer.title.fr, layer.title.en),
        "dct:description": _both(layer.description.fr, layer.description.en),
        "dcat:keyword": [
            *(_text(k, "fr") for k in layer.keywords.fr),
            *(_text(k, "en") for k in layer.keywords.en),
        ],
        "dcat:theme": _typed(
            THEME_GOVERNMENT,
            "skos:Concept",
            **{
                "skos:prefLabel": _both(
                    "Gouvernement et secteur public", "Government and public sector"
                )
            },
        ),
        "dct:publisher": {"@id": publisher_id},
        "dcat:contactPoint": {"@id": contact_id},
        "dcat:landingPage": _typed(f"{base_url}/map/", "foaf:Document"),
        "dct:accrualPeriodicity": _typed(
            _EU + "frequency/" + FREQUENCIES[layer.update_frequency], "dct:Frequency"
        ),
        "dct:spatial": _location(state.bbox or territory_bbox),
        "dct:language": [{"@id": LANGUAGE_FR}],
        "dcat:distribution": distributions,
    }
    if state.first_update or state.last_update:
        values["dct:temporal"] = {
            "@type": "dct:PeriodOfTime",
            **{
                k: v
                for k, v in (
                    ("dcat:startDate", _date(state.first_update)),
                    ("dcat:endDate", _date(state.last_update)),
                )
                if v
            },
        }
    if state.last_update:
        values["dct:modified"] = _date(state.last_update)
    if layer.national_schema is not None:
        schema = layer.national_schema
        values["dct:conformsTo"] = _typed(
            schema.url, "dct:Standard", **{"dct:title": f"{schema.name} {schema.version}"}
        )
    if state.sources:
        values["dct:contributor"] = [
            {"@type": "foaf:Agent", "foaf:name": s.attribution or s.source} for s in state.sources
        ]
    return _typed(dataset_id, "dcat:Dataset", **values)


def rdf_text(document: Mapping[str, Any], syntax: str = "turtle") -> str:
    """The JSON-LD document in another RDF syntax (``turtle``, ``xml``), by rdflib, no network."""
    from rdflib import Graph

    graph = Graph()
    graph.parse(data=json.dumps(document), format="json-ld")
    for prefix in ("dcat", "dct", "foaf", "vcard"):
        graph.bind(prefix, CONTEXT[prefix])
    return graph.serialize(format=syntax)


# -- writing -------------------------------------------------------------------------------


def atomic_write(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        Path(tmp).chmod(0o644)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def records_table(records: list[dict[str, Any]]) -> str:
    """The records as a TinyDB file (the JSON TinyDB reads: one table, numbered documents)."""
    return json.dumps(
        {"_default": {str(i): r for i, r in enumerate(records, start=1)}}, ensure_ascii=False
    )


@dataclass(frozen=True)
class CatalogueFiles:
    """What :func:`write_catalogue` wrote."""

    records: Path
    jsonld: Path
    turtle: Path
    rdfxml: Path
    datasets: int
    #: The states the files were written from (the home page shows them too).
    states: dict[str, LayerState] = field(default_factory=dict)


def write_catalogue(
    gpkg: Path,
    layers: Mapping[str, LayerDef],
    service: Service,
    export_dir: Path,
    *,
    territory_bbox: tuple[float, float, float, float],
    base_url: str | None = None,
    now: datetime | None = None,
) -> CatalogueFiles:
    """Write the Records table and the DCAT-AP documents into the export folder.

    Parameters
    ----------
    gpkg
        The living layers.
    layers
        The layer definitions.
    service
        The service file.
    export_dir
        The export folder (already holding the downloads).
    territory_bbox
        The territory's extent.
    base_url
        The public URL links are written under (default: the service file's
        ``urls.public``).
    now
        The catalogue's modification time.

    Returns
    -------
    CatalogueFiles
        The paths written.
    """
    base = (base_url or service.urls.public).rstrip("/")
    states = layer_states(gpkg, layers, export_dir)
    # restricted layers are not announced: anonymous callers do not see them at all
    public = {k: layer for k, layer in layers.items() if layer.access != "restricted"}
    records = [
        record(layer, states[k], service, base_url=base, territory_bbox=territory_bbox)
        for k, layer in public.items()
    ]
    document = dcat_document(
        public, states, service, base_url=base, territory_bbox=territory_bbox, now=now
    )
    files = CatalogueFiles(
        records=export_dir / RECORDS_NAME,
        jsonld=export_dir / JSONLD_NAME,
        turtle=export_dir / TURTLE_NAME,
        rdfxml=export_dir / RDFXML_NAME,
        datasets=len(records),
        states=states,
    )
    atomic_write(files.records, records_table(records))
    atomic_write(files.jsonld, json.dumps(document, ensure_ascii=False, indent=1))
    atomic_write(files.turtle, rdf_text(document, "turtle"))
    atomic_write(files.rdfxml, rdf_text(document, "xml"))
    return files
