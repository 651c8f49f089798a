"""geocommuns.serve.site: what the server shows people besides the API, found once per worker.

The home page (``accueil.html`` in the map's folder), the downloads and the DCAT-AP
catalogue (the export folder) are written by ``geocommuns refresh``; :func:`site_from_settings`
locates them from the settings (``GEOCOMMUNS_WEBMAP_DIR``, ``GEOCOMMUNS_EXPORT_DIR``) and
reads the layer definitions, whose ``access`` decides what may be downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from geocommuns.definitions.layerdef import LayerDef, layers_from_dir
from geocommuns.publish.homepage import HOME_NAME
from geocommuns.settings import Settings


@dataclass(frozen=True)
class Site:
    """The home page, the export folder and the layers of a served project.

    Attributes
    ----------
    home_page
        The home page file (it may not exist yet; None: no home page).
    export_dir
        The folder of the downloads and the catalogue (None: nothing served).
    layers
        The layer definitions.
    url
        The service's public URL (links to the downloads are absolute).
    catalogues
        The ids of the record collections (OGC API – Records) the server serves.
    """

    home_page: Path | None = None
    export_dir: Path | None = None
    layers: Mapping[str, LayerDef] = field(default_factory=dict)
    url: str = ""
    catalogues: frozenset[str] = frozenset()


def site_from_settings(
    settings: Settings, url: str, catalogues: frozenset[str] = frozenset()
) -> Site:
    """The :class:`Site` of the project ``settings`` describe, served at ``url``."""
    layers_dir = settings.path(settings.layers_dir)
    return Site(
        home_page=settings.path(settings.webmap_dir) / HOME_NAME,
        export_dir=settings.path(settings.export_dir),
        layers=layers_from_dir(layers_dir) if layers_dir.is_dir() else {},
        url=url.rstrip("/"),
        catalogues=catalogues,
    )
