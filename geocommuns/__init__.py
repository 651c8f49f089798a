"""geocommuns: the shared GIS of an intercommunality.

Layer definitions (``layers/*.yml``) drive harmonisation of commune deliveries into
one GeoPackage, which is then served through OGC API - Features and a citizen map.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("geocommuns")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
