"""geocommuns.ingest.reader: read a delivered file into raw rows, whatever its format.

Every cell is kept as read (text for CSV and spreadsheets, so codes keep their leading
zeros); typing happens later, field by field. Tabular files are parsed by pandas, vector
files by pyogrio (GDAL). What the reader found out (encoding, delimiter, the file's CRS)
is returned with the rows so the report can say it.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
from pyogrio.errors import DataLayerError, DataSourceError

from geocommuns.definitions.sourcedef import SourceDef
from geocommuns.errors import SourceReadError
from geocommuns.i18n import N_

_FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".shp": "shapefile",
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
    ".osm": "osm",
    ".pbf": "osm",
}
_DELIMITERS = ";,\t|"


@dataclass
class RawTable:
    """Rows as read from a file.

    ``frame`` holds one row per record (index 0..n-1, record ``i`` is row ``i + 1``);
    ``geometry`` is the file's own geometry, aligned with ``frame``, or ``None`` for
    tabular files.
    """

    frame: pd.DataFrame
    geometry: gpd.GeoSeries | None = None
    info: dict[str, Any] = field(default_factory=dict)


def format_of(path: Path, declared: str | None = None) -> str:
    """The format of ``path``: declared, else from its extension."""
    if declared:
        return declared
    suffixes = "".join(path.suffixes[-2:]).lower()
    if suffixes.endswith(".osm.pbf"):
        return "osm"
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        msg = N_(
            "{file}: unknown file type {suffix}; geocommuns reads CSV, XLSX, "
            "Shapefile, GeoJSON and GeoPackage (set 'format:' in the source YAML if the "
            "extension is misleading)"
        ).format(file=path.name, suffix=repr(path.suffix))
        raise SourceReadError(msg)
    return fmt


def detect_encoding(data: bytes) -> str:
    """UTF-8 (with or without BOM) when the bytes decode as such, else Windows-1252."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def _decode(data: bytes, encoding: str, name: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        if encoding.lower().replace("-", "") in {"cp1252", "windows1252"}:
            # cp1252 leaves five bytes undefined; latin-1 maps every byte.
            return data.decode("latin-1")
        msg = N_("{file}: is not valid {encoding} text; check --encoding (cp1252 or utf-8)").format(
            file=name, encoding=encoding
        )
        raise SourceReadError(msg) from None
    except LookupError:
        msg = N_("{file}: unknown encoding {encoding}; use utf-8 or cp1252").format(
            file=name, encoding=repr(encoding)
        )
        raise SourceReadError(msg) from None


