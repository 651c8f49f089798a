"""geocommuns.ingest.build: run every declared source and write the GeoPackage and the reports."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geocommuns.definitions.layerdef import LayerDef, layers_from_dir
from geocommuns.definitions.sourcedef import SourceDef, sources_from_dir
from geocommuns.definitions.territory import Territory, territory_from_spec
from geocommuns.errors import BuildError, GeocommunsError
from geocommuns.ingest.conflate import Conflation, conflate, write_pairs_csv
from geocommuns.ingest.harmonise import Harmonised, features_frame, harmonise_table
from geocommuns.ingest.report import BuildReport, ConflationSummary, SourceReport
from geocommuns.ingest.sources import table_from_source
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
) -> Harmonised:
    """Read and harmonise one source; an unreadable source gives an empty, failed report."""
    try:
        table = table_from_source(source, layer, territory)
    except GeocommunsError as e:
        report = SourceReport(
            source=source.id, layer=layer.id, path=str(source.path), error=str(e)
        )
        return Harmonised(features=features_frame(layer, [], []), report=report)
    return harmonise_table(
        table, layer, source, territory, imported_at=imported_at, progress=progress
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
            source, layers[source.layer], territory, imported_at=imported_at, progress=tick
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
    report.layers = {k: len(v) for k, v in built.items()}
    failed = [s for s in report.sources if s.error]
    report.write(settings.path(settings.report_dir))
    if failed and not keep_going:
        names = "; ".join(f"{s.source}: {s.error}" for s in failed)
        msg = f"{len(failed)} source(s) could not be read ({names}); the GeoPackage was not replaced"
        raise BuildError(msg)
    write_geopackage(built, layers, output)
    return BuildResult(report=report, layers=built)


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
