"""geocommuns.publish.indicators: territorial indicators computed from the built GeoPackage.

They follow the Lot's digital-inclusion scheme: public wifi in every commune, at least one
tiers-lieu per EPCI, and a fresh shared GIS. Every value is computed from the built layers
and the territory (communes, EPCI, town halls from :mod:`geocommuns.definitions.territory`), so the
same function gives the dashboard, ``indicators.json`` and the tests' hand-computed values.

Distances are measured from each commune's town hall to the nearest feature of each layer:
along the ellipsoid (straight line, WGS84 geodesic), and along the road network when a
network file (``.osm``/``.xml`` extract or osmnx ``.graphml``) is given.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import Geod, Transformer

from geocommuns.definitions.access import public_layers, restricted_layers
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.territory import L93, WGS84, Territory
from geocommuns.errors import GeocommunsError
from geocommuns.ingest.sqldb import open_readonly

if TYPE_CHECKING:
    import networkx as nx

#: Features updated within this many months count as fresh.
FRESH_MONTHS = 12
#: The scheme's target of tiers-lieux per EPCI.
TIERS_LIEUX_TARGET = 1
#: Name of the contributions table a later version may add to the GeoPackage.
AUDIT_TABLE = "audit"
JOURNAL_TABLE = "geocommuns_journal"
_GEOD = Geod(ellps="WGS84")


class IndicatorError(GeocommunsError):
    """The indicators cannot be computed (no GeoPackage, unreadable network file)."""


def read_features(gpkg: Path, layers: Iterable[str]) -> dict[str, pd.DataFrame]:
    """The attributes needed by the indicators, per layer (no geometry: lon/lat columns)."""
    if not gpkg.exists():
        msg = f"{gpkg}: no GeoPackage yet; run 'geocommuns build' first"
        raise IndicatorError(msg)
    present = {name for name, _ in pyogrio.list_layers(gpkg)}
    columns = ["id", "code_insee", "commune", "epci", "source", "date_maj", "longitude", "latitude"]
    out = {}
    for layer_id in layers:
        if layer_id not in present:
            out[layer_id] = pd.DataFrame(columns=columns)
            continue
        frame = pyogrio.read_dataframe(gpkg, layer=layer_id, columns=columns, read_geometry=False)
        out[layer_id] = pd.DataFrame(frame)[columns]
    return out


def wifi_coverage(wifi: pd.DataFrame, territory: Territory) -> dict[str, Any]:
    """Communes with at least one public wifi hotspot, and the list of those without."""
    communes = territory.communes
    covered = set(wifi["code_insee"].dropna()) & set(communes["code_insee"])
    without = communes[~communes["code_insee"].isin(covered)]
    total = len(communes)
    return {
        "communes_couvertes": len(covered),
        "communes_total": total,
        "part": round(len(covered) / total, 4) if total else None,
        "communes_sans_wifi": [
            {"code_insee": c, "commune": n} for c, n in zip(without["code_insee"], without["commune"], strict=True)
        ],
    }


def tiers_lieux_per_epci(tiers_lieux: pd.DataFrame, territory: Territory) -> list[dict[str, Any]]:
    """Tiers-lieux per EPCI of the territory, against the target of at least one."""
    epcis = (
        territory.communes[["epci", "epci_nom"]].dropna().drop_duplicates().sort_values("epci")
    )
    counts = tiers_lieux["epci"].value_counts()
    return [
        {
            "epci": siren,
            "epci_nom": name,
            "tiers_lieux": int(counts.get(siren, 0)),
            "cible": TIERS_LIEUX_TARGET,
            "atteinte": int(counts.get(siren, 0)) >= TIERS_LIEUX_TARGET,
        }
        for siren, name in zip(epcis["epci"], epcis["epci_nom"], strict=True)
    ]


def features_per_commune(features: dict[str, pd.DataFrame], territory: Territory) -> list[dict[str, Any]]:
    """For every commune of the territory, its number of features in each layer."""
    rows = []
    counts = {k: v["code_insee"].value_counts() for k, v in features.items()}
    for code, name in zip(territory.communes["code_insee"], territory.communes["commune"], strict=True):
        per_layer = {k: int(c.get(code, 0)) for k, c in counts.items()}
        rows.append({"code_insee": code, "commune": name, **per_layer, "total": sum(per_layer.values())})
    return rows


def _fresh(dates: pd.Series, today: date) -> tuple[int, int]:
    parsed = pd.to_datetime(dates, errors="coerce")
    limit = pd.Timestamp(today) - pd.DateOffset(months=FRESH_MONTHS)
    return int((parsed >= limit).sum()), len(parsed)


def _share(recent: int, total: int) -> float | None:
    return round(recent / total, 4) if total else None


def freshness(features: dict[str, pd.DataFrame], territory: Territory, *, today: date) -> dict[str, Any]:
    """Share of features updated (``date_maj``) in the last 12 months, per layer and commune."""
    per_layer = {}
    for layer_id, frame in features.items():
        recent, total = _fresh(frame["date_maj"], today)
        per_layer[layer_id] = {"recents": recent, "total": total, "part": _share(recent, total)}
    everything = pd.concat([f[["code_insee", "date_maj"]] for f in features.values()], ignore_index=True)
    per_commune = []
    for code, name in zip(territory.communes["code_insee"], territory.communes["commune"], strict=True):
        recent, total = _fresh(everything.loc[everything["code_insee"] == code, "date_maj"], today)
        per_commune.append(
            {"code_insee": code, "commune": name, "recents": recent, "total": total, "part": _share(recent, total)}
        )
    recent, total = _fresh(everything["date_maj"], today)
    return {
        "reference": today.isoformat(),
        "mois": FRESH_MONTHS,
        "ensemble": {"recents": recent, "total": total, "part": _share(recent, total)},
        "par_couche": per_layer,
        "par_commune": per_commune,
    }


def _delivering_commune(source: str, codes: set[str]) -> str | None:
    """The INSEE code a source id starts with (``46042-cahors-...``), if one of the territory's."""
    head = source.split("-", 1)[0]
    return head if head in codes else None


