"""geocommuns.publish.export: open-data downloads of the built layers, with their metadata.

For each layer, ``<out>/<layer>/`` receives the full layer as GeoJSON, GeoPackage and CSV,
the CSV of the national schema it follows (mapped by
:func:`geocommuns.publish.schemafile.national_table`), and a ``datapackage.json`` (Frictionless Data
Package) describing them: title, description, licence, producer and contributors, update
dates, spatial extent and the schema followed. Sensitive fields are never written.

Licences: commune data is under the layer's licence (Licence Ouverte 2.0); when a layer
holds features derived from OpenStreetMap, the downloaded database as a whole is under the
ODbL with the OpenStreetMap attribution.

Both CSVs are opened in spreadsheets: a text cell a spreadsheet would run as a formula
(starting with ``=``, ``@``, a tab or a carriage return, or ``+``/``-`` followed by
anything but a number) is written with a leading apostrophe (:func:`spreadsheet_cell`).
Numbers, negative coordinates and phone numbers (``+33 5 65...``) are left exactly as
they are, so the national-schema CSVs still validate against their schemas.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio

from geocommuns.definitions.access import is_public, public_layers
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.service import Service
from geocommuns.errors import GeocommunsError
from geocommuns.ingest.store import read_layer
from geocommuns.publish.schemafile import LeftOut, array_items, national_table

ODBL_ID = "ODbL-1.0"
ODBL = {
    "name": ODBL_ID,
    "title": "Open Database License (ODbL) 1.0",
    "path": "https://opendatacommons.org/licenses/odbl/1-0/",
}
OSM_ATTRIBUTION = "© les contributeurs d'OpenStreetMap (ODbL), https://www.openstreetmap.org/copyright"
#: Separator of array values in the geocommuns CSV (GeoJSON keeps real arrays).
ARRAY_SEPARATOR = "|"
#: A text a spreadsheet would run as a formula: starting with =, @, tab or CR, or with
#: + or - followed by something other than a number (a phone, a negative coordinate).
_FORMULA = re.compile(r"[=@\t\r]|[+-](?![\d\s.,()/+-]*$)")


def spreadsheet_cell(value: Any) -> Any:
    """A value as a CSV meant for spreadsheets writes it: formulas neutralised.

    A text :data:`_FORMULA` matches at its start gets a leading apostrophe (spreadsheets
    show it as text, and do not display the apostrophe); anything else is returned as is.

    Parameters
    ----------
    value
        A cell value.

    Returns
    -------
    object
        The value to write.
    """
    if isinstance(value, str) and _FORMULA.match(value):
        return "'" + value
    return value


@dataclass
class LayerExport:
    """What was written for one layer."""

    layer: str
    folder: Path
    features: int
    files: dict[str, Path] = field(default_factory=dict)
    national_csv: Path | None = None
    national_rows: int = 0
    left_out: list[LeftOut] = field(default_factory=list)


def public_frame(gdf: gpd.GeoDataFrame, layer: LayerDef) -> gpd.GeoDataFrame:
    """The layer's public fields only (never a sensitive one), in declaration order."""
    names = [f.name for f in layer.public_fields if f.name in gdf.columns]
    return gpd.GeoDataFrame(gdf[[*names, "geometry"]], geometry="geometry", crs=gdf.crs)


def _with_arrays(gdf: gpd.GeoDataFrame, layer: LayerDef, *, joined: bool) -> gpd.GeoDataFrame:
    out = gdf.copy()
    for f in layer.public_fields:
        if f.type == "array" and f.name in out.columns:
            values = [array_items(v) for v in out[f.name]]
            out[f.name] = [
                (ARRAY_SEPARATOR.join(v) if joined else v) if v else None for v in values
            ]
    return out


