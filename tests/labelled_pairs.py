"""Labelled pairs from real files of ../shared/realdata, to measure the conflation matcher.

Two sets, each two sources of one layer plus the pairs known to be the same place:

- ``france_services``: the ANCT France services lists of April 2021 (GeoJSON) and August
  2024 (CSV), two real deliveries of the same national network three years apart. The
  ANCT identifier (``MATRICULE`` in 2021, ``id_fs`` in 2024) is the ground truth: same id,
  same site. Names were rewritten in between ("PIMMS Rennes" became "France services Pimms
  Médiation Rennes"), some sites moved.
- ``lyon_rewrite``: the Métropole de Lyon sports equipment (RES), against an
  OpenStreetMap-shaped rewrite of a seeded 40 % of it: each rewritten equipment is moved
  0 to 30 m in a random direction and its name is changed the way OSM names differ from
  the RES ones (case, accents, ``Saint``/``St``, the installation's name added, a typo).
  The rewrite is generated here, not real OSM data; the hard part is real: several
  equipments share one installation point, often with similar names.

Both are read with the layer fields the matcher uses (``id``, ``source``, ``nom``,
``commune``, ``code_insee``, ``categorie``, geometry).
"""

from __future__ import annotations

import math
import random
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geocommuns.ingest.conflate import MERGED, Pair


@dataclass
class LabelledSet:
    """Features of two sources and the pairs (left id, right id) that are the same place."""

    features: gpd.GeoDataFrame
    truth: set[tuple[str, str]]


@dataclass
class Quality:
    """How the matcher did on a labelled set."""

    merged: int
    correct: int
    truth: int

    @property
    def precision(self) -> float:
        return self.correct / self.merged if self.merged else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.truth if self.truth else 1.0


def _frame(ids: list[str], source: str, names: list[str], communes: list[str],
           insee: list[str], categories: list[str], lon: list[float], lat: list[float]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"id": ids, "source": source, "nom": names, "commune": communes,
         "code_insee": insee, "categorie": categories},
        geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326",
    )


def france_services(realdata: Path) -> LabelledSet:
    """France services 2021 against 2024, matched by their ANCT identifier."""
    folder = realdata / "france-services-anct"
    old = gpd.read_file(folder / "france_services_2021-04.geojson")
    new = pd.read_csv(folder / "liste-fs-20240801.csv", dtype={"insee_com": str})
    new = new.dropna(subset=["latitude", "longitude"])
    new_insee = new["insee_com"].str.zfill(5)
    old_insee = old["insee_com"].astype(str).str.zfill(5)
    # one spelling per commune, as the build's point-in-polygon gives (COG names)
    names = dict(zip(new_insee, new["lib_com"], strict=True))
    left = _frame(
        [f"fs2021--{m}" for m in old["MATRICULE"]], "fs2021", list(old["lib_france_services"]),
        [names.get(c, n) for c, n in zip(old_insee, old["lib_com"], strict=True)],
        list(old_insee), ["administratif"] * len(old),
        list(old["LONGITUDE"].astype(float)), list(old["LATITUDE"].astype(float)),
    )
    right = _frame(
        [f"fs2024--{i}" for i in new["id_fs"]], "fs2024", list(new["lib_fs"]),
        list(new["lib_com"]), list(new_insee), ["administratif"] * len(new),
        list(new["longitude"]), list(new["latitude"]),
    )
    shared = set(old["MATRICULE"].astype(int)) & set(new["id_fs"].astype(int))
    truth = {(f"fs2021--{i}", f"fs2024--{i}") for i in shared}
    frame = gpd.GeoDataFrame(pd.concat([left, right], ignore_index=True), crs="EPSG:4326")
    return LabelledSet(features=frame, truth=truth)


def _strip_accents(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _osm_like_name(name: str, installation: str, rng: random.Random) -> str:
    """A name as an OpenStreetMap mapper might have typed it (seeded)."""
    out = name.strip()
    if rng.random() < 0.3 and installation and installation.lower() not in out.lower():
        out = f"{out} - {installation}"
    if rng.random() < 0.3:
        out = out.replace("Saint-", "St-").replace("Saint ", "St ")
    if rng.random() < 0.3:
        out = _strip_accents(out)
    case = rng.random()
    if case < 0.25:
        out = out.upper()
    elif case < 0.5:
        out = out.title()
    elif case < 0.6:
        out = out.lower()
    words = out.split()
    long_words = [k for k, w in enumerate(words) if len(w) > 5]
    if long_words and rng.random() < 0.25:
        k = rng.choice(long_words)
        cut = rng.randrange(1, len(words[k]) - 1)
        words[k] = words[k][:cut] + words[k][cut + 1 :]
        out = " ".join(words)
    return out


def lyon_rewrite(realdata: Path, *, share: float = 0.4, max_shift_m: float = 30.0,
                 seed: int = 69) -> LabelledSet:
    """Lyon's sports equipment against a seeded OSM-shaped rewrite of part of it."""
    res = gpd.read_file(realdata / "equipements-sportifs-grandlyon" / "urbalyon_urbalyon.recenseqptsport.json")
    res = res.sort_values("identifiant").reset_index(drop=True)
    rng = random.Random(seed)
    lon = res.geometry.x.tolist()
    lat = res.geometry.y.tolist()
    left = _frame(
        [f"res--{i}" for i in res["identifiant"]], "res", list(res["nom"]), list(res["commune"]),
        list(res["insee"].astype(str)), list(res["famille"]), lon, lat,
    )
    chosen = sorted(rng.sample(range(len(res)), round(share * len(res))))
    ids, names, olon, olat = [], [], [], []
    for k in chosen:
        distance, bearing = rng.uniform(0, max_shift_m), rng.uniform(0, 2 * math.pi)
        olat.append(lat[k] + distance * math.cos(bearing) / 111_320)
        olon.append(lon[k] + distance * math.sin(bearing) / (111_320 * math.cos(math.radians(lat[k]))))
        names.append(_osm_like_name(str(res.at[k, "nom"]), str(res.at[k, "installation"] or ""), rng))
        ids.append(f"osm--{res.at[k, 'identifiant']}")
    right = _frame(
        ids, "osm", names, [res.at[k, "commune"] for k in chosen],
        [str(res.at[k, "insee"]) for k in chosen], [res.at[k, "famille"] for k in chosen], olon, olat,
    )
    truth = {(f"res--{res.at[k, 'identifiant']}", f"osm--{res.at[k, 'identifiant']}") for k in chosen}
    frame = gpd.GeoDataFrame(pd.concat([left, right], ignore_index=True), crs="EPSG:4326")
    return LabelledSet(features=frame, truth=truth)


def quality(pairs: list[Pair], truth: set[tuple[str, str]]) -> Quality:
    """Precision and recall of the merged pairs against the labelled ones."""
    merged = {(p.left_id, p.right_id) for p in pairs if p.decision == MERGED}
    merged = {(a, b) if (a, b) in truth or (b, a) not in truth else (b, a) for a, b in merged}
    return Quality(merged=len(merged), correct=len(merged & truth), truth=len(truth))
