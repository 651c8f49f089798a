"""geocommuns.errors: one base class, subclasses named after the stage that failed.

Every message says what is wrong, where (file, key, field) and how to fix it, so the
command line can print it as is, without a traceback.
"""

from __future__ import annotations


class GeocommunsError(Exception):
    """Base class of every error geocommuns raises on purpose."""


class LayerDefinitionError(GeocommunsError):
    """A file in ``layers/`` is missing, malformed or inconsistent."""


class ServiceDefinitionError(GeocommunsError):
    """The service file (``geocommuns.yml``) is missing, malformed or inconsistent."""


class SourceDefinitionError(GeocommunsError):
    """A source declaration (``geodata/sources/**/*.yml``) is malformed."""


class SourceReadError(GeocommunsError):
    """A delivered file cannot be read at all (empty, garbage, unknown format)."""


class TerritoryError(GeocommunsError):
    """The configured territory cannot be resolved to communes."""


class BuildError(GeocommunsError):
    """The build could not write its outputs; the previous outputs are untouched."""


class ConfigError(GeocommunsError):
    """The pygeoapi configuration or OpenAPI document cannot be rendered or written."""


class ServeError(GeocommunsError):
    """The OGC API server cannot be started."""


class WebmapError(GeocommunsError):
    """The citizen web map cannot be written."""