def contributions(
    gpkg: Path, features: dict[str, pd.DataFrame], territory: Territory
) -> dict[str, Any]:
    """Contributions per commune.

    When the living store's journal holds technicians' corrections, they are counted per
    commune of the feature (``origine: journal``). Else, when the GeoPackage holds an
    ``audit`` table with a ``code_insee`` column (one row per contribution), its rows are
    counted per commune. Otherwise the features are counted
    per delivering commune (the INSEE code that starts their source id); features of
    sources that are not a commune's (reference data, OpenStreetMap) are counted per source.
    """
    codes = set(territory.communes["code_insee"])
    names = dict(zip(territory.communes["code_insee"], territory.communes["commune"], strict=True))
    journaled = _journal_counts(gpkg, list(features))
    audit = journaled if journaled else _audit_counts(gpkg)
    if audit is not None:
        return {
            "origine": "journal" if journaled else AUDIT_TABLE,
            "par_commune": [
                {"code_insee": c, "commune": names[c], "contributions": n, "sources": []}
                for c, n in sorted(audit.items())
                if c in codes
            ],
            "autres_sources": {},
        }
    per_commune: dict[str, dict[str, int]] = {}
    others: dict[str, int] = {}
    for frame in features.values():
        for source, n in frame["source"].value_counts().items():
            code = _delivering_commune(str(source), codes)
            if code is None:
                others[str(source)] = others.get(str(source), 0) + int(n)
            else:
                per_commune.setdefault(code, {})[str(source)] = int(n)
    return {
        "origine": "objets",
        "par_commune": [
            {
                "code_insee": c,
                "commune": names[c],
                "contributions": sum(sources.values()),
                "sources": sorted(sources),
            }
            for c, sources in sorted(per_commune.items())
        ],
        "autres_sources": dict(sorted(others.items())),
    }


