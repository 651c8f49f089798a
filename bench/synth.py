"""bench.synth: realistic synthetic layers for the benchmarks (sample data, seeded).

Every field of every layer definition gets a plausible value: enumerations draw from
their declared values, phone numbers are E.164 numbers of the Lot (+33 5 65…), dates are
ISO dates, arrays are JSON lists. Points are spread over the communes of the Lot
(``departement:46``, from :mod:`geocommuns.definitions.territory`), more of them where more people
live, each one inside the commune whose INSEE code, name and EPCI it carries.

The result is a GeoPackage written by :func:`geocommuns.ingest.store.write_geopackage`, so it has
the exact table layout of a build (``fid``, ``geom``, rtree, unique index on ``id``), and it
can be loaded into PostGIS with :func:`geocommuns.publish.postgis.publish`. Every feature is labelled
as sample data (``source``, ``attribution``, and "(exemple)" in its name).

Run ``python -m bench.synth --features 200000 --output bench/data/synth-200000.gpkg``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geocommuns.definitions.layerdef import FieldDef, LayerDef, layers_from_dir
from geocommuns.definitions.territory import WGS84, Territory, territory_from_spec
from geocommuns.ingest.store import write_geopackage
from geocommuns.settings import Settings

logger = logging.getLogger(__name__)

#: The territory the points are spread over: the whole Lot.
TERRITORY = "departement:46"
SIZES = (10_000, 200_000, 1_000_000)
ATTRIBUTION = "Données synthétiques d'exemple (banc d'essai geocommuns)"
IMPORTED_AT = "2026-11-23T00:00:00+00:00"
_STREETS = (
    "rue de la République", "avenue Jean Jaurès", "place de la Mairie", "route de Cahors",
    "chemin des Vignes", "rue du Lot", "boulevard Gambetta", "allée des Tilleuls",
    "rue de l'Église", "route de Figeac", "impasse du Moulin", "place du Foirail",
)
_KINDS = {
    "equipements": "Équipement",
    "conteneurs": "Point d'apport",
    "wifi": "Borne wifi",
    "tiers_lieux": "Tiers-lieu",
    "telesante": "Point de télésanté",
}
_HOURS = (
    "Mo-Fr 09:00-12:00,14:00-17:00", "Mo-Sa 08:30-18:30", "24/7",
    "Tu-Sa 10:00-12:30,14:00-18:00", "Mo,We,Fr 14:00-18:00",
)
_OPERATORS = ("Grand Cahors", "Commune", "Département du Lot", "Syndicat mixte", "Association")
#: Free vocabularies of array fields without an enumeration.
_ARRAY_WORDS = {
    "ssid": ("WiFi4EU", "Lot-Wifi", "Mairie-Public", "Mediatheque"),
    "services": ("impression", "visio", "accompagnement_numerique", "reprographie", "formation"),
    "labels": ("France Tiers-Lieux", "Fabrique de territoire", "Fabrique numérique"),
}
#: Free vocabularies of plain string fields (the rest get "<title> n" values).
_WORDS = {
    "type": ("Gymnase", "Bibliothèque", "Salle polyvalente", "Mairie", "Stade", "Médiathèque"),
    "operateur": ("Orange", "SFR", "Alsatis", "Lot Numérique"),
    "operateur_solution": ("Medadom", "Tessan", "H4D", "Consultation connectée"),
    "modele": ("Cisco Meraki MR36", "Ubiquiti U6-Lite", "Aruba AP-505"),
    "collecte": ("hebdomadaire", "bimensuelle", "à la demande"),
    "structure_porteuse": ("Association Lot Numérique", "Commune", "SCIC Tiers-Lieu"),
}


def _choice(rng: np.random.Generator, values: Sequence[Any], n: int) -> np.ndarray:
    return np.asarray(values, dtype=object)[rng.integers(0, len(values), n)]


def _with_nulls(rng: np.random.Generator, values: np.ndarray, share: float) -> np.ndarray:
    """Blank out about ``share`` of the values, as in real deliveries."""
    out = values.astype(object)
    out[rng.random(len(out)) < share] = None
    return out


def _dates(rng: np.random.Generator, n: int, start: str = "2019-01-01") -> np.ndarray:
    first = dt.date.fromisoformat(start).toordinal()
    days = rng.integers(first, dt.date(2026, 11, 1).toordinal(), n)
    return np.array([dt.date.fromordinal(int(d)).isoformat() for d in days], dtype=object)


def _array(rng: np.random.Generator, vocabulary: Sequence[str], n: int) -> list[list[str]]:
    sizes = rng.integers(1, min(3, len(vocabulary)) + 1, n)
    picks = rng.random((n, len(vocabulary))).argsort(axis=1)
    return [[vocabulary[j] for j in sorted(picks[i, : sizes[i]])] for i in range(n)]


def _digits(rng: np.random.Generator, n: int, width: int, prefix: str = "") -> np.ndarray:
    numbers = rng.integers(0, 10 ** (width - len(prefix)), n)
    return np.array([f"{prefix}{v:0{width - len(prefix)}d}" for v in numbers], dtype=object)


def _field_values(
    f: FieldDef, rng: np.random.Generator, n: int
) -> np.ndarray | list[list[str]] | pd.api.extensions.ExtensionArray:
    """Plausible values of one layer-specific (or optional common) field."""
    enum = f.constraints.enum
    if f.type == "array":
        return _array(rng, enum or _ARRAY_WORDS.get(f.name, (f"{f.name}_a", f"{f.name}_b")), n)
    if f.type == "boolean":
        return pd.array(rng.random(n) < 0.4, dtype="boolean")
    if f.type == "integer":
        low = int(f.constraints.minimum if f.constraints.minimum is not None else 0)
        high = int(f.constraints.maximum if f.constraints.maximum is not None else low + 2000)
        return pd.array(rng.integers(low, high + 1, n), dtype="Int64")
    if f.type == "number":
        return pd.array(np.round(rng.random(n) * 1000, 2), dtype="Float64")
    if f.type == "date":
        return _with_nulls(rng, _dates(rng, n, "2010-01-01"), 0.2)
    if enum:
        return _choice(rng, enum, n)
    if f.format == "uri":
        return _with_nulls(rng, np.array([f"https://rdv.exemple.fr/{i}" for i in range(n)]), 0.5)
    if f.format == "finess":
        return _digits(rng, n, 9, "46")
    return _with_nulls(rng, _choice(rng, _WORDS.get(f.name, [f"{f.title} {k}" for k in range(1, 21)]), n), 0.2)


def _sensitive_values(f: FieldDef, rng: np.random.Generator, n: int) -> np.ndarray:
    """Obviously fake values for sensitive fields (locally administered MACs, 06 00… phones)."""
    if f.name == "adresse_mac":
        raw = rng.integers(0, 256, (n, 3))
        return np.array([f"02:00:00:{a:02X}:{b:02X}:{c:02X}" for a, b, c in raw], dtype=object)
    if "telephone" in f.name:
        return _digits(rng, n, 12, "+33600")
    return np.array([f"Personne Exemple {i}" for i in rng.integers(1, 500, n)], dtype=object)


def spread_points(territory: Territory, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` points inside the territory's communes, weighted by population and area.

    Parameters
    ----------
    territory
        The communes (EPSG:4326) with ``code_insee``, ``commune``, ``epci``, ``population``.
    n
        How many points.
    rng
        The random generator (seeded by the caller).

    Returns
    -------
    pandas.DataFrame
        ``lon``, ``lat`` (rounded to 6 decimals, still inside their commune), ``code_insee``,
        ``commune``, ``epci``, in random order.
    """
    communes = territory.communes.reset_index(drop=True)
    population = pd.to_numeric(communes["population"], errors="coerce").fillna(0).to_numpy()
    area = communes.geometry.to_crs("EPSG:2154").area.to_numpy()
    weights = 0.5 * population / population.sum() + 0.5 * area / area.sum()
    per_commune = rng.multinomial(n, weights / weights.sum())
    lon, lat, which = [], [], []
    for c, wanted in enumerate(per_commune):
        if not wanted:
            continue
        polygon = communes.geometry.iat[c]
        minx, miny, maxx, maxy = polygon.bounds
        shapely.prepare(polygon)
        got: list[np.ndarray] = []
        have = 0
        while have < wanted:
            batch = max(64, 3 * (wanted - have))
            x = np.round(rng.uniform(minx, maxx, batch), 6)
            y = np.round(rng.uniform(miny, maxy, batch), 6)
            inside = shapely.contains_xy(polygon, x, y)
            got.append(np.column_stack([x[inside], y[inside]]))
            have += int(inside.sum())
        xy = np.concatenate(got)[:wanted]
        lon.append(xy[:, 0])
        lat.append(xy[:, 1])
        which.append(np.full(wanted, c))
    order = rng.permutation(n)
    idx = np.concatenate(which)[order]
    return pd.DataFrame(
        {
            "lon": np.concatenate(lon)[order],
            "lat": np.concatenate(lat)[order],
            "code_insee": communes["code_insee"].to_numpy()[idx],
            "commune": communes["commune"].to_numpy()[idx],
            "epci": communes["epci"].to_numpy()[idx],
        }
    )


