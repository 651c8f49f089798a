"""geocommuns.serve.config: the generated pygeoapi configuration, read once, as typed objects.

pygeoapi reads its configuration for itself; everything geocommuns adds around it (the
unknown-parameter check, the fast path, the Part 4 hand-off, ``geocommuns serve``) reads
the same file once per process through :func:`read_service_config` and shares the
resulting :class:`ServiceConfig`. Environment variables are substituted exactly as pygeoapi
does (``${GEOCOMMUNS_DATABASE_URL}``, ``${PYGEOAPI_SERVER_URL:-default}``, with
:func:`pygeoapi.util.yaml_load`), so both always see the same values.

Which provider class serves which backend is named once, in
:data:`geocommuns.serve.pygeoapi_config.PROVIDERS`; a provider is recognised here by that
dotted path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from geocommuns.errors import ConfigError
from geocommuns.serve.pygeoapi_config import PROVIDERS, RESTRICTED_KEY, Backend

_BACKEND_OF_CLASS: dict[str, Backend] = {name: backend for backend, name in PROVIDERS.items()}


@dataclass(frozen=True)
class ProviderConfig:
    """The feature provider of a collection.

    Attributes
    ----------
    name
        The provider class (dotted path or pygeoapi plugin name).
    backend
        ``gpkg`` or ``postgis`` for a geocommuns provider, None for any other.
    data
        The GeoPackage path or the database URL (environment substituted).
    table
        The table (None when the provider has none).
    properties
        The public, queryable property names.
    definition
        The whole provider definition, as pygeoapi hands it to the provider class.
    """

    name: str
    backend: Backend | None
    data: str
    table: str | None
    properties: frozenset[str]
    definition: Mapping[str, Any]

    def instance_definition(self) -> dict[str, Any]:
        """A fresh copy of :attr:`definition` to build a provider instance with."""
        return dict(self.definition)


@dataclass(frozen=True)
class CollectionConfig:
    """One collection: its titles by language and its feature provider (None: not features).

    ``resource`` is its whole entry in the configuration (description, keywords, links,
    extents), for the collection documents geocommuns writes itself.
    """

    id: str
    title: Mapping[str, str]
    provider: ProviderConfig | None
    resource: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def title_in(self, lang: str) -> str:
        """The title in ``lang``, else the first one, else the id."""
        return self.title.get(lang) or next(iter(self.title.values()), self.id)


@dataclass(frozen=True)
class ServiceConfig:
    """What geocommuns needs of a pygeoapi configuration.

    Attributes
    ----------
    path
        The configuration file.
    url
        The public URL of the service (no trailing slash).
    default_limit
        Items per page when the request says nothing.
    max_limit
        The largest page served.
    languages
        The service languages (``fr`` first: the default).
    collections
        Every collection pygeoapi serves (to everyone), by id.
    restricted
        The ``access: restricted`` collections, by id: not pygeoapi's, served only to the
        tokens that may read them (:mod:`geocommuns.serve.restricted`).
    """

    path: Path
    url: str
    default_limit: int
    max_limit: int
    languages: tuple[str, ...]
    collections: Mapping[str, CollectionConfig]
    restricted: Mapping[str, CollectionConfig] = field(default_factory=lambda: MappingProxyType({}))

    def queryables(self) -> dict[str, frozenset[str]]:
        """The queryable property names of every public feature collection, by id."""
        return {
            cid: c.provider.properties for cid, c in self.collections.items() if c.provider is not None
        }

    def served_by(self, *backends: Backend, restricted: bool = False) -> dict[str, CollectionConfig]:
        """The feature collections served by a geocommuns provider of one of ``backends``
        (every geocommuns backend when none is named); the public ones, and the restricted
        ones too when ``restricted``."""
        wanted = set(backends or PROVIDERS)
        every = {**self.collections, **self.restricted} if restricted else self.collections
        return {
            cid: c
            for cid, c in every.items()
            if c.provider is not None and c.provider.backend in wanted
        }


def _provider(resource: Mapping[str, Any]) -> ProviderConfig | None:
    for provider in resource.get("providers") or []:
        if provider.get("type") == "feature":
            name = str(provider.get("name", ""))
            table = provider.get("table")
            return ProviderConfig(
                name=name,
                backend=_BACKEND_OF_CLASS.get(name),
                data=str(provider.get("data", "")),
                table=None if table is None else str(table),
                properties=frozenset(str(p) for p in provider.get("properties") or ()),
                definition=MappingProxyType(dict(provider)),
            )
    return None


def service_config_from_dict(doc: Mapping[str, Any], path: Path) -> ServiceConfig:
    """Build the :class:`ServiceConfig` of an already loaded configuration.

    Parameters
    ----------
    doc
        The configuration, environment variables already substituted.
    path
        The file it was read from.

    Returns
    -------
    ServiceConfig
        The typed configuration.
    """
    server = doc.get("server") or {}
    limits = server.get("limits") or {}
    languages = tuple(str(x).split("_")[0] for x in server.get("languages") or ["fr"])
    return ServiceConfig(
        path=path,
        url=str(server.get("url", "")).rstrip("/"),
        default_limit=int(limits.get("default_items", 10)),
        max_limit=int(limits.get("max_items", 1000)),
        languages=languages,
        collections=_collections(doc.get("resources") or {}, languages),
        restricted=_collections(doc.get(RESTRICTED_KEY) or {}, languages),
    )


def _collections(
    resources: Mapping[str, Any], languages: tuple[str, ...]
) -> Mapping[str, CollectionConfig]:
    collections: dict[str, CollectionConfig] = {}
    for cid, resource in resources.items():
        title = resource.get("title") or cid
        titles = title if isinstance(title, dict) else dict.fromkeys(languages, title)
        collections[str(cid)] = CollectionConfig(
            id=str(cid),
            title=MappingProxyType({str(k): str(v) for k, v in titles.items()}),
            provider=_provider(resource),
            resource=MappingProxyType(dict(resource)),
        )
    return MappingProxyType(collections)


def read_service_config(path: Path) -> ServiceConfig:
    """Read a pygeoapi configuration file as pygeoapi does (environment substituted).

    Parameters
    ----------
    path
        The configuration file.

    Returns
    -------
    ServiceConfig
        The typed configuration.

    Raises
    ------
    ConfigError
        When a variable the file names (``${GEOCOMMUNS_DATABASE_URL}``) is not set.
    """
    from pygeoapi.util import yaml_load

    try:
        with path.open(encoding="utf-8") as fh:
            doc = yaml_load(fh) or {}
    except OSError as e:  # pygeoapi raises EnvironmentError (an OSError) for a missing variable
        if isinstance(e, FileNotFoundError):
            raise
        msg = f"{path}: {e}; set it before starting the server"
        raise ConfigError(msg) from e
    return service_config_from_dict(doc, path)