def export_layer(
    gpkg: Path,
    layer: LayerDef,
    out_dir: Path,
    *,
    publisher: str,
    now: datetime | None = None,
    service: Service | None = None,
) -> LayerExport:
    """Write every download of one layer and its ``datapackage.json``.

    Parameters
    ----------
    gpkg
        The built GeoPackage.
    layer
        The layer's definition.
    out_dir
        Parent folder; the layer's files go to ``out_dir/<layer id>/``.
    publisher
        Who publishes the downloads (the territory's name).
    now
        The export time (defaults to now, UTC).
    service
        The project's service file: the publishing EPCI of the national CSV's columns
        that name it (``COLL_NOM``, ``COLL_SIRET``) and of the metadata's publisher.

    Returns
    -------
    LayerExport
        Paths written, feature counts and the features left out of the national CSV.
    """
    now = now or datetime.now(UTC)
    features = public_frame(read_layer(gpkg, layer.id), layer)
    folder = out_dir / layer.id
    folder.mkdir(parents=True, exist_ok=True)
    result = LayerExport(layer=layer.id, folder=folder, features=len(features))
    base = folder / layer.id

    geojson = base.with_suffix(".geojson")
    collection = _with_arrays(features, layer, joined=False).to_crs("EPSG:4326").to_geo_dict(drop_id=True)
    geojson.write_text(json.dumps(collection, ensure_ascii=False, default=str), encoding="utf-8")
    result.files["geojson"] = geojson

    geopackage = base.with_suffix(".gpkg")
    geopackage.unlink(missing_ok=True)
    pyogrio.write_dataframe(
        _with_arrays(features, layer, joined=True),
        geopackage,
        layer=layer.id,
        driver="GPKG",
        geometry_type="Point",
        layer_options={"IDENTIFIER": layer.title.fr, "DESCRIPTION": layer.description.fr},
    )
    result.files["gpkg"] = geopackage

    table = base.with_suffix(".csv")
    flat = pd.DataFrame(_with_arrays(features, layer, joined=True).drop(columns="geometry"))
    flat = flat.map(spreadsheet_cell)
    flat.to_csv(table, index=False, encoding="utf-8", lineterminator="\n")
    result.files["csv"] = table

    schema = layer.national_schema
    if schema is not None and schema.fields:
        national = national_table(features, layer, service=service)
        slug = f"{layer.id}-{_slug(schema.name)}-{schema.version}"
        path = folder / f"{slug}.csv"
        _write_national_csv(national.rows, national.columns, path)
        result.national_csv = path
        result.national_rows = len(national.rows)
        result.left_out = national.left_out

    metadata = folder / "datapackage.json"
    metadata.write_text(
        json.dumps(
            datapackage(features, layer, result, publisher=publisher, now=now, service=service),
            ensure_ascii=False,
            indent=1,
        ),
        encoding="utf-8",
    )
    result.files["metadata"] = metadata
    return result


def _slug(text: str) -> str:
    import unicodedata

    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "-".join("".join(c if c.isalnum() else " " for c in ascii_text).split())