def _journal_counts(gpkg: Path, layers: list[str]) -> dict[str, int] | None:
    """Human changes to ``layers`` per commune, from the journal the GeoPackage carries
    (None: none)."""
    with contextlib.closing(open_readonly(gpkg)) as con:
        found = con.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (JOURNAL_TABLE,)
        ).fetchone()
        if not found:
            return None
        rows = con.execute(
            "SELECT json_extract(coalesce(after, before), '$.code_insee'), count(*) "
            f"FROM {JOURNAL_TABLE} WHERE action IN ('create', 'replace', 'update', 'delete') "
            f"AND layer IN ({', '.join('?' for _ in layers)}) GROUP BY 1",
            layers,
        ).fetchall()
    counts = {str(code): int(n) for code, n in rows if code is not None}
    return counts or None


def _audit_counts(gpkg: Path) -> dict[str, int] | None:
    with contextlib.closing(open_readonly(gpkg)) as con:
        found = con.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (AUDIT_TABLE,)
        ).fetchone()
        if not found:
            return None
        columns = {row[1] for row in con.execute(f'PRAGMA table_info("{AUDIT_TABLE}")')}
        if "code_insee" not in columns:
            return None
        rows = con.execute(
            f'SELECT code_insee, count(*) FROM "{AUDIT_TABLE}" GROUP BY code_insee'
        ).fetchall()
    return {str(code): int(n) for code, n in rows if code is not None}


def load_network(path: Path) -> nx.MultiDiGraph:
    """A road network from an OSM XML extract (``.osm``, ``.xml``) or an osmnx ``.graphml``."""
    import osmnx as ox

    if not path.is_file():
        msg = f"{path}: no such network file; give an .osm/.xml extract or an osmnx .graphml"
        raise IndicatorError(msg)
    try:
        if path.suffix.lower() == ".graphml":
            return ox.load_graphml(path)
        return ox.graph_from_xml(path, retain_all=True)
    except Exception as e:
        msg = f"{path}: not a readable road network ({e}); export it again from OpenStreetMap"
        raise IndicatorError(msg) from e


