"""geocommuns.ingest.report: the row accounting of a build or a validation.

For every source ``rows_read == features_written + rows_rejected + rows_merged``. Each
rejected row keeps its row number (1 = first data record), the field at fault, the reason
and its original values; each repair or dropped optional value leaves a warning.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from geocommuns.i18n import gettext as _
from geocommuns.i18n import ngettext, translate

#: Replaces the original values of rows withheld as personal data.
REDACTED = "[personal data withheld]"


@dataclass
class Reject:
    """A row that did not become a feature."""

    row: int
    field: str
    reason: str
    values: dict[str, Any]


@dataclass
class Warning:
    """Something repaired or dropped in a row that was published."""

    row: int
    field: str
    message: str


@dataclass
class SourceReport:
    """Accounting of one source."""

    source: str
    layer: str
    path: str | None
    rows_read: int = 0
    features_written: int = 0
    rows_rejected: int = 0
    rows_merged: int = 0
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[Warning] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        """Whether every row read is accounted for."""
        return self.rows_read == self.features_written + self.rows_rejected + self.rows_merged

    def reject(self, row: int, field_name: str, reason: str, values: dict[str, Any]) -> None:
        """Record a rejected row."""
        self.rejects.append(Reject(row=row, field=field_name, reason=reason, values=values))
        self.rows_rejected = len(self.rejects)

    def warn(self, row: int, field_name: str, message: str) -> None:
        """Record a warning about a published row."""
        self.warnings.append(Warning(row=row, field=field_name, message=message))

    def reject_groups(self) -> list[ReasonGroup]:
        """Rejected rows grouped by field and reason, most frequent first."""
        return group_reasons((r.row, r.field, r.reason) for r in self.rejects)

    def warning_groups(self) -> list[ReasonGroup]:
        """Warnings grouped by field and message, most frequent first."""
        return group_reasons((w.row, w.field, w.message) for w in self.warnings)

    def summary(self) -> dict[str, Any]:
        """The report without the per-row lists (for JSON and the terminal)."""
        reasons: dict[str, int] = {}
        for r in self.rejects:
            key = f"{r.field}: {_reason_kind(r.reason)}"
            reasons[key] = reasons.get(key, 0) + 1
        return {
            "source": self.source,
            "layer": self.layer,
            "path": self.path,
            "rows_read": self.rows_read,
            "features_written": self.features_written,
            "rows_rejected": self.rows_rejected,
            "rows_merged": self.rows_merged,
            "balanced": self.balanced,
            "error": self.error,
            "info": self.info,
            "notes": self.notes,
            "warnings_count": len(self.warnings),
            "reject_reasons": reasons,
            "reject_groups": [asdict(g) for g in self.reject_groups()],
            "warning_groups": [asdict(g) for g in self.warning_groups()],
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, including every reject and warning."""
        data = self.summary()
        data["warnings"] = [asdict(w) for w in self.warnings]
        data["rejects"] = [asdict(r) for r in self.rejects]
        return data

    def write_rejects_csv(self, path: Path) -> None:
        """Write the rejected rows with their original values, one line each."""
        columns: list[str] = []
        for r in self.rejects:
            columns.extend(c for c in r.values if c not in columns)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["row", "field", "reason", *columns])
            for r in self.rejects:
                writer.writerow(
                    [r.row, r.field, r.reason, *(_cell(r.values.get(c)) for c in columns)]
                )


#: How many row numbers a group of identical reasons names.
FIRST_ROWS = 5


@dataclass
class ReasonGroup:
    """Rows sharing one reason: how many, and the first row numbers.

    ``reason`` is the full text when every row gives the same one, else the reason with
    its quoted values and coordinates replaced by ``…``.
    """

    field: str
    reason: str
    count: int
    first_rows: list[int]

    def rows_text(self) -> str:
        """``"row 4"``, ``"rows 2, 4, 9"`` or ``"rows 2, 4, 9, 11, 12…"``."""
        rows = ", ".join(str(r) for r in self.first_rows)
        more = "…" if self.count > len(self.first_rows) else ""
        return ngettext("row {rows}", "rows {rows}", self.count).format(rows=rows + more)


