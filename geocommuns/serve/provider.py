"""geocommuns.serve.provider: what geocommuns' pygeoapi feature providers share.

:class:`LayerProvider` ties a pygeoapi provider to one layer definition: it knows the
layer's public fields (sensitive or undeclared columns are never served, listed, filtered
or sorted on), describes them as JSON Schema for ``/queryables`` and ``/schema``, and turns
pygeoapi's query arguments (property filters, CQL2 ``filterq``, ``sortby``, ``properties``)
into SQL conditions for its backend. The backends are
:class:`geocommuns.serve.provider_gpkg.GeoPackageProvider` (the built GeoPackage) and
:class:`geocommuns.serve.provider_postgis.PostGISProvider` (the published PostGIS tables).
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from collections.abc import Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any

from pygeoapi.provider.base import (
    BaseProvider,
    ProviderConnectionError,
    ProviderGenericError,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
)
from pygeoapi.util import crs_transform

from geocommuns.definitions.layerdef import FieldDef, LayerDef, layers_from_dir
from geocommuns.errors import GeocommunsError
from geocommuns.serve.cql import MAX_INTEGER, Dialect, FilterError, where_from_filter
from geocommuns.settings import Settings

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_JSON_TYPES = {
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "date": "string",
    "datetime": "string",
    "array": "array",
}
_JSON_FORMATS = {"date": "date", "datetime": "date-time", "uri": "uri", "email": "email"}
#: ``numberMatched`` of a filtered query (bbox, property filter, CQL2) is counted up to this
#: many features; beyond it the count is left out of the answer, as OGC API – Features
#: allows (``numberMatched`` is optional), so that a dense bbox or filter never costs a
#: count of the whole table. An unfiltered query always has its exact count (kept by
#: ``publish`` and the journal's triggers on PostGIS, cached per file on the GeoPackage).
MATCH_COUNT_CAP = 10_000


class ProviderBudgetExceeded(ProviderGenericError):  # type: ignore[misc]
    """A query interrupted at the end of its time budget: ``503``, retry later."""

    ogc_exception_code = "ServiceUnavailable"
    http_status_code = HTTPStatus.SERVICE_UNAVAILABLE
    default_msg = "time budget exceeded"


class ProviderUnavailable(ProviderConnectionError):  # type: ignore[misc]
    """The database cannot be reached (down, or no connection free in time): ``503``."""

    ogc_exception_code = "ServiceUnavailable"
    http_status_code = HTTPStatus.SERVICE_UNAVAILABLE
    default_msg = "database unavailable; retry in a few seconds"


#: JSON Schema of the public fields, per layer definition object and table columns.
_FIELDS: dict[tuple[int, tuple[str, ...]], dict[str, dict[str, Any]]] = {}
_LAYERS: dict[Path, tuple[tuple[tuple[str, int], ...], dict[str, LayerDef]]] = {}
_LAYERS_LOCK = threading.Lock()


def layer_definitions(layers_dir: Path) -> dict[str, LayerDef]:
    """The layer definitions, parsed again only when a file in ``layers_dir`` changed.

    pygeoapi instantiates the provider on every request: parsing the YAML each time
    would cost about 30 ms per request.

    Parameters
    ----------
    layers_dir
        The folder of ``<id>.yml`` layer definitions.

    Returns
    -------
    dict
        Layer id to definition.
    """
    try:
        stamp = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in layers_dir.glob("*.yml")))
    except OSError:
        stamp = ()
    with _LAYERS_LOCK:
        cached = _LAYERS.get(layers_dir)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    layers = layers_from_dir(layers_dir)
    with _LAYERS_LOCK:
        _LAYERS[layers_dir] = (stamp, layers)
    return layers


def settings() -> Settings:
    """The settings, read again only when the working folder or a ``GEOCOMMUNS_*``
    variable changes: pygeoapi builds a provider on every request, and reading the
    environment and ``.env`` each time cost about 10 ms."""
    key = (str(Path.cwd()), tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("GEOCOMMUNS_"))))
    return _settings_for(key)


@functools.lru_cache(maxsize=8)
def _settings_for(key: tuple[str, tuple[tuple[str, str], ...]]) -> Settings:
    return Settings()


def project_path(value: str | os.PathLike[str]) -> Path:
    """Resolve a configured path against the project root (not the server's cwd)."""
    path = Path(value)
    return path if path.is_absolute() else settings().path(path)


class LayerProvider(BaseProvider):  # type: ignore[misc]
    """Base of the geocommuns feature providers: one layer, its public fields only.

    Provider definition keys, besides pygeoapi's ``name``, ``type``, ``data``,
    ``id_field`` and ``title_field``: ``table`` (the layer id, required) and
    ``layers_dir`` (where the layer definitions are, default the project's ``layers/``).
    Subclasses implement :meth:`open`, :meth:`table_columns`, :meth:`page` and
    :meth:`feature_text`; ``query`` and ``get`` (pygeoapi's interface) are built on them.
    """

    #: SQL dialect of the backend, for :mod:`geocommuns.serve.cql`.
    dialect: Dialect = "sqlite"

    def __init__(self, provider_def: dict[str, Any]) -> None:
        super().__init__(provider_def)
        table = provider_def.get("table")
        if not isinstance(table, str) or not NAME.match(table):
            msg = f"provider {provider_def.get('name')}: 'table' must name a layer id, got {table!r}"
            raise ProviderConnectionError(msg)
        self.table = table
        self.id_field: str = provider_def.get("id_field") or "id"
        self.layer = self._layer_definition(provider_def)
        self.open(provider_def)
        self._public = self._public_fields(self.table_columns())
        key = (id(self.layer), tuple(self._public))
        fields = _FIELDS.get(key)
        if fields is None:
            fields = _FIELDS[key] = self.get_fields()
        self._fields = fields

    # -- to implement ------------------------------------------------------------------

    def open(self, provider_def: dict[str, Any]) -> None:
        """Connect to the backend (called once the layer definition is known)."""
        raise NotImplementedError

    def table_columns(self) -> set[str]:
        """The columns of the layer's table (empty when the table does not exist)."""
        raise NotImplementedError

    def page(
        self,
        *,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: Sequence[float] | None = None,
        properties: Sequence[tuple[str, str]] | None = None,
        sortby: Sequence[dict[str, str]] | None = None,
        select_properties: Sequence[str] | None = None,
        skip_geometry: bool = False,
        filterq: Any = None,
    ) -> tuple[int | None, int, str]:
        """One page of features as GeoJSON text: ``numberMatched`` (None when a filtered
        query matches more than :data:`MATCH_COUNT_CAP` features), ``numberReturned`` and
        the JSON array of the features (arguments as :meth:`query`)."""
        raise NotImplementedError

    def feature_text(self, identifier: str) -> str | None:
        """The feature whose ``id`` is ``identifier`` as GeoJSON text (None when absent)."""
        raise NotImplementedError

    # -- layer and fields --------------------------------------------------------------

    def _layer_definition(self, provider_def: dict[str, Any]) -> LayerDef:
        layers_dir = project_path(provider_def.get("layers_dir") or settings().layers_dir)
        try:
            layers = layer_definitions(layers_dir)
        except GeocommunsError as e:
            raise ProviderConnectionError(str(e)) from e
        if self.table not in layers:
            msg = (
                f"table {self.table!r} has no layer definition in {layers_dir}; "
                f"layers are: {', '.join(layers)}"
            )
            raise ProviderConnectionError(msg)
        return layers[self.table]

    def _public_fields(self, columns: set[str]) -> dict[str, FieldDef]:
        """Declared, non-sensitive fields that the table actually has, in declaration order."""
        if not columns:
            msg = f"{self}: the table {self.table!r} does not exist; build (and publish) the layers"
            raise ProviderConnectionError(msg)
        if self.id_field not in columns:
            msg = f"{self}: table {self.table!r} has no id field {self.id_field!r}"
            raise ProviderConnectionError(msg)
        return {f.name: f for f in self.layer.public_fields if f.name in columns}

    def get_fields(self) -> dict[str, dict[str, Any]]:
        """JSON Schema of every public field (sensitive fields are never listed).

        Returns
        -------
        dict
            Field name to ``type`` (and ``format``, ``title``, ``description``, ``values``
            for enumerations).
        """
        out: dict[str, dict[str, Any]] = {}
        for name, f in self._public.items():
            spec: dict[str, Any] = {"type": _JSON_TYPES[f.type], "title": f.title}
            spec["description"] = f.description
            fmt = _JSON_FORMATS.get(f.type) or _JSON_FORMATS.get(f.format)
            if fmt:
                spec["format"] = fmt
            if f.type == "array":
                spec["items"] = {"type": "string"}
            if f.constraints.enum:
                spec["values"] = list(f.constraints.enum)
            out[name] = spec
        return out

    # -- query arguments ---------------------------------------------------------------

    def columns(self, select_properties: Sequence[str] | None) -> list[str]:
        """The public columns to return (``properties=``), in declaration order."""
        if not select_properties:
            return list(self._public)
        unknown = [p for p in select_properties if p not in self._public]
        if unknown:
            msg = f"unknown properties {', '.join(unknown)}; queryable: {', '.join(self._public)}"
            raise ProviderInvalidQueryError(msg, user_msg=msg)
        return [p for p in self._public if p in select_properties]

    def value(self, name: str, raw: str) -> Any:
        """A property-filter value, typed as its field."""
        f = self._public[name]
        try:
            if f.type == "integer":
                number = int(raw)
                if abs(number) > MAX_INTEGER:
                    msg = f"{name} must be an integer from -{MAX_INTEGER} to {MAX_INTEGER}, got {raw[:40]!r}"
                    raise ProviderInvalidQueryError(msg, user_msg=msg)
                return number
            if f.type == "number":
                return float(raw)
        except ValueError as e:
            msg = f"{name} must be a {f.type}, got {raw[:40]!r}"
            raise ProviderInvalidQueryError(msg, user_msg=msg) from e
        if f.type == "boolean":
            folded = raw.strip().lower()
            if folded not in {"true", "false", "1", "0"}:
                msg = f"{name} must be true or false, got {raw!r}"
                raise ProviderInvalidQueryError(msg, user_msg=msg)
            return folded in {"true", "1"}
        return raw

    def conditions(
        self, properties: Sequence[tuple[str, str]] | None, filterq: Any
    ) -> tuple[list[str], list[Any]]:
        """SQL conditions (table alias ``t``) of property filters and a CQL2 filter."""
        mark = "?" if self.dialect == "sqlite" else "%s"
        clauses: list[str] = []
        params: list[Any] = []
        for name, raw in properties or []:
            if name not in self._public:
                msg = f"cannot filter on {name!r}; queryable: {', '.join(self._public)}"
                raise ProviderInvalidQueryError(msg, user_msg=msg)
            if self._public[name].type == "array" and self.dialect == "sqlite":
                clauses.append(f'EXISTS (SELECT 1 FROM json_each(t."{name}") WHERE value = ?)')
            elif self._public[name].type == "array":
                clauses.append(f'%s = ANY(t."{name}")')
            else:
                clauses.append(f't."{name}" = {mark}')
            params.append(self.value(name, raw))
        if filterq is not None:
            try:
                rtree = f"rtree_{self.table}_geom" if self.dialect == "sqlite" else None
                condition, values = where_from_filter(
                    filterq, self._public, dialect=self.dialect, rtree=rtree
                )
            except FilterError as e:
                raise ProviderInvalidQueryError(str(e), user_msg=str(e)) from e
            clauses.append(condition)
            params += values
        return clauses, params

    def order(self, sortby: Sequence[dict[str, str]] | None, tiebreak: str) -> str:
        """The ``ORDER BY`` of ``sortby``, ending with ``tiebreak`` for stable paging."""
        keys = []
        for s in sortby or []:
            name = s.get("property", "")
            if name not in self._public:
                msg = f"cannot sort by {name!r}; sortable: {', '.join(self._public)}"
                raise ProviderInvalidQueryError(msg, user_msg=msg)
            keys.append(f't."{name}" {"DESC" if s.get("order") == "-" else "ASC"}')
        keys.append(tiebreak)
        return "ORDER BY " + ", ".join(keys)

    # -- pygeoapi interface ------------------------------------------------------------

    @crs_transform  # type: ignore[untyped-decorator]
    def query(
        self,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: Sequence[float] | None = None,
        datetime_: str | None = None,
        properties: Sequence[tuple[str, str]] | None = None,
        sortby: Sequence[dict[str, str]] | None = None,
        select_properties: Sequence[str] | None = None,
        skip_geometry: bool = False,
        q: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Query the table.

        Parameters
        ----------
        offset
            Features to skip.
        limit
            Features to return at most.
        resulttype
            ``results`` or ``hits`` (count only).
        bbox
            ``[minx, miny, maxx, maxy]`` in EPSG:4326, answered through the spatial index.
        datetime_
            Not supported (the layers have no time axis); ignored.
        properties
            ``(field, value)`` equality filters; on an array field, membership.
        sortby
            ``[{'property': name, 'order': '+' | '-'}]``.
        select_properties
            Properties to return (all public ones when empty).
        skip_geometry
            Return features without geometry.
        q
            Free-text search; not supported, ignored.
        kwargs
            ``filterq``: a parsed CQL2 filter (see :mod:`geocommuns.serve.cql`);
            ``crs_transform_spec``: the output CRS (applied by pygeoapi's ``crs_transform``);
            others (``language``) are ignored.

        Returns
        -------
        dict
            A GeoJSON FeatureCollection with ``numberReturned`` and ``numberMatched``
            (left out when a filtered query matches more than :data:`MATCH_COUNT_CAP`).
        """
        matched, _, text = self.page(
            offset=offset, limit=limit, resulttype=resulttype, bbox=bbox, properties=properties,
            sortby=sortby, select_properties=select_properties, skip_geometry=skip_geometry,
            filterq=kwargs.get("filterq"),
        )
        features: list[dict[str, Any]] = json.loads(text)
        collection: dict[str, Any] = {"type": "FeatureCollection", "features": features}
        if matched is not None:
            collection["numberMatched"] = matched
        collection["numberReturned"] = len(features)
        return collection

    @crs_transform  # type: ignore[untyped-decorator]
    def get(self, identifier: str, **kwargs: Any) -> dict[str, Any]:
        """Return the feature whose ``id`` is ``identifier`` (through the unique index).

        Parameters
        ----------
        identifier
            The feature id.
        kwargs
            Other pygeoapi arguments; ignored.

        Returns
        -------
        dict
            The GeoJSON feature.

        Raises
        ------
        ProviderItemNotFoundError
            When no feature has that id.
        """
        text = self.feature_text(identifier)
        if text is None:
            msg = f"no feature {identifier!r} in {self.table}"
            raise ProviderItemNotFoundError(msg, user_msg=msg)
        feature: dict[str, Any] = json.loads(text)
        return feature