def _looks_binary(text: str) -> bool:
    sample = text[:8192]
    if "\x00" in sample:
        return True
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\r\n")
    return controls > max(2, len(sample) // 200)


def detect_delimiter(text: str) -> str:
    """The column delimiter among ``;`` ``,`` tab and ``|``, from the first lines."""
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    sample = "\n".join(lines)
    header = lines[0] if lines else ""
    counts = {d: header.count(d) for d in _DELIMITERS}
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        sniffed = None
    # The sniffer can be fooled by cells full of another delimiter (« "A;B" » in a comma
    # file): a delimiter the header line never uses is not the file's.
    if sniffed is not None and (counts.get(sniffed, 0) or not any(counts.values())):
        return sniffed
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_csv(path: Path, source: SourceDef) -> RawTable:
    data = path.read_bytes()
    if not data.strip():
        msg = N_("{file}: the file is empty").format(file=path.name)
        raise SourceReadError(msg)
    encoding = source.encoding or detect_encoding(data)
    text = _decode(data, encoding, path.name)
    if _looks_binary(text):
        msg = N_(
            "{file}: is not a CSV text file (it holds binary data); export it again as CSV"
        ).format(file=path.name)
        raise SourceReadError(msg)
    delimiter = source.delimiter or detect_delimiter(text)
    # pandas parses bytes: handing it UTF-8 spares the copy StringIO makes (4 bytes a
    # character), which is most of the memory a large file takes to read.
    buffer = io.BytesIO(text.encode("utf-8"))
    del data, text
    try:
        frame = pd.read_csv(
            buffer,
            encoding="utf-8",
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            header=0 if source.header else None,
            names=source.column_names if not source.header else None,
            skip_blank_lines=True,
            skipinitialspace=True,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        detail = str(e).strip().splitlines()[0].removeprefix("Error tokenizing data. C error: ")
        if detail[:1].isupper() and detail[1:2].islower():
            detail = detail[0].lower() + detail[1:]
        msg = N_("{file}: cannot be read as CSV with delimiter {delimiter} ({detail})").format(
            file=path.name, delimiter=repr(delimiter), detail=detail
        )
        raise SourceReadError(msg) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        msg = N_("{file}: has a header but no data rows").format(file=path.name)
        raise SourceReadError(msg)
    info = {"format": "csv", "encoding": encoding, "delimiter": delimiter}
    return RawTable(frame=frame, info=info)


def _read_xlsx(path: Path, source: SourceDef) -> RawTable:
    try:
        frame = pd.read_excel(
            path,
            sheet_name=source.sheet if source.sheet is not None else 0,
            dtype=object,
            header=0 if source.header else None,
            names=source.column_names if not source.header else None,
            engine="openpyxl",
        )
    except (zipfile.BadZipFile, ValueError, KeyError, OSError) as e:
        msg = N_("{file}: cannot be read as an Excel workbook ({detail})").format(
            file=path.name, detail=e
        )
        raise SourceReadError(msg) from None
    frame = frame.dropna(how="all").reset_index(drop=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame.astype(object).where(frame.notna(), None)
    return RawTable(frame=frame, info={"format": "xlsx", "sheet": source.sheet or 0})


def shapefile_encoding(path: Path) -> str | None:
    """The encoding to read a Shapefile's DBF with.

    ``None`` (let GDAL honour it) when a ``.cpg`` file is present; otherwise UTF-8 when the
    DBF records decode as UTF-8, else Windows-1252, the usual encoding of French exports.
    """
    if any(path.with_suffix(ext).exists() for ext in (".cpg", ".CPG")):
        return None
    dbf = next((p for p in (path.with_suffix(".dbf"), path.with_suffix(".DBF")) if p.exists()), None)
    if dbf is None:
        return None
    data = dbf.read_bytes()
    header_length = int.from_bytes(data[8:10], "little") if len(data) > 10 else 0
    try:
        data[header_length:].decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def _gdal_reason(error: Exception, path: Path) -> str:
    """GDAL's first sentence, without the file's full path or its hints about drivers."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    text = text.replace(f"'{path}' ", "").replace(str(path), path.name)
    return re.split(r"(?<=\.)[;,]?\s+(?=[A-Z])", text, maxsplit=1)[0].rstrip(".;, ")


def _json_records(path: Path, source: SourceDef) -> RawTable | None:
    """A plain JSON array of objects (an API or spreadsheet export), read as a table.

    Returns ``None`` when the file is not such an array (GeoJSON is left to GDAL).
    """
    data = path.read_bytes()
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
        return None
    encoding = source.encoding or detect_encoding(data)
    try:
        records = json.loads(_decode(data, encoding, path.name))
    except json.JSONDecodeError as e:
        msg = N_("{file}: is not valid JSON ({detail})").format(file=path.name, detail=e)
        raise SourceReadError(msg) from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        msg = N_("{file}: a JSON array must hold one object per record").format(file=path.name)
        raise SourceReadError(msg)
    frame = pd.DataFrame.from_records(records).astype(object)
    frame = frame.where(frame.notna(), None).reset_index(drop=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    return RawTable(frame=frame, info={"format": "json", "encoding": encoding})


def _read_vector(path: Path, source: SourceDef, fmt: str) -> RawTable:
    if path.stat().st_size == 0:
        msg = N_("{file}: the file is empty").format(file=path.name)
        raise SourceReadError(msg)
    if fmt == "geojson":
        records = _json_records(path, source)
        if records is not None:
            return records
    encoding = source.encoding
    if fmt == "shapefile" and encoding is None:
        encoding = shapefile_encoding(path)
    try:
        gdf = pyogrio.read_dataframe(path, layer=source.table, encoding=encoding)
    except (DataSourceError, DataLayerError) as e:
        msg = N_("{file}: cannot be read as {format} ({detail})").format(
            file=path.name, format=fmt, detail=_gdal_reason(e, path)
        )
        raise SourceReadError(msg) from None
    geometry = gdf.geometry if isinstance(gdf, gpd.GeoDataFrame) else None
    frame = pd.DataFrame(gdf.drop(columns=[gdf.geometry.name]) if geometry is not None else gdf)
    frame = frame.astype(object).where(frame.notna(), None).reset_index(drop=True)
    if geometry is not None:
        geometry = geometry.reset_index(drop=True)
    info: dict[str, Any] = {"format": fmt}
    if encoding:
        info["encoding"] = encoding
    if geometry is not None and geometry.crs is not None:
        info["file_crs"] = geometry.crs.to_string()
    return RawTable(frame=frame, geometry=geometry, info=info)


def table_from_file(path: Path, source: SourceDef) -> RawTable:
    """Read a delivered file.

    Parameters
    ----------
    path
        The file (CSV, XLSX, Shapefile, GeoJSON or GeoPackage).
    source
        Its declaration (encoding, delimiter, sheet, header...).

    Returns
    -------
    RawTable
        The rows, the file's geometry if any, and what was detected.

    Raises
    ------
    SourceReadError
        With one sentence saying why, when the file cannot be read at all.
    """
    if not path.exists():
        msg = N_("{file}: no such file; check 'path' in the source YAML").format(file=path)
        raise SourceReadError(msg)
    fmt = format_of(path, source.format)
    if fmt == "csv":
        return _read_csv(path, source)
    if fmt == "xlsx":
        return _read_xlsx(path, source)
    if fmt == "osm":
        msg = N_(
            "{file}: OpenStreetMap files are read by an 'osm' source, not a 'file' source"
        ).format(file=path.name)
        raise SourceReadError(msg)
    return _read_vector(path, source, fmt)
