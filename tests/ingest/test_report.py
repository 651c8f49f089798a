"""Tests of geocommuns.ingest.report: row accounting, rejects CSV, JSON and Markdown reports."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from geocommuns.ingest.report import BuildReport, SourceReport


def _report() -> SourceReport:
    report = SourceReport(source="46042-cahors-equipements", layer="equipements", path="e.csv")
    report.rows_read = 5
    report.features_written = 2
    report.rows_merged = 1
    report.reject(2, "telephone", "'12' is not a valid phone number", {"nom": "A", "tel": "12"})
    report.reject(4, "telephone", "'34' is not a valid phone number", {"nom": "B", "tel": "34"})
    report.warn(1, "code_postal", "postcode '6000' had lost its leading zero; read as '06000'")
    return report


def test_reject_counts_and_balance() -> None:
    report = _report()
    assert report.rows_rejected == 2
    assert report.balanced
    report.rows_read = 6
    assert not report.balanced


def test_reject_keeps_row_field_reason_values() -> None:
    reject = _report().rejects[0]
    assert (reject.row, reject.field) == (2, "telephone")
    assert reject.reason == "'12' is not a valid phone number"
    assert reject.values == {"nom": "A", "tel": "12"}


def test_summary_groups_reasons_by_kind() -> None:
    summary = _report().summary()
    assert summary["reject_reasons"] == {"telephone: … is not a valid phone number": 2}
    assert summary["warnings_count"] == 1
    assert summary["balanced"] is True
    assert "rejects" not in summary


def test_to_dict_has_every_reject_and_warning() -> None:
    data = _report().to_dict()
    assert [r["row"] for r in data["rejects"]] == [2, 4]
    assert data["rejects"][1]["values"] == {"nom": "B", "tel": "34"}
    assert data["warnings"] == [
        {
            "row": 1,
            "field": "code_postal",
            "message": "postcode '6000' had lost its leading zero; read as '06000'",
        }
    ]
    json.dumps(data)


def test_rejects_csv_round_trip(tmp_path: Path) -> None:
    report = _report()
    report.reject(5, "geometry", "no geometry", {"nom": "C", "extra": None, "accent": "é"})
    target = tmp_path / "rejects" / "x.csv"
    report.write_rejects_csv(target)
    with target.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["row", "field", "reason", "nom", "tel", "extra", "accent"]
    assert rows[1] == ["2", "telephone", "'12' is not a valid phone number", "A", "12", "", ""]
    assert rows[3] == ["5", "geometry", "no geometry", "C", "", "", "é"]
    assert len(rows) == 4


def test_build_report_write(tmp_path: Path) -> None:
    ok = SourceReport(source="ok", layer="wifi", path=None, rows_read=3, features_written=3)
    failed = SourceReport(source="bad", layer="wifi", path="b.csv", error="b.csv: the file is empty")
    build = BuildReport(territory="Grand Cahors (epci:200023737)", output="out.gpkg")
    build.sources = [_report(), ok, failed]
    build.layers = {"equipements": 2, "wifi": 3}
    stale = tmp_path / "rejects" / "old.csv"
    stale.parent.mkdir()
    stale.write_text("old", encoding="utf-8")

    written = build.write(tmp_path)

    assert not stale.exists()
    assert (tmp_path / "rejects" / "46042-cahors-equipements.csv").exists()
    assert not (tmp_path / "rejects" / "ok.csv").exists()
    data = json.loads(written["json"].read_text(encoding="utf-8"))
    assert data["balanced"] is True
    assert data["totals"] == {
        "rows_read": 8,
        "features_written": 5,
        "rows_rejected": 2,
        "rows_merged": 1,
    }
    assert data["sources"][2]["error"] == "b.csv: the file is empty"
    markdown = written["markdown"].read_text(encoding="utf-8")
    assert "| 46042-cahors-equipements | equipements | 5 | 2 | 2 | 1 | 1 | yes |" in markdown
    assert "**Error:** b.csv: the file is empty" in markdown
    assert "rejected 2 × telephone" in markdown
    assert "Every row accounted for: yes" in markdown


def test_build_report_not_balanced() -> None:
    build = BuildReport(territory="t", output="o")
    build.sources = [SourceReport(source="s", layer="wifi", path=None, rows_read=2)]
    assert not build.balanced
    assert "**NO**" in build.to_markdown()


def test_summary_groups_mixed_crs_reasons_and_keeps_both_crs() -> None:
    report = SourceReport(source="s", layer="equipements", path=None, rows_read=2)
    for row, (x, y) in enumerate([(1.4417, 44.4475), (1.47, 44.46)], start=1):
        report.reject(
            row, "geometry", f"coordinates ({x:g}, {y:g}) look like EPSG:4326, but the file is in "
            "EPSG:2154", {}
        )
    assert report.summary()["reject_reasons"] == {
        "geometry: coordinates (…) look like EPSG:4326, but the file is in EPSG:2154": 2
    }


def test_summary_keeps_apostrophes_of_names() -> None:
    report = SourceReport(source="s", layer="equipements", path=None, rows_read=1)
    reason = "outside the territory (Communauté d'agglomération du Grand Cahors)"
    report.reject(1, "geometry", reason, {})
    assert report.summary()["reject_reasons"] == {f"geometry: {reason}": 1}


def test_rejects_and_warnings_grouped_by_reason_with_first_rows() -> None:
    report = SourceReport(source="s", layer="equipements", path=None, rows_read=12)
    for row in range(1, 9):
        report.reject(row, "telephone", f"'{row}{row}' is not a valid phone number", {})
    report.reject(9, "geometry", "outside the territory (Grand Cahors)", {})
    report.reject(11, "geometry", "outside the territory (Grand Cahors)", {})
    report.reject(12, "categorie", "'Piscine' is not one of: sport, culture", {})
    for row in (1, 3):
        report.warn(row, "code_postal", f"postcode '600{row}' had lost its leading zero")
    groups = report.reject_groups()
    assert [(g.field, g.count, g.first_rows) for g in groups] == [
        ("telephone", 8, [1, 2, 3, 4, 5]),
        ("geometry", 2, [9, 11]),
        ("categorie", 1, [12]),
    ]
    assert groups[0].reason == "… is not a valid phone number"
    assert groups[0].rows_text() == "rows 1, 2, 3, 4, 5…"
    # One text for every row of a group: it is kept whole, quoted value included.
    assert groups[1].reason == "outside the territory (Grand Cahors)"
    assert groups[2].reason == "'Piscine' is not one of: sport, culture"
    assert groups[2].rows_text() == "row 12"
    assert [(g.count, g.first_rows) for g in report.warning_groups()] == [(2, [1, 3])]
    summary = report.summary()
    assert summary["reject_groups"][0] == {
        "field": "telephone",
        "reason": "… is not a valid phone number",
        "count": 8,
        "first_rows": [1, 2, 3, 4, 5],
    }
    build = BuildReport(territory="t", output="o")
    build.sources = [report]
    markdown = build.to_markdown()
    assert "- rejected 8 × telephone: … is not a valid phone number (rows 1, 2, 3, 4, 5…)" in markdown
    assert "- rejected 1 × categorie: 'Piscine' is not one of: sport, culture (row 12)" in markdown
    assert markdown.count("telephone") == 1
