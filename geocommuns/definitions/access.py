"""geocommuns.definitions.access: which layers anonymous callers may see at all.

A layer file says ``access: public`` (the default) or ``access: restricted``
(:class:`geocommuns.definitions.layerdef.LayerDef`). A restricted layer is never part of
what is published for everyone: the anonymous API (its collections, OpenAPI document,
queryables), the open-data exports, the citizen map, the dashboard and the downloads
leave it out, and only callers whose token may read it are served it
(:mod:`geocommuns.contrib.edits`). Every output that is made for anonymous readers
selects its layers through :func:`public_layers`, so the rule is written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from geocommuns.definitions.layerdef import LayerDef

L = TypeVar("L", bound=LayerDef)


def is_public(layer: LayerDef) -> bool:
    """Whether anonymous callers may see ``layer`` (its file says ``access: public``)."""
    return layer.access == "public"


def public_layers(layers: Mapping[str, L]) -> dict[str, L]:
    """The layers anonymous callers may see, in their order.

    Parameters
    ----------
    layers
        Layer definitions by id (as :func:`geocommuns.definitions.layerdef.layers_from_dir`
        returns them).

    Returns
    -------
    dict
        The ``access: public`` layers by id; restricted ones left out.
    """
    return {k: v for k, v in layers.items() if is_public(v)}


def restricted_layers(layers: Mapping[str, L]) -> dict[str, L]:
    """The layers only some token holders may read (``access: restricted``), in their order.

    Parameters
    ----------
    layers
        Layer definitions by id.

    Returns
    -------
    dict
        The restricted layers by id.
    """
    return {k: v for k, v in layers.items() if not is_public(v)}
