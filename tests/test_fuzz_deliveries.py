"""Property test: deliveries as producers really send them, through ``validate`` and ``build``.

Hypothesis writes CSV deliveries with every quirk met in real files: encodings (UTF-8,
UTF-8 with BOM, cp1252, latin-1), delimiters, quoting, CRLF, blank lines, empty and
duplicated headers, huge cells, wrong types, mixed CRS (WGS84, Lambert-93, CC44, lat/lon
swapped, junk), binary junk and truncated files. Whatever it writes:

- the command never ends in a traceback;
- ``validate`` exits as documented: 0 every row valid, 1 some rows rejected, 2 the file
  cannot be read (then no report); ``build`` exits 0, or 1 when a source cannot be read
  (the GeoPackage is then left untouched);
- the row accounting is exact: ``rows_read == written + rejected + merged`` always, and
  ``rows_read`` is the number of records written whenever the file is well formed.

Both commands run in-process (typer's runner): 460 deliveries through ``validate`` and 18
builds of two to four deliveries each (over 500 deliveries a run).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer.testing
from conftest import project
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from geocommuns import cli
from geocommuns.cli import app
from geocommuns.ingest import build as build_module

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
#: Points inside the Grand Cahors (lon, lat).
INSIDE = [(1.4417, 44.4475), (1.4700, 44.4600), (1.5134, 44.4564), (1.4500, 44.4400)]
HEADER = ["nom", "categorie", "X", "Y", "telephone", "date_maj", "cp"]
#: The same points in Lambert-93 and CC44, computed once.
PROJECTED = {
    (lon, lat, kind): project(lon, lat, crs)
    for lon, lat in INSIDE
    for kind, crs in (("l93", "EPSG:2154"), ("cc44", "EPSG:3944"))
}
CATEGORIES = ["sport", "culture", "administratif", "Sport", "piscine", "", "42"]


@dataclass
class Delivery:
    """A delivered file and what the test knows about it."""

    data: bytes
    records: int
    well_formed: bool


# Text every encoding can hold: ASCII and the Latin-1 letters cp1252 shares with it.
_LATIN = st.characters(
    codec="latin-1", exclude_categories=("Cc", "Cs"), exclude_characters="\x7f"
).filter(lambda c: c == " " or c.isprintable())
_ANY = st.characters(exclude_categories=("Cc", "Cs", "Co", "Cn"))


@st.composite
def _coordinates(draw: st.DrawFn) -> tuple[str, str]:
    lon, lat = draw(st.sampled_from(INSIDE))
    kind = draw(st.sampled_from(["wgs84", "wgs84", "l93", "l93", "cc44", "swapped", "empty", "junk", "outside"]))
    if kind == "wgs84":
        return f"{lon:.6f}", f"{lat:.6f}"
    if kind == "swapped":
        return f"{lat:.6f}", f"{lon:.6f}"
    if kind in {"l93", "cc44"}:
        x, y = PROJECTED[(lon, lat, kind)]
        comma = draw(st.booleans())
        return (f"{x:.2f}".replace(".", ",") if comma else f"{x:.2f}"), f"{y:.2f}"
    if kind == "outside":
        return "2.3522", "48.8566"
    if kind == "empty":
        return "", ""
    return draw(st.sampled_from(["abc", "#N/D", "1e999", "NaN", "12,34,56"])), draw(
        st.sampled_from(["", "44.4", "x"])
    )


@st.composite
def deliveries(draw: st.DrawFn) -> Delivery:
    """One CSV delivery, written the way some producer would."""
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "latin-1"]))
    alphabet = _ANY if encoding.startswith("utf") else _LATIN
    delimiter = draw(st.sampled_from([";", ",", "\t", "|"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    header = list(HEADER)
    if draw(st.booleans()):
        header[draw(st.integers(0, len(header) - 1))] = draw(st.sampled_from(["", "nom", "X", " "]))
    n = draw(st.integers(0, 12))
    rows = []
    for _ in range(n):
        x, y = draw(_coordinates())
        name = draw(
            st.one_of(
                st.text(alphabet, min_size=0, max_size=30),
                st.sampled_from(["Médiathèque", "Gymnase « Le Stade »", 'Salle "A"; B', "x\ny"]),
                st.just("é" * 5000),  # a huge cell
            )
        )
        rows.append([
            name,
            draw(st.sampled_from(CATEGORIES)),
            x,
            y,
            draw(st.sampled_from(["05 65 20 87 87", "12", "", "+33565208787"])),
            draw(st.sampled_from(["15/09/2026", "2026-13-45", "2024", ""])),
            draw(st.sampled_from(["46000", "4600", "", "abc"])),
        ])
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, quoting=quoting, lineterminator=newline)
    writer.writerow(header)
    blank_lines = draw(st.booleans())
    for row in rows:
        writer.writerow(row)
        if blank_lines and draw(st.booleans()):
            out.write(newline)
    text = out.getvalue()
    data = text.encode(encoding, errors="replace")
    well_formed = True
    damage = draw(st.sampled_from(["none"] * 6 + ["truncate", "junk", "binary", "empty", "header"]))
    if damage == "truncate" and len(data) > 1:
        data = data[: draw(st.integers(1, len(data) - 1))]
        well_formed = False
    elif damage == "junk":
        data += draw(st.binary(min_size=1, max_size=200))
        well_formed = False
    elif damage == "binary":
        data = draw(st.binary(min_size=1, max_size=500))
        well_formed = False
    elif damage == "empty":
        data = draw(st.sampled_from([b"", b"\n\n", b"   "]))
        well_formed = False
    elif damage == "header":
        data = text.split(newline, 1)[0].encode(encoding, errors="replace") + newline.encode()
        n = 0
    # A name written in one column with the delimiter inside relies on quoting: fine. But a
    # record whose cells are all empty is ";;;", a record pandas keeps; all is counted.
    return Delivery(data=data, records=n, well_formed=well_formed)


runner = CliRunner()


@pytest.fixture(autouse=True, scope="module")
def _in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run from a scratch folder so no report or GeoPackage of the checkout is touched.

    Two costs that do not depend on the delivery are paid once: typer turning the app into
    a command, and reading the layer YAMLs (0.4 s each time, in pure-Python YAML). The
    commands still read, harmonise, report and write exactly as they do for a technician.
    """
    here = Path.cwd()
    folder = tmp_path_factory.mktemp("fuzz")
    # A project with the one layer the deliveries fill (the GeoPackage then has one table).
    (folder / "layers").mkdir()
    for name in ("_common.yml", "equipements.yml"):
        shutil.copy(ROOT / "layers" / name, folder / "layers" / name)
    os.chdir(folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(typer.testing, "_get_command", functools.cache(typer.testing._get_command))
        layers = functools.cache(cli.layers_from_dir)
        mp.setattr(cli, "layers_from_dir", layers)
        mp.setattr(build_module, "layers_from_dir", layers)
        yield
    os.chdir(here)


def _no_traceback(result: object) -> None:
    exception = getattr(result, "exception", None)
    assert exception is None or isinstance(exception, SystemExit), (
        f"traceback: {exception!r}\n{getattr(result, 'output', '')}"
    )


@settings(max_examples=460, deadline=None, suppress_health_check=list(HealthCheck))
@given(delivery=deliveries())
def test_validate_never_fails_and_accounts_for_every_row(delivery: Delivery) -> None:
    folder = Path.cwd()
    path = folder / "delivery.csv"
    report = folder / "report.json"
    report.unlink(missing_ok=True)
    path.write_bytes(delivery.data)
    result = runner.invoke(
        app, ["validate", str(path), "--layer", "equipements", "--report", str(report)]
    )
    _no_traceback(result)
    assert result.exit_code in {0, 1, 2}
    if result.exit_code == 2:
        assert not report.exists()
        assert "error:" in result.output
        assert not (delivery.well_formed and delivery.records > 0)
        return
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["balanced"]
    assert data["rows_read"] == data["features_written"] + data["rows_rejected"] + data["rows_merged"]
    assert result.exit_code == (0 if data["rows_rejected"] == 0 else 1)
    if delivery.well_formed:
        assert data["rows_read"] == delivery.records


@settings(max_examples=18, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(deliveries(), min_size=2, max_size=4))
def test_build_never_fails_and_accounts_for_every_row(batch: list[Delivery]) -> None:
    folder = Path.cwd()
    sources = folder / "sources"
    for old in sources.glob("*") if sources.exists() else []:
        old.unlink()
    sources.mkdir(exist_ok=True)
    for k, delivery in enumerate(batch):
        (sources / f"d{k}.csv").write_bytes(delivery.data)
        (sources / f"d{k}.yml").write_text(
            f"id: d{k}\nlayer: equipements\npath: d{k}.csv\nproducer: Fuzz\n", encoding="utf-8"
        )
    output = folder / "out.gpkg"
    output.unlink(missing_ok=True)
    env = {
        "GEOCOMMUNS_ROOT": str(folder),
        "GEOCOMMUNS_LAYERS_DIR": str(folder / "layers"),
        "GEOCOMMUNS_SOURCES_DIR": str(sources),
        "GEOCOMMUNS_OUTPUT": str(output),
        "GEOCOMMUNS_REPORT_DIR": str(folder / "report"),
    }
    result = runner.invoke(app, ["build", "--quiet"], env=env)
    _no_traceback(result)
    report = json.loads((folder / "report" / "build-report.json").read_text(encoding="utf-8"))
    unreadable = [s for s in report["sources"] if s["error"]]
    assert result.exit_code == (1 if unreadable else 0), result.output
    assert output.exists() == (not unreadable)
    assert report["balanced"]
    by_id = {s["source"]: s for s in report["sources"]}
    for k, delivery in enumerate(batch):
        s = by_id[f"d{k}"]
        assert s["rows_read"] == s["features_written"] + s["rows_rejected"] + s["rows_merged"]
        if delivery.well_formed and delivery.records:
            assert s["error"] is None
            assert s["rows_read"] == delivery.records
