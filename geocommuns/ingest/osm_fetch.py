"""geocommuns.ingest.osm_fetch: download the territory's OpenStreetMap objects into an ``.osm`` file.

``geocommuns osm fetch`` asks Overpass (through osmnx: on-disk cache, timeout, no
rate-limit pause) for every object the layers' ``osm`` selectors pick inside the
territory's outline, with the nodes of their ways, and writes them as OSM XML. An ``osm``
source with ``path:`` then reads that file offline, like any extract. The file holds
OpenStreetMap data: ODbL, © OpenStreetMap contributors.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from shapely.geometry.base import BaseGeometry

from geocommuns.definitions.layerdef import LayerDef
from geocommuns.errors import SourceReadError
from geocommuns.ingest import overpass
from geocommuns.ingest.osm import layer_overpass_tags

logger = logging.getLogger(__name__)

_ORDER = {"node": 0, "way": 1, "relation": 2}


@dataclass(frozen=True)
class Fetched:
    """What ``fetch_osm`` wrote."""

    path: Path
    nodes: int
    ways: int
    relations: int


def overpass_tags(layers: Iterable[LayerDef]) -> dict[str, bool | str | list[str]]:
    """The osmnx tag query selecting the objects of every layer (keys or-ed together).

    Raises
    ------
    SourceReadError
        When none of the layers has an ``osm`` block.
    """
    merged: dict[str, bool | str | list[str]] = {}
    for layer in layers:
        if layer.osm is None:
            continue
        for key, wanted in layer_overpass_tags(layer.osm).items():
            known = merged.get(key)
            if wanted is True or known is True:
                merged[key] = True
                continue
            values = [*(known if isinstance(known, list) else []), *wanted]  # type: ignore[misc]
            merged[key] = sorted(set(values))
    if not merged:
        msg = "no layer has an 'osm' block: add selectors to layers/<id>.yml first"
        raise SourceReadError(msg)
    return merged


def fetch_osm(
    outline: BaseGeometry,
    layers: Iterable[LayerDef],
    out: Path,
    *,
    cache_dir: Path,
    timeout: float = 60.0,
) -> Fetched:
    """Download the layers' OpenStreetMap objects inside ``outline`` to the OSM XML ``out``.

    Parameters
    ----------
    outline
        The territory (EPSG:4326).
    layers
        The layers whose ``osm`` selectors say what to fetch.
    out
        The ``.osm`` file to write (replaced only when the download succeeded).
    cache_dir
        osmnx's response cache: a second fetch of the same query is offline.
    timeout
        Seconds to wait for Overpass.

    Returns
    -------
    Fetched
        The file and how many nodes, ways and relations it holds.

    Raises
    ------
    SourceReadError
        When Overpass cannot be reached (in seconds, with one message).
    """
    tags = overpass_tags(layers)
    overpass.configure(cache_dir, timeout)
    elements: dict[tuple[str, int], dict[str, Any]] = {}
    for element in overpass.elements_in(outline, tags):
        elements[(str(element["type"]), int(element["id"]))] = element
    ordered = sorted(elements.values(), key=lambda e: (_ORDER.get(e["type"], 3), e["id"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(osm_xml(ordered), encoding="utf-8")
    tmp.replace(out)
    count = {kind: sum(e["type"] == kind for e in ordered) for kind in _ORDER}
    logger.info("wrote %s: %s", out, count)
    return Fetched(path=out, nodes=count["node"], ways=count["way"], relations=count["relation"])


def _tags_xml(tags: Mapping[str, Any]) -> str:
    return "".join(f"<tag k={quoteattr(str(k))} v={quoteattr(str(v))}/>" for k, v in tags.items())


def osm_xml(elements: Iterable[Mapping[str, Any]]) -> str:
    """OSM XML of Overpass JSON elements (nodes, ways with their node refs, relations).

    Parameters
    ----------
    elements
        Overpass ``elements`` (``type``, ``id``, ``lat``/``lon``, ``nodes``, ``members``,
        ``tags``), nodes first as the OSM format expects.

    Returns
    -------
    str
        The document, with an ODbL attribution comment.
    """
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<!-- OpenStreetMap data, © OpenStreetMap contributors, ODbL 1.0 "
        "(https://www.openstreetmap.org/copyright); fetched by 'geocommuns osm fetch'. -->",
        '<osm version="0.6" generator="geocommuns osm fetch">',
    ]
    for e in elements:
        kind, ident, tags = e["type"], int(e["id"]), _tags_xml(e.get("tags") or {})
        if kind == "node":
            lines.append(f'  <node id="{ident}" lat="{e["lat"]}" lon="{e["lon"]}">{tags}</node>')
        elif kind == "way":
            refs = "".join(f'<nd ref="{int(n)}"/>' for n in e.get("nodes", []))
            lines.append(f'  <way id="{ident}">{refs}{tags}</way>')
        elif kind == "relation":
            members = "".join(
                f"<member type={quoteattr(str(m['type']))} ref=\"{int(m['ref'])}\" "
                f"role={quoteattr(str(m.get('role', '')))}/>"
                for m in e.get("members", [])
            )
            lines.append(f'  <relation id="{ident}">{members}{tags}</relation>')
    lines.append("</osm>")
    return "\n".join(lines) + "\n"