class _Network:
    """Nearest nodes (in Lambert-93) and shortest paths over a road network."""

    def __init__(self, graph: nx.MultiDiGraph) -> None:
        self.graph = graph
        self.nodes = np.array(list(graph.nodes))
        lon = np.array([graph.nodes[n]["x"] for n in self.nodes], dtype=float)
        lat = np.array([graph.nodes[n]["y"] for n in self.nodes], dtype=float)
        x, y = _TO_L93.transform(lon, lat)
        self.tree = shapely.STRtree(shapely.points(x, y))

    def nearest(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest node of each point and the straight-line distance to it (metres)."""
        px, py = _TO_L93.transform(lon, lat)
        (points, nodes), dist = self.tree.query_nearest(
            shapely.points(px, py), return_distance=True, all_matches=False
        )
        order = np.argsort(points, kind="stable")
        return self.nodes[nodes[order]], dist[order]

    def from_node(self, node: Any) -> dict[Any, float]:
        import networkx as nx

        return dict(nx.single_source_dijkstra_path_length(self.graph, node, weight="length"))


_TO_L93 = Transformer.from_crs(WGS84, L93, always_xy=True)


def distances(
    features: dict[str, pd.DataFrame],
    territory: Territory,
    *,
    network: nx.MultiDiGraph | None = None,
) -> list[dict[str, Any]]:
    """Distance from each commune's town hall to the nearest feature of each layer (metres).

    ``ligne_droite`` is the WGS84 geodesic distance. ``route`` (only with a network) is the
    shortest path along the network between the nodes nearest the town hall and the
    feature, plus the straight lines from each to its node; ``None`` when no feature is
    reachable.
    """
    mairies = {m.code_insee: m for m in territory.mairies()}
    net = _Network(network) if network is not None else None
    feature_nodes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if net is not None:
        for layer_id, frame in features.items():
            if len(frame):
                feature_nodes[layer_id] = net.nearest(
                    frame["longitude"].to_numpy(float), frame["latitude"].to_numpy(float)
                )
    rows = []
    for code, name in zip(territory.communes["code_insee"], territory.communes["commune"], strict=True):
        mairie = mairies.get(code)
        row: dict[str, Any] = {"code_insee": code, "commune": name, "mairie": None, "couches": {}}
        if mairie is None:
            rows.append(row)
            continue
        row["mairie"] = [round(mairie.lon, 6), round(mairie.lat, 6)]
        lengths: dict[Any, float] | None = None
        snap = 0.0
        if net is not None:
            node, snap_arr = net.nearest(np.array([mairie.lon]), np.array([mairie.lat]))
            lengths, snap = net.from_node(node[0]), float(snap_arr[0])
        for layer_id, frame in features.items():
            entry: dict[str, Any] = {"ligne_droite": None, "plus_proche": None}
            if len(frame):
                lon = frame["longitude"].to_numpy(float)
                lat = frame["latitude"].to_numpy(float)
                _, _, dist = _GEOD.inv(np.full(len(lon), mairie.lon), np.full(len(lat), mairie.lat), lon, lat)
                best = int(np.argmin(dist))
                entry["ligne_droite"] = round(float(dist[best]), 1)
                entry["plus_proche"] = str(frame["id"].iloc[best])
            if lengths is not None:
                entry["route"] = _road(lengths, snap, feature_nodes.get(layer_id))
            row["couches"][layer_id] = entry
        rows.append(row)
    return rows


def _road(
    lengths: dict[Any, float], snap: float, nodes: tuple[np.ndarray, np.ndarray] | None
) -> float | None:
    if nodes is None:
        return None
    best = None
    for node, feature_snap in zip(nodes[0], nodes[1], strict=True):
        if node in lengths:
            total = snap + float(lengths[node]) + float(feature_snap)
            best = total if best is None or total < best else best
    return round(best, 1) if best is not None else None


def compute_indicators(
    gpkg: Path,
    layers: dict[str, LayerDef],
    territory: Territory,
    *,
    today: date,
    network: Path | None = None,
    wifi_layer: str = "wifi",
    tiers_lieux_layer: str = "tiers_lieux",
) -> dict[str, Any]:
    """Every indicator, as a JSON-ready dictionary (French keys, as published).

    Parameters
    ----------
    gpkg
        The built GeoPackage.
    layers
        Layer definitions (their ids and French titles).
    territory
        The territory's communes, EPCI and town halls.
    today
        Reference date of the freshness indicator.
    network
        Optional road network file for distances along roads.
    wifi_layer, tiers_lieux_layer
        Ids of the layers the scheme's targets are about.

    Returns
    -------
    dict
        ``territoire``, ``couches``, ``wifi``, ``tiers_lieux_par_epci``,
        ``objets_par_commune``, ``fraicheur``, ``contributions``, ``distances``.
    """
    # published for everyone: a restricted layer is neither counted nor named
    restricted = restricted_layers(layers)
    layers = public_layers(layers)
    for needed in (wifi_layer, tiers_lieux_layer):
        if needed in restricted:
            msg = (
                f"layer {needed!r} is restricted (access: restricted): the public indicators "
                "cannot be computed from it; make it public or name another layer"
            )
            raise IndicatorError(msg)
        if needed not in layers:
            msg = f"layer {needed!r} is not defined; the indicators need it (see layers/)"
            raise IndicatorError(msg)
    features = read_features(gpkg, layers)
    graph = load_network(network) if network is not None else None
    return {
        "territoire": {
            "nom": territory.name,
            "spec": territory.spec,
            "communes": len(territory.communes),
            "date": today.isoformat(),
        },
        "couches": {k: {"titre": v.title.fr, "objets": len(features[k])} for k, v in layers.items()},
        "wifi": wifi_coverage(features[wifi_layer], territory),
        "tiers_lieux_par_epci": tiers_lieux_per_epci(features[tiers_lieux_layer], territory),
        "objets_par_commune": features_per_commune(features, territory),
        "fraicheur": freshness(features, territory, today=today),
        "contributions": contributions(gpkg, features, territory),
        "distances": distances(features, territory, network=graph),
        "reseau_routier": network.name if network is not None else None,
    }
