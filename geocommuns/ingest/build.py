"""geocommuns.ingest.build: run every declared source and write the GeoPackage and the reports."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from geocommuns.definitions.layerdef import LayerDef, layers_from_dir
from geocommuns.definitions.sourcedef import SourceDef, sources_from_dir
from geocommuns.definitions.territory import Territory, territory_from_spec
from geocommuns.errors import BuildError, GeocommunsError
from geocommuns.ingest import journal
from geocommuns.ingest.conflate import Conflation, conflate, write_pairs_csv
from geocommuns.ingest.geocode import Geocoder, geocoder_from_settings
from geocommuns.ingest.harmonise import Harmonised, features_frame, harmonise_table
from geocommuns.ingest.replay import Replayed, iter_import_docs, replay
from geocommuns.ingest.report import BuildReport, ConflationSummary, SourceReport
from geocommuns.ingest.sources import table_from_source
from geocommuns.ingest.sqldb import Db, connect_postgis, open_gpkg, writer_lock
from geocommuns.ingest.store import write_geopackage
from geocommuns.settings import Settings

#: Called with (source id, sources done, sources in all, rows processed since last call).
Progress = Callable[[str, int, int, int], None]


@dataclass
class BuildResult:
    """What a build produced."""

    report: BuildReport
    layers: dict[str, gpd.GeoDataFrame]


def harmonise_source(
    source: SourceDef,
    layer: LayerDef,
    territory: Territory,
    *,
    imported_at: dt.datetime | None = None,
    progress: Callable[[int], None] | None = None,
    geocoder: Geocoder | None = None,
) -> Harmonised:
    """Read and harmonise one source; an unreadable source gives an empty, failed report.

    ``geocoder`` places the rows that give an address and no coordinates."""
    try:
        table = table_from_source(source, layer, territory)
    except GeocommunsError as e:
        report = SourceReport(
            source=source.id, layer=layer.id, path=str(source.path), error=str(e)
        )
        return Harmonised(features=features_frame(layer, [], []), report=report)
    return harmonise_table(
        table, layer, source, territory, imported_at=imported_at, progress=progress,
        geocoder=geocoder,
    )


def build(
    settings: Settings, *, progress: Progress | None = None, keep_going: bool = False
) -> BuildResult:
    """Build the GeoPackage of every layer from every declared source.

    Parameters
    ----------
    settings
        Paths and territory.
    progress
        Called with a source id, the sources done, their total, and rows processed.
    keep_going
        Write the GeoPackage even when a source cannot be read (its layer then lacks
        that source's features). By default such a build fails and leaves the previous
        GeoPackage untouched.

    Returns
    -------
    BuildResult
        The report (also written to ``settings.report_dir``) and the layers.

    Raises
    ------
    BuildError
        When a source cannot be read (without ``keep_going``) or the output cannot be written.
    """
    layers = layers_from_dir(settings.path(settings.layers_dir))
    sources = sources_from_dir(settings.path(settings.sources_dir))
    territory = territory_from_spec(settings.territory)
    output = settings.path(settings.output)
    report = BuildReport(territory=f"{territory.name} ({territory.spec})", output=str(output))
    imported_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    geocoder = geocoder_from_settings(settings)
    parts: dict[str, list[gpd.GeoDataFrame]] = {k: [] for k in layers}
    for done, source in enumerate(sources):
        if source.layer not in layers:
            msg = (
                f"source {source.id}: layer {source.layer!r} is not defined; "
                f"layers are: {', '.join(layers)}"
            )
            raise BuildError(msg)

        def tick(n: int, sid: str = source.id, done: int = done) -> None:
            if progress:
                progress(sid, done, len(sources), n)

        result = harmonise_source(
            source, layers[source.layer], territory, imported_at=imported_at, progress=tick,
            geocoder=geocoder,
        )
        report.sources.append(result.report)
        parts[source.layer].append(result.features)
        if progress:
            progress(source.id, done + 1, len(sources), 0)
    kinds = {s.id: s.kind for s in sources}
    built: dict[str, gpd.GeoDataFrame] = {}
    conflation_dir = settings.path(settings.report_dir) / "conflation"
    for old in conflation_dir.glob("*.csv") if conflation_dir.exists() else []:
        old.unlink()
    for layer_id, frames in parts.items():
        merged = conflate(_concat(layers[layer_id], frames), layers[layer_id], kinds=kinds)
        built[layer_id] = merged.features
        _account_merges(report, layer_id, merged, conflation_dir / f"{layer_id}.csv")
    failed = [s for s in report.sources if s.error]
    if failed and not keep_going:
        report.layers = {k: len(v) for k, v in built.items()}
        report.write(settings.path(settings.report_dir))
        names = "; ".join(f"{s.source}: {s.error}" for s in failed)
        msg = f"{len(failed)} source(s) could not be read ({names}); the GeoPackage was not replaced"
        raise BuildError(msg)
    living = store_with_replay(settings, built, layers, imported_at=imported_at)
    report.layers = {k: len(v) for k, v in living.layers.items()}
    report.edits_replayed = living.edits_replayed
    report.conflicts = [
        {"id": c.id, "layer": c.layer, "feature_id": c.feature_id, "field": c.field,
         "seen": c.seen, "edit": c.edit, "source": c.source}
        for c in living.conflicts
    ]
    report.write(settings.path(settings.report_dir))
    return BuildResult(report=report, layers=living.layers)


#: ``geocommuns_meta`` key: the last journal entry a build replayed.
REPLAYED_SEQ = "replayed_seq"


def store_with_replay(
    settings: Settings,
    imports: dict[str, gpd.GeoDataFrame],
    layers: dict[str, LayerDef],
    *,
    imported_at: dt.datetime | None = None,
) -> Replayed:
    """Replay the journal on the imported layers and write them into the GeoPackage.

    The journal is read from the living store: PostGIS when ``GEOCOMMUNS_DATABASE_URL``
    is set (``publish`` then replays what was journaled after this build), else the
    GeoPackage itself, under its writer lock, so no edit slips in between the replay and
    the swap. The open conflicts are saved with the layers, atomically on the GeoPackage.

    Parameters
    ----------
    settings
        Paths and the database URL.
    imports
        The harmonised and conflated layers.
    layers
        The layer definitions.
    imported_at
        When the import ran (logged per changed feature, see
        :func:`geocommuns.ingest.journal.log_imports`).

    Returns
    -------
    Replayed
        The layers as written, the entries replayed and the open conflicts (numbered).
    """
    output = settings.path(settings.output)
    at = imported_at or dt.datetime.now(dt.UTC).replace(microsecond=0)
    # the layers whose per-feature import log is kept; their documents are computed
    # one feature at a time while they are logged
    logged = [k for k, gdf in imports.items() if len(gdf) <= settings.history_max_features]

    def log_changes(db: Db) -> None:
        for k in logged:
            journal.log_imports(db, k, iter_import_docs(imports[k], layers[k]), at)

    if settings.database_url:
        db = connect_postgis(settings.database_url)
        try:
            journal.ensure_schema(db)
            entries = journal.changes(db)
            previous = _previous_docs(db, imports, entries)
            done = replay(imports, entries, layers, previous=previous)
            with db.transaction():
                done.conflicts = journal.save_conflicts(db, done.conflicts)
                log_changes(db)
        finally:
            db.close()
        upto = str(entries[-1].seq if entries else 0)
        write_geopackage(done.layers, layers, output, also=lambda g: _record_position(g, upto))
        return done
    with writer_lock(output):
        entries = []
        previous = {}
        if output.exists():
            db = open_gpkg(output)
            try:
                entries = journal.changes(db)
                previous = _previous_docs(db, imports, entries)
            finally:
                db.close()
        done = replay(imports, entries, layers, previous=previous)
        upto = str(entries[-1].seq if entries else 0)

        def also(g: Db) -> None:
            _record_position(g, upto)
            done.conflicts = journal.save_conflicts(g, done.conflicts)
            log_changes(g)

        write_geopackage(done.layers, layers, output, also=also, locked=True)
    return done


def _previous_docs(
    db: Db, imports: dict[str, gpd.GeoDataFrame], entries: list[journal.Change]
) -> dict[str, dict[str, dict[str, Any]]]:
    """The last imported values of the features the journal names, per layer (what the
    replay needs to keep a corrected feature its sources dropped)."""
    named: dict[str, set[str]] = {k: set() for k in imports}
    for entry in entries:
        if entry.layer in named:
            named[entry.layer].add(entry.feature_id)
    return {k: journal.imported_docs(db, k, ids) for k, ids in named.items() if ids}


def _record_position(db: Db, upto: str) -> None:
    journal.ensure_schema(db)
    journal.set_meta(db, REPLAYED_SEQ, upto)


def _account_merges(
    report: BuildReport, layer_id: str, merged: Conflation, csv_path: Path
) -> None:
    """Move absorbed features from 'written' to 'merged' and record the conflation report."""
    for source in report.sources:
        if source.layer == layer_id and merged.merged_away.get(source.source):
            count = merged.merged_away[source.source]
            source.features_written -= count
            source.rows_merged += count
    if not merged.pairs:
        return
    write_pairs_csv(merged.pairs, csv_path)
    report.conflation[layer_id] = ConflationSummary(
        pairs=len(merged.pairs),
        decisions=merged.counts(),
        file=str(csv_path),
        uncertain=[
            f"{p.left_id} ({p.left_name}) / {p.right_id} ({p.right_name}): "
            f"score {p.score}, {p.distance_m} m"
            for p in merged.pairs
            if p.decision == "uncertain"
        ],
    )


def _concat(layer: LayerDef, frames: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return features_frame(layer, [], [])
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