def group_reasons(items: Iterable[tuple[int, str, str]]) -> list[ReasonGroup]:
    """Group ``(row, field, reason)`` by field and kind of reason, most frequent first.

    Reasons that differ only by a quoted value or coordinates (``'12' is not a valid phone
    number``, ``'34' is not…``) fall in one group; ties keep the order of first appearance.
    """
    groups: dict[tuple[str, str], ReasonGroup] = {}
    texts: dict[tuple[str, str], set[str]] = {}
    for row, field_name, reason in items:
        key = (field_name, _reason_kind(reason))
        group = groups.get(key)
        if group is None:
            group = groups[key] = ReasonGroup(field_name, reason, 0, [])
            texts[key] = set()
        group.count += 1
        if len(group.first_rows) < FIRST_ROWS:
            group.first_rows.append(row)
        if len(texts[key]) < 2:
            texts[key].add(reason)
    for key, group in groups.items():
        if len(texts[key]) > 1:
            group.reason = key[1]
    return sorted(groups.values(), key=lambda g: -g.count)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


_QUOTED = re.compile(r"(?<!\w)'[^']*'(?!\w)")
_COORDINATES = re.compile(r"\(-?[\d.]+, -?[\d.]+\)")


def _reason_kind(reason: str) -> str:
    """Group reasons that differ only by the quoted value or the coordinates.

    Apostrophes inside words (``d'agglomération``) and CRS codes (``EPSG:2154``) are kept.
    """
    text = _COORDINATES.sub("(…)", _QUOTED.sub("…", reason))
    return text.split(": ")[0]


@dataclass
class ConflationSummary:
    """What conflation decided in one layer (every pair is in the CSV ``file``)."""

    pairs: int
    decisions: dict[str, int]
    file: str
    uncertain: list[str] = field(default_factory=list)