def synthetic_layer(
    layer: LayerDef, n: int, territory: Territory, *, seed: int = 46
) -> gpd.GeoDataFrame:
    """``n`` synthetic features of ``layer``: every field, typed as a build types it.

    Parameters
    ----------
    layer
        The layer definition (its fields, enumerations, formats).
    n
        Number of features.
    territory
        Where the points go.
    seed
        Seed of the random generator (the same seed gives the same layer).

    Returns
    -------
    geopandas.GeoDataFrame
        Exactly the layer's fields in order, and Point geometries in EPSG:4326.
    """
    rng = np.random.default_rng([seed, sum(layer.id.encode())])
    where = spread_points(territory, n, rng)
    source = f"synth-{layer.id}"
    serial = np.arange(1, n + 1)
    # about one feature in twenty was merged with an OpenStreetMap one during conflation
    merged = [
        None if r >= 0.05 else [f"synth-osm--{i}"] for r, i in zip(rng.random(n), serial, strict=True)
    ]
    common: dict[str, Callable[[], Any]] = {
        "id": lambda: np.array([f"{source}--{i}" for i in serial], dtype=object),
        "nom": lambda: np.array(
            [f"{_KINDS.get(layer.id, layer.title.fr)} {i} de {c} (exemple)"
             for i, c in zip(serial, where["commune"], strict=True)],
            dtype=object,
        ),
        "code_insee": lambda: where["code_insee"].to_numpy(dtype=object),
        "commune": lambda: where["commune"].to_numpy(dtype=object),
        "epci": lambda: where["epci"].to_numpy(dtype=object),
        "code_postal": lambda: _choice(rng, [f"46{k:03d}" for k in range(0, 800, 10)], n),
        "adresse": lambda: np.array(
            [f"{k} {s}" for k, s in zip(rng.integers(1, 120, n), _choice(rng, _STREETS, n), strict=True)],
            dtype=object,
        ),
        "complement_adresse": lambda: _with_nulls(rng, _choice(rng, ["Bâtiment A", "Rez-de-chaussée", "1er étage"], n), 0.8),
        "horaires": lambda: _with_nulls(rng, _choice(rng, _HOURS, n), 0.3),
        "telephone": lambda: _with_nulls(rng, _digits(rng, n, 12, "+33565"), 0.3),
        "courriel": lambda: _with_nulls(rng, np.array([f"contact.{i}@exemple.fr" for i in serial], dtype=object), 0.5),
        "site_web": lambda: _with_nulls(rng, np.array([f"https://www.exemple.fr/lieu/{i}" for i in serial], dtype=object), 0.5),
        "gestionnaire": lambda: _with_nulls(rng, _choice(rng, _OPERATORS, n), 0.2),
        "siret": lambda: _with_nulls(rng, _digits(rng, n, 14, "2"), 0.6),
        "acces_pmr": lambda: _choice(rng, ["oui", "partiel", "non", "inconnu"], n),
        "longitude": lambda: pd.array(where["lon"].to_numpy(), dtype="Float64"),
        "latitude": lambda: pd.array(where["lat"].to_numpy(), dtype="Float64"),
        "source": lambda: np.full(n, source, dtype=object),
        "source_id": lambda: np.array([str(i) for i in serial], dtype=object),
        "osm_id": lambda: np.full(n, None, dtype=object),
        "licence": lambda: np.full(n, "etalab-2.0", dtype=object),
        "attribution": lambda: np.full(n, ATTRIBUTION, dtype=object),
        "date_maj": lambda: _dates(rng, n),
        "imported_at": lambda: np.full(n, IMPORTED_AT, dtype=object),
        "merged_from": lambda: merged,
        "provenance": lambda: np.array(
            [None if m is None else f'{{"horaires": "{m[0].split("--")[0]}"}}' for m in merged],
            dtype=object,
        ),
    }
    columns: dict[str, Any] = {}
    for f in layer.fields:
        if f.name in common:
            columns[f.name] = common[f.name]()
        elif f.sensitive:
            columns[f.name] = _sensitive_values(f, rng, n)
        else:
            columns[f.name] = _field_values(f, rng, n)
    geometry = gpd.GeoSeries(shapely.points(where["lon"], where["lat"]), crs=WGS84)
    return gpd.GeoDataFrame(pd.DataFrame(columns), geometry=geometry, crs=WGS84)


