"""geocommuns.serve.cql: CQL2 filters, parsed and compiled to SQL for the GeoPackage and PostGIS.

OGC API – Features Part 3 lets clients filter items with a CQL2 expression
(``filter=code_insee = '46042' AND gratuit = true``). :func:`parse_text` reads CQL2 text
(and, for older clients, ECQL), and :func:`where_from_filter` turns the parsed expression
into a parameterised SQL ``WHERE`` clause for one of two dialects:

- ``sqlite``: the built GeoPackage, read with the standard library's ``sqlite3``; spatial
  predicates call the ``gc_spatial`` SQL function that :func:`register_sqlite_functions`
  adds to a connection;
- ``postgis``: the published PostGIS tables, with ``ST_*`` predicates on the GiST index.

Only declared, public fields can be filtered on: a sensitive field is as unknown to a
filter as a misspelt one. Values are always bound as parameters, never pasted into SQL.

Supported: ``AND``, ``OR``, ``NOT``, ``=``, ``<>``, ``<``, ``<=``, ``>``, ``>=``, ``LIKE``
(``%`` and ``_`` wildcards, ``\\`` escapes; ``CASEI()`` for case-insensitive matching),
``IN``, ``BETWEEN``, ``IS NULL``, the spatial predicates ``S_INTERSECTS``, ``S_DISJOINT``,
``S_WITHIN``, ``S_CONTAINS``, ``S_TOUCHES``, ``S_CROSSES``, ``S_OVERLAPS``, ``S_EQUALS``
on the feature geometry, and the ECQL ``BBOX()`` predicate. On an array field (a hotspot's
SSIDs, a container's waste streams) ``=`` means "has this element".
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import shapely
from pygeofilter import ast, values
from pygeofilter.parsers.cql2_json import parse as _parse_cql2_json
from pygeofilter.parsers.cql2_text import parse as _parse_cql2_text
from pygeofilter.parsers.ecql import parse as _parse_ecql

from geocommuns.definitions.layerdef import FieldDef
from geocommuns.errors import GeocommunsError

Dialect = Literal["sqlite", "postgis"]

#: Names a filter may use for the feature geometry.
GEOMETRY_NAMES = frozenset({"geometry", "geom", "the_geom", "shape"})

_COMPARISONS: dict[type[ast.Comparison], str] = {
    ast.Equal: "=",
    ast.NotEqual: "<>",
    ast.LessThan: "<",
    ast.LessEqual: "<=",
    ast.GreaterThan: ">",
    ast.GreaterEqual: ">=",
}
_SPATIAL: dict[type[ast.SpatialComparisonPredicate], str] = {
    ast.GeometryIntersects: "intersects",
    ast.GeometryDisjoint: "disjoint",
    ast.GeometryWithin: "within",
    ast.GeometryContains: "contains",
    ast.GeometryTouches: "touches",
    ast.GeometryCrosses: "crosses",
    ast.GeometryOverlaps: "overlaps",
    ast.GeometryEquals: "equals",
}
_SUPPORTED = (
    "AND, OR, NOT, =, <>, <, <=, >, >=, LIKE, IN, BETWEEN, IS NULL, CASEI(), "
    "S_INTERSECTS, S_DISJOINT, S_WITHIN, S_CONTAINS, S_TOUCHES, S_CROSSES, S_OVERLAPS, "
    "S_EQUALS, BBOX()"
)


#: Bounds on one filter, so that no filter can keep a worker busy: its text (or CQL2
#: JSON) length, nesting depth, predicates, values in one IN list, and the vertices of
#: all its literal geometries together.
MAX_FILTER_CHARS = 20_000
#: Largest integer a filter may compare with: SQLite's (and PostgreSQL's bigint) range.
#: A larger one could not be bound on the GeoPackage (a 500 before: found by schemathesis).
MAX_INTEGER = 2**63 - 1
MAX_DEPTH = 20
MAX_PREDICATES = 50
MAX_IN_VALUES = 500
MAX_VERTICES = 5_000


class FilterError(GeocommunsError):
    """A filter that cannot be parsed or uses something this service cannot evaluate."""


class FilterTooComplex(FilterError):
    """A filter beyond the bounds (:data:`MAX_FILTER_CHARS`, :data:`MAX_DEPTH`...)."""


def parse_text(text: str) -> ast.AstType:
    """Parse a filter written in CQL2 text (or CQL2 JSON, or ECQL for older clients).

    Parameters
    ----------
    text
        The filter, e.g. ``nom LIKE 'Mairie%' AND code_insee IN ('46042', '46224')``; a
        text starting with ``{`` is read as CQL2 JSON.

    Returns
    -------
    pygeofilter.ast.AstType
        The parsed expression.

    Raises
    ------
    FilterError
        When neither grammar accepts the text (:class:`FilterTooComplex` when it is
        longer than :data:`MAX_FILTER_CHARS` or nested too deep to parse).
    """
    if len(text) > MAX_FILTER_CHARS:
        msg = f"filter too complex: {len(text)} characters, at most {MAX_FILTER_CHARS}"
        raise FilterTooComplex(msg)
    if text.lstrip().startswith("{"):
        try:
            return _parse_cql2_json(text)
        except RecursionError:
            msg = f"filter too complex: nested deeper than {MAX_DEPTH} levels"
            raise FilterTooComplex(msg) from None
        except Exception as e:
            msg = f"invalid CQL2 JSON filter: {e}"
            raise FilterError(msg) from None
    try:
        return _parse_cql2_text(text)
    except RecursionError:
        msg = f"filter too complex: nested deeper than {MAX_DEPTH} levels"
        raise FilterTooComplex(msg) from None
    except Exception as cql2_error:
        try:
            return _parse_ecql(text)
        except Exception:
            first = str(cql2_error).strip().splitlines()[0] if str(cql2_error).strip() else ""
            msg = f"invalid CQL2 text filter {text!r}: {first}"
            raise FilterError(msg) from None


@dataclass
class _Compiler:
    fields: Mapping[str, FieldDef]
    dialect: Dialect
    geometry: str
    table: str
    rtree: str | None = None
    params: list[Any] = field(default_factory=list)
    depth: int = 0
    predicates: int = 0
    vertices: int = 0

    def count_predicate(self) -> None:
        self.predicates += 1
        if self.predicates > MAX_PREDICATES:
            msg = f"filter too complex: more than {MAX_PREDICATES} predicates"
            raise FilterTooComplex(msg)

    @property
    def mark(self) -> str:
        return "?" if self.dialect == "sqlite" else "%s"

    def bind(self, value: Any) -> str:
        if self.dialect == "sqlite" and isinstance(value, dt.date | dt.datetime):
            value = value.isoformat()
        self.params.append(value)
        return self.mark

    def column(self, name: str) -> str:
        return f'{self.table}."{name}"'

    # -- expressions ---------------------------------------------------------------

    def attribute(self, node: ast.Attribute) -> FieldDef:
        f = self.fields.get(node.name)
        if f is None:
            msg = f"cannot filter on {node.name!r}; queryable: {', '.join(self.fields)}"
            raise FilterError(msg)
        return f

    def operand(self, node: Any) -> str:
        if isinstance(node, ast.Attribute):
            f = self.attribute(node)
            if f.type == "array":
                msg = f"{f.name} is a list: compare it with '=' (has this element) only"
                raise FilterError(msg)
            return self.column(f.name)
        if isinstance(node, ast.Function) and node.name.lower() in {"lower", "casei"}:
            (arg,) = node.arguments
            return self.fold("lower", self.operand(arg))
        if isinstance(node, ast.Function) and node.name.lower() == "upper":
            (arg,) = node.arguments
            return self.fold("upper", self.operand(arg))
        if isinstance(node, int) and not isinstance(node, bool) and abs(node) > MAX_INTEGER:
            msg = f"integer {str(node)[:30]} is out of range (at most {MAX_INTEGER} in absolute value)"
            raise FilterError(msg)
        if isinstance(node, bool | int | float | str | dt.date | dt.datetime):
            return self.bind(node)
        msg = f"unsupported expression {node!r} in filter; supported: {_SUPPORTED}"
        raise FilterError(msg)

    def fold(self, function: str, expression: str) -> str:
        """``lower``/``upper`` folding every letter (``É`` to ``é``), whatever the
        database's locale: PostgreSQL's own follow the cluster's ``LC_CTYPE`` (ASCII only
        under ``C``), so they run under the ICU root collation; SQLite's are replaced by
        :func:`register_sqlite_functions`."""
        if self.dialect == "postgis":
            return f'{function}(({expression})::text COLLATE "und-x-icu")'
        return f"{function}({expression})"

    # -- predicates ----------------------------------------------------------------

    def compile(self, node: Any, parent: type | None = None) -> str:
        # a chain of one operator (a OR b OR c, parsed as nested pairs) is one level
        level = 0 if isinstance(node, ast.And | ast.Or) and type(node) is parent else 1
        self.depth += level
        try:
            if self.depth > MAX_DEPTH:
                msg = f"filter too complex: nested deeper than {MAX_DEPTH} levels"
                raise FilterTooComplex(msg)
            if not isinstance(node, ast.And | ast.Or | ast.Not):
                self.count_predicate()
            return self.predicate(node)
        finally:
            self.depth -= level

    def predicate(self, node: Any) -> str:
        if isinstance(node, ast.And | ast.Or):
            op = "AND" if isinstance(node, ast.And) else "OR"
            return f"({self.compile(node.lhs, type(node))} {op} {self.compile(node.rhs, type(node))})"
        if isinstance(node, ast.Not):
            return f"(NOT {self.compile(node.sub_node)})"
        if isinstance(node, ast.Comparison) and type(node) in _COMPARISONS:
            return self.comparison(node)
        if isinstance(node, ast.Like):
            lhs = self.operand(node.lhs)
            pattern = self.operand(node.pattern)
            if node.nocase:
                lhs, pattern = self.fold("lower", lhs), self.fold("lower", pattern)
            neg = "NOT " if node.not_ else ""
            return f"({lhs} {neg}LIKE {pattern} ESCAPE '\\')"
        if isinstance(node, ast.In):
            if len(node.sub_nodes) > MAX_IN_VALUES:
                msg = f"filter too complex: {len(node.sub_nodes)} values in IN, at most {MAX_IN_VALUES}"
                raise FilterTooComplex(msg)
            lhs = self.operand(node.lhs)
            marks = ", ".join(self.operand(v) for v in node.sub_nodes)
            return f"({lhs} {'NOT ' if node.not_ else ''}IN ({marks}))"
        if isinstance(node, ast.Between):
            lhs = self.operand(node.lhs)
            low, high = self.operand(node.low), self.operand(node.high)
            return f"({lhs} {'NOT ' if node.not_ else ''}BETWEEN {low} AND {high})"
        if isinstance(node, ast.IsNull):
            lhs = self.operand(node.lhs)
            return f"({lhs} IS {'NOT ' if node.not_ else ''}NULL)"
        if isinstance(node, ast.SpatialComparisonPredicate) and type(node) in _SPATIAL:
            return self.spatial(_SPATIAL[type(node)], node.lhs, node.rhs)
        if isinstance(node, ast.BBox):
            box = shapely.box(node.minx, node.miny, node.maxx, node.maxy)
            return self.spatial("intersects", node.lhs, box)
        name = type(node).__name__
        msg = f"unsupported filter element {name}; supported: {_SUPPORTED}"
        raise FilterError(msg)

    def comparison(self, node: ast.Comparison) -> str:
        op = _COMPARISONS[type(node)]
        lhs, rhs = node.lhs, node.rhs
        if isinstance(rhs, ast.Attribute) and not isinstance(lhs, ast.Attribute):
            lhs, rhs = rhs, lhs  # '46042' = code_insee
        if isinstance(lhs, ast.Attribute) and self.attribute(lhs).type == "array":
            if op not in {"=", "<>"}:
                msg = f"{lhs.name} is a list: only '=' (has this element) and '<>' apply"
                raise FilterError(msg)
            has = self.has_element(lhs.name, rhs)
            return has if op == "=" else f"(NOT {has})"
        return f"({self.operand(lhs)} {op} {self.operand(rhs)})"

    def has_element(self, name: str, value: Any) -> str:
        mark = self.operand(value)
        if self.dialect == "sqlite":
            return f"EXISTS (SELECT 1 FROM json_each({self.column(name)}) WHERE value = {mark})"
        return f"({mark} = ANY({self.column(name)}))"

    def spatial(self, predicate: str, lhs: Any, rhs: Any) -> str:
        if isinstance(lhs, ast.Attribute) and lhs.name in GEOMETRY_NAMES:
            other = rhs
        elif isinstance(rhs, ast.Attribute) and rhs.name in GEOMETRY_NAMES:
            other, predicate = lhs, {"within": "contains", "contains": "within"}.get(
                predicate, predicate
            )
        else:
            msg = f"a spatial predicate needs the feature geometry ('geometry') on one side; supported: {_SUPPORTED}"
            raise FilterError(msg)
        literal = _literal_geometry(other)
        self.vertices += int(shapely.get_num_coordinates(literal))
        if self.vertices > MAX_VERTICES:
            msg = f"filter too complex: its geometries have more than {MAX_VERTICES} vertices"
            raise FilterTooComplex(msg)
        wkb = literal.wkb
        col = f"{self.table}.{self.geometry}"
        if self.dialect == "sqlite":
            if self.rtree is None or predicate == "disjoint" or literal.is_empty:
                return f"gc_spatial('{predicate}', {col}, {self.bind(wkb)})"
            # every predicate but disjoint implies that the bounds meet: the R-tree finds
            # the candidates (its float32 bounds are rounded outwards: a superset), the
            # exact test runs on them only (parameters bound in the order of the text)
            minx, miny, maxx, maxy = literal.bounds
            box = (
                f'{self.table}.fid IN (SELECT id FROM "{self.rtree}" WHERE minx <= {self.bind(maxx)} '
                f"AND maxx >= {self.bind(minx)} AND miny <= {self.bind(maxy)} AND maxy >= {self.bind(miny)})"
            )
            return f"({box} AND gc_spatial('{predicate}', {col}, {self.bind(wkb)}))"
        return f"ST_{predicate.capitalize()}({col}, ST_GeomFromWKB({self.bind(wkb)}, 4326))"


def _literal_geometry(node: Any) -> shapely.Geometry:
    if isinstance(node, shapely.Geometry):
        return node
    if isinstance(node, values.Geometry):
        return shapely.geometry.shape(node.geometry)
    if isinstance(node, values.Envelope):
        return shapely.box(node.x1, node.y1, node.x2, node.y2)
    if isinstance(node, ast.Function) and node.name.lower() == "bbox":
        coords = [float(v) for v in node.arguments]
        if len(coords) == 6:
            coords = [coords[0], coords[1], coords[3], coords[4]]
        if len(coords) != 4:
            msg = "BBOX() takes 4 (or 6) numbers: minx, miny, maxx, maxy"
            raise FilterError(msg)
        return shapely.box(*coords)
    msg = f"a spatial predicate needs a literal geometry (POINT, POLYGON, BBOX...), got {node!r}"
    raise FilterError(msg)


def where_from_filter(
    node: Any,
    fields: Mapping[str, FieldDef],
    *,
    dialect: Dialect,
    geometry: str = "geom",
    table: str = "t",
    rtree: str | None = None,
) -> tuple[str, list[Any]]:
    """Compile a parsed filter into a SQL condition and its parameters.

    Parameters
    ----------
    node
        The expression parsed by pygeofilter (what pygeoapi passes providers as ``filterq``).
    fields
        The fields a filter may use, by name (the layer's public fields).
    dialect
        ``sqlite`` (placeholders ``?``) or ``postgis`` (placeholders ``%s``).
    geometry
        The geometry column.
    table
        The alias of the table in the query.
    rtree
        ``sqlite`` only: the GeoPackage R-tree of the geometry column
        (``rtree_<table>_geom``): spatial predicates then test their candidates only,
        not every row.

    Returns
    -------
    tuple
        The condition (to AND into a ``WHERE``) and its parameters, in order.

    Raises
    ------
    FilterError
        When the filter names an unknown or sensitive field or uses an unsupported element;
        the message lists what is supported. :class:`FilterTooComplex` when it is beyond
        the bounds (:data:`MAX_DEPTH`, :data:`MAX_PREDICATES`, :data:`MAX_IN_VALUES`,
        :data:`MAX_VERTICES`).
    """
    compiler = _Compiler(fields=fields, dialect=dialect, geometry=geometry, table=table, rtree=rtree)
    try:
        condition = compiler.compile(node)
    except RecursionError:
        msg = f"filter too complex: nested deeper than {MAX_DEPTH} levels"
        raise FilterTooComplex(msg) from None
    return condition, compiler.params


#: Byte size of the envelope after the 8-byte GeoPackageBinary header, by envelope code.
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


def wkb_from_gpkg(blob: bytes | None) -> bytes | None:
    """The standard WKB inside a GeoPackageBinary geometry blob.

    The blob is the ``GP`` header (magic, version, flags, srs_id, optional envelope)
    followed by standard WKB.

    Parameters
    ----------
    blob
        The value of a GeoPackage geometry column.

    Returns
    -------
    bytes or None
        The WKB, or None for a null or empty geometry.

    Raises
    ------
    ValueError
        When the blob is not a GeoPackage geometry.
    """
    if blob is None:
        return None
    if len(blob) < 8 or blob[:2] != b"GP":
        msg = "not a GeoPackage geometry blob (missing 'GP' magic)"
        raise ValueError(msg)
    flags = blob[3]
    if flags & 0b0001_0000:  # empty geometry flag
        return None
    envelope = (flags >> 1) & 0b111
    if envelope not in _ENVELOPE_BYTES:
        msg = f"invalid GeoPackage envelope code {envelope}"
        raise ValueError(msg)
    return blob[8 + _ENVELOPE_BYTES[envelope] :]


_PREPARED: dict[bytes, shapely.Geometry] = {}


def _spatial(predicate: str, blob: bytes | None, wkb: bytes) -> int:
    """SQL function ``gc_spatial(predicate, gpkg_geometry, wkb)``: 1 when it holds."""
    feature = wkb_from_gpkg(blob)
    if feature is None:
        return 0
    other = _PREPARED.get(wkb)
    if other is None:
        if len(_PREPARED) > 64:
            _PREPARED.clear()
        other = _PREPARED[wkb] = shapely.from_wkb(wkb)
        shapely.prepare(other)
    geom = shapely.from_wkb(feature)
    return int(bool(getattr(shapely, predicate)(geom, other)))


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def register_sqlite_functions(con: sqlite3.Connection) -> None:
    """Add ``gc_spatial``, Unicode ``lower``/``upper``, and make ``LIKE`` case-sensitive.

    Parameters
    ----------
    con
        A connection to the GeoPackage.
    """
    con.create_function("gc_spatial", 3, _spatial, deterministic=True)
    # SQLite's own lower() and upper() only fold ASCII: 'É' would never match 'é'
    con.create_function("lower", 1, _lower, deterministic=True)
    con.create_function("upper", 1, _upper, deterministic=True)
    con.execute("PRAGMA case_sensitive_like = ON")