def _write_national_csv(rows: pd.DataFrame, columns: list[str], path: Path) -> None:
    """UTF-8, comma, decimal point; values with commas or quotes are quoted."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        for record in rows[columns].itertuples(index=False):
            writer.writerow(
                ["" if v is None or (isinstance(v, float) and v != v) else spreadsheet_cell(v) for v in record]
            )


def _split(values: pd.Series | None, separator: str) -> list[str]:
    """Distinct parts of the values (merged features carry several, joined by ``separator``)."""
    parts: set[str] = set()
    for value in [] if values is None else values.dropna():
        parts.update(p.strip(" ()") for p in re.split(separator, str(value)) if p.strip(" ()"))
    return sorted(parts)


def _licences(features: pd.DataFrame, layer: LayerDef) -> tuple[list[dict[str, str]], list[str]]:
    """The package's licences and the attributions every reuse must show.

    A feature merged from several sources carries an SPDX expression
    (``etalab-2.0 AND ODbL-1.0``) and attributions joined with `` ; ``.
    """
    ids = _split(features.get("licence"), r"\s+(?:AND|OR)\s+")
    attributions = _split(features.get("attribution"), r"\s+;\s+")
    if ODBL_ID in ids:
        # An extract of OpenStreetMap makes the downloaded database a derived database.
        return [dict(ODBL)], [OSM_ATTRIBUTION, *[a for a in attributions if "OpenStreetMap" not in a]]
    licence = {"name": layer.licence.id, "title": layer.licence.title, "path": layer.licence.url}
    others = [{"name": i, "title": i} for i in ids if i != layer.licence.id]
    return [licence, *others], attributions


def datapackage(
    features: gpd.GeoDataFrame,
    layer: LayerDef,
    result: LayerExport,
    *,
    publisher: str,
    now: datetime,
    service: Service | None = None,
) -> dict[str, Any]:
    """The Frictionless Data Package descriptor of one layer's downloads.

    With ``service``, the publisher is the service file's EPCI (name, website) and the
    descriptor links the service's public URL.
    """
    licences, attributions = _licences(features, layer)
    dates = pd.to_datetime(features.get("date_maj"), errors="coerce").dropna() if len(features) else []
    data_updated = max(dates).date().isoformat() if len(dates) else None
    bbox = [round(float(v), 6) for v in features.total_bounds] if len(features) else None
    resources: list[dict[str, Any]] = [
        {
            "name": f"{layer.id}-geojson",
            "path": result.files["geojson"].name,
            "format": "geojson",
            "mediatype": "application/geo+json",
            "title": f"{layer.title.fr} (GeoJSON, WGS84)",
        },
        {
            "name": f"{layer.id}-gpkg",
            "path": result.files["gpkg"].name,
            "format": "gpkg",
            "mediatype": "application/geopackage+sqlite3",
            "title": f"{layer.title.fr} (GeoPackage, WGS84)",
        },
        {
            "name": f"{layer.id}-csv",
            "path": result.files["csv"].name,
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "title": f"{layer.title.fr} (CSV, longitude/latitude WGS84, listes séparées par « {ARRAY_SEPARATOR} »)",
        },
    ]
    schema_info: dict[str, str] | None = None
    schema = layer.national_schema
    if schema is not None and result.national_csv is not None:
        schema_info = {"name": schema.name, "version": schema.version, "url": schema.url}
        resource: dict[str, Any] = {
            "name": f"{layer.id}-{_slug(schema.name)}",
            "path": result.national_csv.name,
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "title": f"{layer.title.fr} au schéma national {schema.name} {schema.version}",
        }
        if schema.schema_url:
            resource["schema"] = schema.schema_url
        resources.append(resource)
    publishing: dict[str, str] = {"title": publisher, "role": "publisher"}
    if service is not None:
        publishing = {"title": service.epci.name, "role": "publisher"}
        if service.epci.url:
            publishing["path"] = service.epci.url
    descriptor: dict[str, Any] = {
        "name": f"geocommuns-{layer.id.replace('_', '-')}",
        "title": f"{layer.title.fr} – {publisher}",
        "description": layer.description.fr,
        "keywords": layer.keywords.fr,
        "licenses": licences,
        "attribution": attributions,
        "contributors": [
            publishing,
            *[{"title": a, "role": "contributor"} for a in attributions if a != OSM_ATTRIBUTION],
        ],
        "created": now.isoformat(timespec="seconds"),
        "data_updated": data_updated,
        "spatial": {"bbox": bbox, "crs": "EPSG:4326", "territory": publisher},
        "features": result.features,
        "national_schema": schema_info,
        "resources": resources,
    }
    if service is not None:
        descriptor["homepage"] = service.urls.public
    return descriptor


def export_all(
    gpkg: Path,
    layers: dict[str, LayerDef],
    out_dir: Path,
    *,
    publisher: str,
    only: str | None = None,
    now: datetime | None = None,
    service: Service | None = None,
) -> list[LayerExport]:
    """Export every public layer (or only the layer ``only``); see :func:`export_layer`.

    The downloads are open data, for anyone: a layer whose definition says ``access:
    restricted`` is never exported (:func:`geocommuns.definitions.access.public_layers`).
    """
    if only is not None and only not in layers:
        msg = f"unknown layer {only!r}; layers are: {', '.join(layers)}"
        raise GeocommunsError(msg)
    if only is not None and not is_public(layers[only]):
        msg = f"layer {only!r} is restricted (access: restricted in its file): it is not exported as open data"
        raise GeocommunsError(msg)
    public = public_layers(layers)
    selected = [public[only]] if only else list(public.values())
    return [
        export_layer(gpkg, layer, out_dir, publisher=publisher, now=now, service=service)
        for layer in selected
    ]

