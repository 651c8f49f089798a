"""geocommuns.publish.refresh: the routine refresh, one command for a timer.

``geocommuns refresh`` = OpenStreetMap fetch (when online) + build (imports + replay of the
journal) + publish (when PostGIS is configured) + static map + exports + indicators +
catalogue (OGC API – Records, DCAT-AP) and home page, with one summary at the end and an
exit code a systemd timer or cron can act on:

- ``0``: every step ran and nothing needs a human;
- ``1``: every step ran, but something needs a look (open conflicts between corrections
  and sources, rejected rows, OpenStreetMap unreachable so the previous extract was used);
- ``2``: a step failed; the steps after it did not run, and nothing was half-written
  (each step is atomic: the GeoPackage swap, the PostGIS transactions, the files).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from geocommuns.definitions.layerdef import layers_from_dir
from geocommuns.definitions.service import service_from_root
from geocommuns.definitions.territory import territory_from_spec
from geocommuns.errors import GeocommunsError
from geocommuns.ingest.build import build
from geocommuns.settings import Settings

#: Where the refresh writes the territory's OpenStreetMap extract (``kind: osm`` sources
#: that read it get the new objects).
OSM_EXTRACT = Path("geodata/cache/osm/territory.osm")

OK, ATTENTION, FAILED = 0, 1, 2


@dataclass
class StepResult:
    """One step of a refresh."""

    name: str
    status: str  # "ok", "attention", "skipped", "failed"
    detail: str
    seconds: float = 0.0


@dataclass
class RefreshResult:
    """Every step, and the exit code they add up to."""

    steps: list[StepResult] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 all good, 1 something to look at, 2 a step failed."""
        if any(s.status == "failed" for s in self.steps):
            return FAILED
        if any(s.status == "attention" for s in self.steps):
            return ATTENTION
        return OK


def refresh(
    settings: Settings,
    *,
    osm: bool = True,
    osm_timeout: float = 30.0,
    announce: Callable[[StepResult], None] | None = None,
) -> RefreshResult:
    """Run the whole refresh; stop at the first failed step.

    Parameters
    ----------
    settings
        The project's settings.
    osm
        Try to fetch OpenStreetMap first (skipped with a warning when offline).
    osm_timeout
        Seconds to wait for Overpass.
    announce
        Called after each step.

    Returns
    -------
    RefreshResult
        The steps and the exit code.
    """
    result = RefreshResult()
    layers = layers_from_dir(settings.path(settings.layers_dir))

    def step(name: str, run: Callable[[], tuple[str, str]]) -> bool:
        started = time.perf_counter()
        try:
            status, detail = run()
        except GeocommunsError as e:
            status, detail = "failed", str(e)
        done = StepResult(name, status, detail, round(time.perf_counter() - started, 2))
        result.steps.append(done)
        if announce is not None:
            announce(done)
        return status != "failed"

    def fetch() -> tuple[str, str]:
        if not osm:
            return "skipped", "not asked (--no-osm)"
        from geocommuns.ingest.osm_fetch import fetch_osm

        chosen = [v for v in layers.values() if v.osm]
        try:
            fetched = fetch_osm(
                territory_from_spec(settings.territory).outline, chosen, settings.path(OSM_EXTRACT),
                cache_dir=settings.path(Path("geodata/cache/osm")), timeout=osm_timeout,
            )
        except GeocommunsError as e:
            return "attention", f"OpenStreetMap not fetched, the previous extract is used ({e})"
        return "ok", f"{fetched.nodes} nodes, {fetched.ways} ways → {fetched.path}"

    def building() -> tuple[str, str]:
        report = build(settings).report
        totals = report.totals()
        conflicts = len(report.conflicts)
        replayed = sum(report.edits_replayed.values())
        detail = (
            f"{sum(report.layers.values())} features; rows read {totals['rows_read']} = written "
            f"{totals['features_written']} + rejected {totals['rows_rejected']} + merged "
            f"{totals['rows_merged']}; {replayed} correction(s) replayed; {conflicts} open conflict(s)"
        )
        attention = conflicts or totals["rows_rejected"] or not report.balanced
        return ("attention" if attention else "ok"), detail

    def publishing() -> tuple[str, str]:
        if not settings.database_url:
            return "skipped", "GeoPackage backend (no GEOCOMMUNS_DATABASE_URL)"
        from geocommuns.publish.postgis import publish

        communes = territory_from_spec(settings.territory).communes
        counts = publish(settings.database_url, settings.path(settings.output), layers, communes=communes)
        return "ok", ", ".join(f"{k} {v}" for k, v in counts.items())

    snapshot: list[Path] = []

    def living() -> Path:
        """The living layers, read once for the three outputs (on PostGIS, one snapshot)."""
        if not snapshot:
            from geocommuns.publish.living import living_gpkg

            snapshot.append(living_gpkg(settings, layers))
        return snapshot[0]

    def mapping() -> tuple[str, str]:
        from geocommuns.publish.webmap import write_webmap

        made = write_webmap(
            living(), layers, territory_from_spec(settings.territory), settings.path(settings.webmap_dir)
        )
        return "ok", f"{made.index} ({made.mode}, {sum(made.counts.values())} features)"

    def exporting() -> tuple[str, str]:
        from geocommuns.publish.export import export_all

        done = export_all(
            living(), layers, settings.path(settings.export_dir),
            publisher=territory_from_spec(settings.territory).name,
            service=service_from_root(settings.root),
        )
        return "ok", f"{len(done)} layers → {settings.path(settings.export_dir)}"

    def indicating() -> tuple[str, str]:
        import datetime as dt

        from geocommuns.publish.dashboard import write_dashboard
        from geocommuns.publish.indicators import compute_indicators

        territory = territory_from_spec(settings.territory)
        indicators = compute_indicators(living(), layers, territory, today=dt.datetime.now(dt.UTC).date())
        page, _data = write_dashboard(
            indicators, territory, settings.path(settings.webmap_dir), service_from_root(settings.root)
        )
        return "ok", str(page)

    def cataloguing() -> tuple[str, str]:
        from geocommuns.publish.homepage import write_site

        files, page = write_site(settings, layers, living())
        return "ok", f"{files.datasets} records, DCAT-AP {files.jsonld.name}, home page {page}"

    for name, run in (("osm", fetch), ("build", building), ("publish", publishing),
                      ("webmap", mapping), ("export", exporting), ("indicators", indicating),
                      ("catalogue", cataloguing)):
        if not step(name, run):
            break
    return result
