"""Tests of geocommuns.ingest.reader: every format, encoding and separator communes send."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from conftest import make_source

from geocommuns.errors import SourceReadError
from geocommuns.ingest.reader import (
    detect_delimiter,
    detect_encoding,
    format_of,
    shapefile_encoding,
    table_from_file,
)

ROWS = [
    {"nom": "Médiathèque Émile-Zola", "code_postal": "04600", "insee": "46042"},
    {"nom": "Salle des fêtes de Laroque-des-Arcs", "code_postal": "46090", "insee": "46156"},
]
CSV_TEXT = "nom{d}code_postal{d}insee\n" + "".join(
    "{r[nom]}{d}{r[code_postal]}{d}{r[insee]}\n".format(r=r, d="{d}") for r in ROWS
)


def _csv(tmp_path: Path, delimiter: str = ";", encoding: str = "utf-8", name: str = "f.csv") -> Path:
    path = tmp_path / name
    text = CSV_TEXT.replace("{d}", delimiter)
    path.write_bytes(text.encode(encoding))
    return path


def _read(path: Path, **kw: object) -> object:
    return table_from_file(path, make_source(path, **kw))


def _assert_rows(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == ["nom", "code_postal", "insee"]
    assert frame.to_dict("records") == ROWS


# ------------------------------------------------------------------ CSV


@pytest.mark.parametrize(
    ("encoding", "expected"), [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("cp1252", "cp1252")]
)
def test_csv_encodings_detected(tmp_path: Path, encoding: str, expected: str) -> None:
    path = _csv(tmp_path, encoding=encoding)
    table = _read(path)
    assert table.info["encoding"] == expected
    _assert_rows(table.frame)  # accents right, no BOM in the first column name


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_csv_delimiters_detected(tmp_path: Path, delimiter: str) -> None:
    path = _csv(tmp_path, delimiter=delimiter)
    table = _read(path)
    assert table.info["delimiter"] == delimiter
    _assert_rows(table.frame)


def test_codes_keep_leading_zeros(tmp_path: Path) -> None:
    table = _read(_csv(tmp_path))
    assert table.frame.loc[0, "code_postal"] == "04600"
    assert table.geometry is None


def test_declared_encoding_and_delimiter_win(tmp_path: Path) -> None:
    path = _csv(tmp_path, delimiter="|", encoding="cp1252")
    table = _read(path, encoding="cp1252", delimiter="|")
    assert table.info["encoding"] == "cp1252"
    _assert_rows(table.frame)


def test_declared_wrong_encoding_is_a_clear_error(tmp_path: Path) -> None:
    path = _csv(tmp_path, encoding="cp1252")
    with pytest.raises(SourceReadError, match=r"f\.csv: is not valid utf-8 text"):
        _read(path, encoding="utf-8")


def test_unknown_encoding(tmp_path: Path) -> None:
    with pytest.raises(SourceReadError, match="unknown encoding 'klingon'"):
        _read(_csv(tmp_path), encoding="klingon")


def test_quoted_delimiters_and_decimal_commas(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('nom;x\n"Mairie; annexe";"1,4417"\n', encoding="utf-8")
    frame = _read(path).frame
    assert frame.to_dict("records") == [{"nom": "Mairie; annexe", "x": "1,4417"}]


def test_csv_without_header(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text("Mairie;46000\nGymnase;46090\n", encoding="utf-8")
    frame = _read(path, header=False, column_names=["nom", "cp"]).frame
    assert frame.to_dict("records") == [
        {"nom": "Mairie", "cp": "46000"},
        {"nom": "Gymnase", "cp": "46090"},
    ]


def test_detect_encoding_and_delimiter_helpers() -> None:
    assert detect_encoding("é".encode()) == "utf-8"
    assert detect_encoding(b"\xef\xbb\xbfa") == "utf-8-sig"
    assert detect_encoding("é".encode("cp1252")) == "cp1252"
    assert detect_delimiter("a;b;c\n1;2;3\n") == ";"
    assert detect_delimiter("a\tb\n1\t2\n") == "\t"
    assert detect_delimiter("a,b\n1,2\n") == ","
    assert detect_delimiter("single\n") == ","


# ------------------------------------------------------------------ bad files


def test_empty_csv(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(SourceReadError, match=r"^empty\.csv: the file is empty$"):
        _read(path)


def test_blank_csv(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_bytes(b"\n \r\n\t\n")
    with pytest.raises(SourceReadError, match="the file is empty"):
        _read(path)


def test_binary_garbage_as_csv(tmp_path: Path) -> None:
    path = tmp_path / "garbage.csv"
    path.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(SourceReadError, match=r"garbage\.csv: is not a CSV text file"):
        _read(path)


def test_zip_renamed_csv(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    pd.DataFrame({"a": [1]}).to_excel(path.with_suffix(".xlsx"), index=False)
    path.write_bytes(path.with_suffix(".xlsx").read_bytes())
    with pytest.raises(SourceReadError, match="binary data"):
        _read(path)


@pytest.mark.parametrize("suffix", [".xlsx", ".shp", ".geojson", ".gpkg"])
def test_binary_garbage_in_other_formats(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"garbage{suffix}"
    path.write_bytes(b"\x00\x01\x02garbage\xff\xfe" * 300)
    with pytest.raises(SourceReadError, match=rf"^garbage\{suffix}: cannot be read as") as info:
        _read(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path) not in message  # the file name is enough
    assert "It might help" not in message


@pytest.mark.parametrize("suffix", [".xlsx", ".shp", ".geojson", ".gpkg"])
def test_empty_files_in_other_formats(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    with pytest.raises(SourceReadError, match=rf"^empty\{suffix}: "):
        _read(path)


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        ("nom;categorie;x\nA;sport;1\nB;sport;1;2;3\n", "xpected 3 fields in line 3, saw 5"),
        ('nom;categorie\n"A;sport\n', "EOF inside string starting at row 1"),
    ],
)
def test_malformed_csv_is_one_line(tmp_path: Path, content: str, detail: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SourceReadError) as info:
        _read(path)
    message = str(info.value)
    assert message.startswith("bad.csv: cannot be read as CSV with delimiter ';'")
    assert detail in message
    assert "\n" not in message
    assert "Error tokenizing data." not in message


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "plan.pdf"
    path.write_bytes(b"%PDF-1.4")
    with pytest.raises(SourceReadError, match=r"plan\.pdf: unknown file type '\.pdf'"):
        _read(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceReadError, match="no such file"):
        _read(tmp_path / "nope.csv")


def test_format_of() -> None:
    assert format_of(Path("a.CSV")) == "csv"
    assert format_of(Path("a.tsv")) == "csv"
    assert format_of(Path("a.json")) == "geojson"
    assert format_of(Path("lot.osm.pbf")) == "osm"
    assert format_of(Path("a.dat"), "csv") == "csv"


# ------------------------------------------------------------------ XLSX


def test_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "f.xlsx"
    frame = pd.DataFrame(
        {"nom": ["Médiathèque", None, "Stade"], "cp": ["04600", None, 46000], "x": [1.5, None, 2.0]}
    )
    frame.to_excel(path, index=False)
    table = _read(path)
    assert table.info["format"] == "xlsx"
    # the all-empty row is dropped; text stays text, numbers stay numbers
    assert table.frame.to_dict("records") == [
        {"nom": "Médiathèque", "cp": "04600", "x": 1.5},
        {"nom": "Stade", "cp": 46000, "x": 2.0},
    ]


def test_xlsx_named_sheet(tmp_path: Path) -> None:
    path = tmp_path / "f.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"a": [1]}).to_excel(writer, sheet_name="notes", index=False)
        pd.DataFrame({"nom": ["Gymnase"]}).to_excel(writer, sheet_name="equipements", index=False)
    assert _read(path, sheet="equipements").frame.to_dict("records") == [{"nom": "Gymnase"}]
    with pytest.raises(SourceReadError, match="cannot be read as an Excel workbook"):
        _read(path, sheet="absent")


# ------------------------------------------------------------------ vector files


def _gdf(crs: str = "EPSG:4326") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"nom": ["Médiathèque Émile-Zola", "Salle des fêtes"], "cp": ["04600", "46090"]},
        geometry=[shapely.Point(1.4417, 44.4475), shapely.Point(1.47, 44.46)],
        crs="EPSG:4326",
    ).to_crs(crs)


def test_geojson(tmp_path: Path) -> None:
    path = tmp_path / "f.geojson"
    _gdf().to_file(path, driver="GeoJSON")
    table = _read(path)
    assert table.info["format"] == "geojson"
    assert table.info["file_crs"] == "EPSG:4326"
    assert table.frame.to_dict("records")[0] == {"nom": "Médiathèque Émile-Zola", "cp": "04600"}
    assert table.geometry is not None
    assert table.geometry.iloc[0].x == pytest.approx(1.4417)


def test_geopackage_with_table_choice(tmp_path: Path) -> None:
    path = tmp_path / "f.gpkg"
    _gdf("EPSG:2154").to_file(path, layer="equipements", driver="GPKG")
    _gdf().iloc[:1].to_file(path, layer="autre", driver="GPKG")
    table = _read(path, table="equipements")
    assert table.info["file_crs"] == "EPSG:2154"
    assert len(table.frame) == 2
    assert table.frame.loc[1, "nom"] == "Salle des fêtes"
    with pytest.raises(SourceReadError, match=r"f\.gpkg: cannot be read as gpkg") as info:
        _read(path, table="absent")
    assert str(tmp_path) not in str(info.value)


@pytest.mark.parametrize("encoding", ["cp1252", "utf-8"])
def test_shapefile_with_cpg(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "f.shp"
    _gdf("EPSG:2154").to_file(path, encoding=encoding)
    assert path.with_suffix(".cpg").exists()
    assert shapefile_encoding(path) is None
    table = _read(path)
    assert table.info["format"] == "shapefile"
    assert table.info["file_crs"] == "EPSG:2154"
    assert table.frame.loc[0, "nom"] == "Médiathèque Émile-Zola"


@pytest.mark.parametrize("encoding", ["cp1252", "utf-8"])
def test_shapefile_without_cpg_reads_accents(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "f.shp"
    _gdf("EPSG:2154").to_file(path, encoding=encoding)
    path.with_suffix(".cpg").unlink()
    raw = path.with_suffix(".dbf").read_bytes()
    assert "Médiathèque".encode(encoding) in raw
    assert shapefile_encoding(path) == encoding
    table = _read(path)
    assert table.info["encoding"] == encoding
    assert table.frame["nom"].tolist() == ["Médiathèque Émile-Zola", "Salle des fêtes"]


def test_shapefile_without_prj_has_no_crs(tmp_path: Path) -> None:
    path = tmp_path / "f.shp"
    _gdf("EPSG:2154").to_file(path)
    path.with_suffix(".prj").unlink()
    table = _read(path)
    assert "file_crs" not in table.info
    assert table.geometry is not None
    assert table.geometry.iloc[0].x > 500_000


def test_json_array_of_records_is_read_as_a_table(tmp_path: Path) -> None:
    path = tmp_path / "lieux.json"
    path.write_text(
        '[{"Lieu": "Médiathèque", "Coord. X": 44.44, "Coord. Y": 1.44, "cp": 46000},'
        ' {"Lieu": "Mairie", "Téléphone": 565200000, "cp": null}]',
        encoding="utf-8",
    )
    table = _read(path)
    assert table.info["format"] == "json"
    assert table.geometry is None
    assert list(table.frame.columns) == ["Lieu", "Coord. X", "Coord. Y", "cp", "Téléphone"]
    assert table.frame.loc[0, "Lieu"] == "Médiathèque"
    assert table.frame.loc[1, "cp"] is None
    assert table.frame.loc[0, "Téléphone"] is None


def test_json_array_not_of_objects_is_a_read_error(tmp_path: Path) -> None:
    path = tmp_path / "liste.json"
    path.write_text("[1, 2, 3]", encoding="utf-8")
    with pytest.raises(SourceReadError, match="one object per record"):
        _read(path)


def test_delimiter_from_the_header_when_cells_are_full_of_another() -> None:
    """Found by the fuzz test: quoted cells holding ';' made the sniffer pick ';'."""
    from geocommuns.ingest.reader import detect_delimiter

    text = 'nom,categorie,X,Y\n""";",sport,1.44,44.44\n;,sport,1.47,44.46\n'
    assert detect_delimiter(text) == ","
    assert detect_delimiter("nom;categorie\nA;sport\n") == ";"
    assert detect_delimiter("nom\nA\n") == ","
