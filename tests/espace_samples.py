"""SAMPLE deliveries of Douelle (46088) for the technician web space's tests, in every format.

Invented rows (sample data): three tiers-lieux placed inside Douelle, with the columns of
the Douelle declaration (``examples/grand-cahors/sources/46088-douelle/tiers_lieux.yml``).
``flawed=True`` gives one of them a category outside the layer's enum (« Espace partagé »),
the flaw the mapping assistant's value map fixes.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import geopandas as gpd
import openpyxl
import shapely

COLUMNS = ["Identifiant", "Nom du lieu", "Typologie", "Frais", "Adresse", "Code postal",
           "Longitude", "Latitude", "Téléphone", "Contact", "Mise à jour"]
#: Inside Douelle (46088), checked against the territory's outlines by the tests.
ROWS = [
    ["DOU-1", "La Cale – coworking (échantillon)", "Coworking", "Payant", "108 rue du Port", "46140",
     1.365807, 44.468848, "0565768424", "Contact 1", "02/04/2026"],
    ["DOU-2", "Atelier du quai (échantillon)", "Atelier partagé", "Gratuit", "2 quai du Lot", "46140",
     1.3600, 44.4700, "0565000001", "Contact 2", "02/04/2026"],
    ["DOU-3", "Salle numérique (échantillon)", "Espace numérique", "Gratuit", "1 place de la Mairie",
     "46140", 1.3550, 44.4650, "0565000002", "Contact 3", "02/04/2026"],
]
UNKNOWN_CATEGORY = "Espace partagé"


def rows(*, flawed: bool = False) -> list[list[object]]:
    """The sample rows; ``flawed``: the second one's category is outside the enum."""
    out = [list(r) for r in ROWS]
    if flawed:
        out[1][2] = UNKNOWN_CATEGORY
    return out


def csv_bytes(*, flawed: bool = False) -> bytes:
    """The rows as a ``;`` CSV (UTF-8)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    writer.writerow(COLUMNS)
    writer.writerows(rows(flawed=flawed))
    return buffer.getvalue().encode("utf-8")


def xlsx_bytes(*, flawed: bool = False) -> bytes:
    """The rows as a spreadsheet."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(COLUMNS)
    for row in rows(flawed=flawed):
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def frame(*, flawed: bool = False) -> gpd.GeoDataFrame:
    """The rows as points (EPSG:4326)."""
    data = rows(flawed=flawed)
    columns = {c: [r[i] for r in data] for i, c in enumerate(COLUMNS) if c not in {"Longitude", "Latitude"}}
    points = [shapely.Point(float(r[6]), float(r[7])) for r in data]  # type: ignore[arg-type]
    return gpd.GeoDataFrame(columns, geometry=points, crs="EPSG:4326")


def vector_bytes(kind: str, folder: Path, *, flawed: bool = False) -> tuple[str, bytes]:
    """The rows as ``geojson``, ``gpkg`` or a zipped ``shapefile``: (file name, content)."""
    folder.mkdir(parents=True, exist_ok=True)
    f = frame(flawed=flawed)
    if kind == "geojson":
        path = folder / "douelle.geojson"
        f.to_file(path, driver="GeoJSON")
        return path.name, path.read_bytes()
    if kind == "gpkg":
        path = folder / "douelle.gpkg"
        f.to_file(path, driver="GPKG", layer="tiers_lieux")
        return path.name, path.read_bytes()
    shp = folder / "douelle.shp"
    # shapefile column names are 10 characters at most: the declaration's names do not fit,
    # so this delivery is read with the layer's aliases (a default declaration)
    f.rename(columns={"Identifiant": "source_id", "Nom du lieu": "nom", "Typologie": "categorie",
                      "Frais": "frais", "Code postal": "code_post", "Mise à jour": "date_maj"}
             ).to_file(shp, driver="ESRI Shapefile", encoding="utf-8")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for part in folder.glob("douelle.*"):
            if part.suffix in {".shp", ".shx", ".dbf", ".prj", ".cpg"}:
                zf.write(part, part.name)
    return "douelle-shp.zip", buffer.getvalue()