@dataclass
class BuildReport:
    """Accounting of a whole build."""

    territory: str
    output: str
    started_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())
    sources: list[SourceReport] = field(default_factory=list)
    layers: dict[str, int] = field(default_factory=dict)
    conflation: dict[str, ConflationSummary] = field(default_factory=dict)
    #: Journal entries (human changes) replayed on top of the imports, per layer.
    edits_replayed: dict[str, int] = field(default_factory=dict)
    #: Open conflicts between technicians' corrections and the sources, after this build.
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        """Whether every source is balanced."""
        return all(s.balanced for s in self.sources)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "territory": self.territory,
            "output": self.output,
            "started_at": self.started_at,
            "balanced": self.balanced,
            "totals": self.totals(),
            "layers": self.layers,
            "conflation": {k: asdict(v) for k, v in self.conflation.items()},
            "edits_replayed": self.edits_replayed,
            "conflicts_per_layer": self.conflicts_per_layer(),
            "conflicts": self.conflicts,
            "sources": [s.to_dict() for s in self.sources],
        }

    def conflicts_per_layer(self) -> dict[str, int]:
        """Open conflicts per layer (every layer listed)."""
        return {k: sum(1 for c in self.conflicts if c["layer"] == k) for k in self.layers}

    def totals(self) -> dict[str, int]:
        """Sums over every source."""
        keys = ("rows_read", "features_written", "rows_rejected", "rows_merged")
        return {k: sum(getattr(s, k) for s in self.sources) for k in keys}

    def write(self, directory: Path) -> dict[str, Path]:
        """Write ``build-report.json``, ``build-report.md`` and ``rejects/<source>.csv``."""
        directory.mkdir(parents=True, exist_ok=True)
        rejects_dir = directory / "rejects"
        written: dict[str, Path] = {}
        for old in rejects_dir.glob("*.csv") if rejects_dir.exists() else []:
            old.unlink()
        for s in self.sources:
            if s.rejects:
                target = rejects_dir / f"{s.source}.csv"
                s.write_rejects_csv(target)
                s.info["rejects_file"] = str(target)
        json_path = directory / "build-report.json"
        json_path.write_text(
            json.dumps(self.to_dict(), ensure_ascii=False, indent=1, default=str), encoding="utf-8"
        )
        md_path = directory / "build-report.md"
        md_path.write_text(self.to_markdown(), encoding="utf-8")
        written["json"], written["markdown"] = json_path, md_path
        return written

    def to_markdown(self) -> str:
        """A readable version of the report, in the language in use (:mod:`geocommuns.i18n`)."""
        yes, no = _("yes"), _("no")
        lines = [
            "# " + _("geocommuns build report"),
            "",
            "- " + _("Territory: {territory}").format(territory=self.territory),
            "- " + _("Output: {output}").format(output=f"`{self.output}`"),
            "- " + _("Started: {started}").format(started=self.started_at),
            "- "
            + _("Every row accounted for: {answer}").format(
                answer=yes if self.balanced else f"**{no.upper()}**"
            ),
            "",
            "## " + _("Layers"),
            "",
            "| "
            + " | ".join((_("layer"), _("features"), _("edits replayed"), _("conflicts")))
            + " |",
            "|---|---:|---:|---:|",
            *(
                f"| {k} | {v} | {self.edits_replayed.get(k, 0)} | {self.conflicts_per_layer()[k]} |"
                for k, v in self.layers.items()
            ),
            "",
            "## " + _("Sources"),
            "",
            "| "
            + " | ".join(
                (
                    _("source"),
                    _("layer"),
                    _("read"),
                    _("written"),
                    _("rejected"),
                    _("merged"),
                    _("warnings"),
                    _("balanced"),
                )
            )
            + " |",
            "|---|---|---:|---:|---:|---:|---:|---|",
        ]
        for s in self.sources:
            lines.append(
                f"| {s.source} | {s.layer} | {s.rows_read} | {s.features_written} | "
                f"{s.rows_rejected} | {s.rows_merged} | {len(s.warnings)} | "
                f"{yes if s.balanced else no.upper()} |"
            )
        lines += self._conflation_markdown()
        lines += self._conflicts_markdown()
        for s in self.sources:
            if not (s.rejects or s.error or s.notes):
                continue
            lines += ["", f"### {s.source}", ""]
            if s.error:
                lines.append("**" + _("Error:") + f"** {translate(s.error)}")
            lines += [f"- {translate(n)}" for n in s.notes]
            for g in s.reject_groups():
                lines.append(
                    "- "
                    + _("rejected {count} × {field}: {reason} ({rows})").format(
                        count=g.count, field=g.field, reason=translate(g.reason), rows=g.rows_text()
                    )
                )
            if s.info.get("rejects_file"):
                lines.append(
                    "- " + _("rejected rows: {file}").format(file=f"`{s.info['rejects_file']}`")
                )
        return "\n".join(lines) + "\n"

    def _conflicts_markdown(self) -> list[str]:
        if not self.conflicts:
            return []
        lines = [
            "",
            "## " + _("Conflicts between corrections and sources"),
            "",
            _(
                "A technician corrected these fields and the source has changed them since. The "
                "correction is kept until someone settles it: {command}."
            ).format(command="`geocommuns conflicts resolve ID --keep edit|source`"),
            "",
            "| "
            + " | ".join(
                (
                    "id",
                    _("layer"),
                    _("feature"),
                    _("field"),
                    _("seen by the technician"),
                    _("correction"),
                    _("source now"),
                )
            )
            + " |",
            "|---:|---|---|---|---|---|---|",
        ]
        for c in self.conflicts:
            lines.append(
                f"| {c['id']} | {c['layer']} | `{c['feature_id']}` | {c['field']} | "
                f"{c['seen']} | {c['edit']} | {c['source']} |"
            )
        return lines

    def _conflation_markdown(self, limit: int = 20) -> list[str]:
        if not self.conflation:
            return []
        lines = [
            "",
            "## " + _("Conflation"),
            "",
            _(
                "Features of the same place from different sources are merged into one "
                "(it keeps every identity and the source of each field); uncertain pairs are "
                "not merged but listed for review."
            ),
            "",
            "| "
            + " | ".join(
                (
                    _("layer"),
                    _("pairs considered"),
                    _("merged"),
                    _("uncertain"),
                    _("superseded"),
                    _("distinct"),
                    _("report file"),
                )
            )
            + " |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for layer, c in self.conflation.items():
            d = c.decisions
            lines.append(
                f"| {layer} | {c.pairs} | {d.get('merged', 0)} | {d.get('uncertain', 0)} | "
                f"{d.get('superseded', 0)} | {d.get('distinct', 0)} | `{c.file}` |"
            )
        for layer, c in self.conflation.items():
            if c.uncertain:
                lines += ["", "### " + _("{layer}: pairs to review").format(layer=layer), ""]
                lines += [f"- {u}" for u in c.uncertain[:limit]]
                if len(c.uncertain) > limit:
                    lines.append(
                        "- "
                        + _("… and {count} more in {file}").format(
                            count=len(c.uncertain) - limit, file=f"`{c.file}`"
                        )
                    )
        return lines