def write_synthetic_gpkg(
    path: Path,
    counts: dict[str, int],
    *,
    layers: dict[str, LayerDef] | None = None,
    seed: int = 46,
) -> dict[str, int]:
    """Write a GeoPackage of synthetic layers, laid out exactly as ``geocommuns build`` does.

    Parameters
    ----------
    path
        The GeoPackage to (re)write.
    counts
        Features per layer id.
    layers
        Layer definitions (default: the project's ``layers/``).
    seed
        Random seed.

    Returns
    -------
    dict
        Features written per layer.
    """
    if layers is None:
        settings = Settings()
        layers = layers_from_dir(settings.path(settings.layers_dir))
    unknown = sorted(set(counts) - set(layers))
    if unknown:
        msg = f"no layer definition for {', '.join(unknown)}; layers are: {', '.join(layers)}"
        raise ValueError(msg)
    territory = territory_from_spec(TERRITORY)
    frames = {}
    for layer_id, n in counts.items():
        logger.info("generating %d features of %s", n, layer_id)
        frames[layer_id] = synthetic_layer(layers[layer_id], n, territory, seed=seed)
    write_geopackage(frames, {k: layers[k] for k in counts}, path)
    return {k: len(v) for k, v in frames.items()}


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: write a synthetic GeoPackage."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=10_000,
                        help=f"features of the benchmarked layer (usual sizes: {SIZES})")
    parser.add_argument("--layer", default="equipements", help="the benchmarked layer")
    parser.add_argument("--others", type=int, default=None,
                        help="features of every other layer (default: same as --features)")
    parser.add_argument("--seed", type=int, default=46)
    parser.add_argument("--output", type=Path, required=True, help="GeoPackage to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = Settings()
    layers = layers_from_dir(settings.path(settings.layers_dir))
    others = args.features if args.others is None else args.others
    counts = {k: (args.features if k == args.layer else others) for k in layers}
    written = write_synthetic_gpkg(args.output, counts, layers=layers, seed=args.seed)
    logger.info("wrote %s: %s", args.output, written)


if __name__ == "__main__":
    main()
