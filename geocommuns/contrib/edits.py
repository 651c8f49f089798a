"""geocommuns.contrib.edits: OGC API – Features Part 4 (create, replace, update, delete) on PostGIS.

pygeoapi has no authentication of its own, so the writes never reach it: the WSGI
dispatcher (:mod:`geocommuns.serve.server`) hands this module

- ``POST /collections/{id}/items`` (create),
- ``PUT`` / ``PATCH`` / ``DELETE /collections/{id}/items/{fid}`` (replace, update, delete),
- ``GET`` / ``HEAD /collections/{id}/items/{fid}`` sent with a token (the feature with the
  sensitive fields the user may read, and its ``ETag``).

Each write is one transaction on its own read-write connection (the read provider's
sessions stay read-only): authenticate the ``Authorization: Bearer`` token (401), check
the user may change this layer and the stored feature lies in their territory (403), that
``If-Match`` carries the feature's current ``ETag`` (428 when missing, 412 when stale:
two technicians never silently overwrite each other), check the payload with the rules of
deliveries (400 naming the field, :mod:`geocommuns.contrib.payload`) and that the new position is
in their territory too (403: no moving a feature out of it), write, and record the change
in the audit table (:mod:`geocommuns.contrib.audit`). The layer's feature count and version are
kept by the triggers ``geocommuns publish`` created.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from geocommuns.contrib import audit
from geocommuns.contrib.auth import Principal, authenticate
from geocommuns.contrib.auth import ensure_schema as ensure_users
from geocommuns.contrib.payload import CheckedFeature, PayloadError, check_feature
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.territory import Territory, territory_from_spec

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
#: Largest request body accepted (one feature).
MAX_BODY = 1_000_000
#: Conformance classes of OGC API – Features Part 4 this module implements.
PART4_CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
)
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_REASONS = {
    200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
    412: "Precondition Failed", 413: "Content Too Large", 415: "Unsupported Media Type",
    428: "Precondition Required", 503: "Service Unavailable",
}
#: The stored feature as one JSON document (every column but the key; geometry as GeoJSON);
#: its MD5 is the ETag, so any change to any field changes it.
_DOC = (
    "(to_jsonb(t) - 'fid' - 'geom') || "
    "jsonb_build_object('geometry', ST_AsGeoJSON(t.geom, 9)::jsonb)"
)


class Refused(Exception):
    """A request answered with an error status (the body says why and how to fix)."""

    def __init__(self, status: int, code: str, description: str, **extra: Any) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description
        self.extra = extra


@dataclass(frozen=True)
class Stored:
    """A feature as stored: its key, whole document and ETag."""

    fid: int
    doc: dict[str, Any]
    etag: str


_POOLS: dict[str, ConnectionPool[Any]] = {}
_LOCK = threading.Lock()


def _pool(url: str) -> ConnectionPool[Any]:
    """The process's read-write pool to ``url`` (apart from the read provider's)."""
    with _LOCK:
        pool = _POOLS.get(url)
        if pool is None:
            pool = ConnectionPool(
                url, min_size=1, max_size=2, timeout=10, open=True, name="geocommuns-edits",
                kwargs={"application_name": "geocommuns-edits",
                        "options": "-c statement_timeout=15000 -c lock_timeout=10000"},
            )
            with pool.connection() as conn:
                audit.ensure_schema(conn)
                ensure_users(conn)
            _POOLS[url] = pool
        return pool


class EditService:
    """The Part 4 endpoints of the PostGIS collections (a WSGI application).

    Parameters
    ----------
    database_url
        The PostGIS database the collections are published in.
    layers
        The layer definitions of the editable collections, by collection id.
    territory
        The project's territory spec (``epci:200023737``): positions are located in its
        communes. It is loaded on the first write (a few seconds), not at start-up.
    """

    def __init__(self, database_url: str, layers: dict[str, LayerDef], territory: str) -> None:
        self.database_url = database_url
        self.layers = layers
        self.territory_spec = territory
        self._territory: Territory | None = None
        self._territory_lock = threading.Lock()

    @property
    def territory(self) -> Territory:
        """The project's territory (loaded once per process)."""
        with self._territory_lock:
            if self._territory is None:
                self._territory = territory_from_spec(self.territory_spec)
            return self._territory

    # -- routing -----------------------------------------------------------------------

    def handles(self, environ: dict[str, Any]) -> bool:
        """Whether a request is for this module (writes, and item reads with a token)."""
        method = str(environ.get("REQUEST_METHOD", "GET"))
        parts = str(environ.get("PATH_INFO", "")).strip("/").split("/")
        if len(parts) < 3 or parts[0] != "collections" or parts[2] != "items":
            return False
        if parts[1] not in self.layers:
            return False
        if len(parts) == 3:
            return method == "POST"
        if len(parts) != 4:
            return False
        if method in {"GET", "HEAD"}:
            return bool(environ.get("HTTP_AUTHORIZATION"))
        return method in _WRITES

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answer one request."""
        method = environ.get("REQUEST_METHOD", "GET")
        parts = environ.get("PATH_INFO", "").strip("/").split("/")
        layer = self.layers[parts[1]]
        feature_id = parts[3] if len(parts) == 4 else None
        try:
            with _pool(self.database_url).connection() as conn:
                status, headers, body = self._answer(conn, environ, method, layer, feature_id)
        except Refused as e:
            status = e.status
            headers = [("WWW-Authenticate", 'Bearer realm="geocommuns"')] if e.status == 401 else []
            body = json.dumps(
                {"code": e.code, "description": e.description, **e.extra}, ensure_ascii=False
            ).encode("utf-8")
            headers.append(("Content-Type", "application/json"))
        except PoolTimeout:
            status, headers = 503, [("Content-Type", "application/json"), ("Retry-After", "5")]
            body = b'{"code": "Unavailable", "description": "database busy; retry in a few seconds"}'
        headers.append(("Content-Length", str(len(body))))
        start_response(f"{status} {_REASONS.get(status, '')}".strip(), headers)
        return [] if method == "HEAD" else [body]

    # -- one request -------------------------------------------------------------------

    def _principal(self, conn: psycopg.Connection[Any], environ: dict[str, Any]) -> Principal | None:
        header = environ.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refused(401, "Unauthorized", "send 'Authorization: Bearer <token>'")
        principal = authenticate(conn, token)
        conn.rollback()
        if principal is None:
            msg = "unknown or revoked token; ask an administrator ('geocommuns users add')"
            raise Refused(401, "Unauthorized", msg)
        return principal

    def _answer(
        self,
        conn: psycopg.Connection[Any],
        environ: dict[str, Any],
        method: str,
        layer: LayerDef,
        feature_id: str | None,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        principal = self._principal(conn, environ)
        if method in {"GET", "HEAD"}:
            return self._read(conn, principal, layer, feature_id or "")
        if principal is None:
            msg = "writing needs a token: send 'Authorization: Bearer <token>'"
            raise Refused(401, "Unauthorized", msg)
        if not principal.may_edit_layer(layer.id):
            msg = f"user {principal.name} ({principal.scope}) may not change layer {layer.id}"
            raise Refused(403, "Forbidden", msg)
        with conn.transaction(), conn.cursor() as cur:
            if feature_id is None:
                return self._create(cur, environ, principal, layer)
            stored = _stored(cur, layer, feature_id, lock=True)
            if stored is None:
                raise Refused(404, "NotFound", f"no feature {feature_id!r} in {layer.id}")
            code, epci = stored.doc.get("code_insee"), stored.doc.get("epci")
            if not principal.owns(code, epci):
                msg = (
                    f"feature {feature_id} is in commune {code}, outside the territory of "
                    f"{principal.name} ({principal.scope})"
                )
                raise Refused(403, "Forbidden", msg)
            _check_if_match(environ, stored)
            if method == "DELETE":
                cur.execute(
                    sql.SQL("DELETE FROM {} WHERE fid = %s").format(sql.Identifier(layer.id)),
                    [stored.fid],
                )
                self._audit(cur, principal, layer, feature_id, "delete", stored.doc, None)
                return 204, [], b""
            body = _json_body(environ)
            if method == "PATCH":
                body = _patched(stored.doc, body, layer)
            checked = self._checked(body, principal, layer)
            values = _values(layer, checked, keep=stored.doc)
            _update(cur, layer, stored.fid, values, checked)
            after = _written(cur, layer, feature_id)
            action: audit.Action = "update" if method == "PATCH" else "replace"
            self._audit(cur, principal, layer, feature_id, action, stored.doc, after.doc)
            return 204, [("ETag", after.etag)], b""

    def _checked(self, body: Any, principal: Principal, layer: LayerDef) -> CheckedFeature:
        try:
            checked = check_feature(body, layer, self.territory)
        except PayloadError as e:
            raise Refused(400, "InvalidValue", str(e), field=e.field) from None
        if not principal.owns(checked.code_insee, checked.epci):
            msg = (
                f"the position lies in commune {checked.code_insee} ({checked.commune}), outside "
                f"the territory of {principal.name} ({principal.scope})"
            )
            raise Refused(403, "Forbidden", msg, field="geometry")
        return checked

    def _create(
        self,
        cur: psycopg.Cursor[Any],
        environ: dict[str, Any],
        principal: Principal,
        layer: LayerDef,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        checked = self._checked(_json_body(environ), principal, layer)
        values = _values(layer, checked, keep=None)
        feature_id = str(values["id"])
        if _stored(cur, layer, feature_id, lock=False) is not None:
            msg = f"feature {feature_id} already exists; change it with PUT or give another source_id"
            raise Refused(409, "Conflict", msg, field="source_id")
        names = [*values]
        cur.execute(
            sql.SQL("INSERT INTO {} ({}, geom) VALUES ({}, ST_SetSRID(ST_MakePoint(%s, %s), 4326))")
            .format(
                sql.Identifier(layer.id),
                sql.SQL(", ").join(map(sql.Identifier, names)),
                sql.SQL(", ").join(sql.Placeholder() * len(names)),
            ),
            [*values.values(), checked.lon, checked.lat],
        )
        after = _written(cur, layer, feature_id)
        self._audit(cur, principal, layer, feature_id, "create", None, after.doc)
        location = f"{_base_url(environ)}/collections/{layer.id}/items/{urllib.parse.quote(feature_id)}"
        return 201, [("Location", location), ("ETag", after.etag)], b""

    def _read(
        self, conn: psycopg.Connection[Any], principal: Principal | None, layer: LayerDef, feature_id: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        with conn.cursor() as cur:
            stored = _stored(cur, layer, feature_id, lock=False)
        conn.rollback()
        if stored is None:
            raise Refused(404, "NotFound", f"no feature {feature_id!r} in {layer.id}")
        doc = stored.doc
        sensitive = principal is not None and principal.reads_sensitive(
            layer.id, doc.get("code_insee"), doc.get("epci")
        )
        fields = [f.name for f in layer.fields if sensitive or not f.sensitive]
        feature = {
            "type": "Feature",
            "id": doc.get("id"),
            "geometry": doc.get("geometry"),
            "properties": {k: doc.get(k) for k in fields},
        }
        body = json.dumps(feature, ensure_ascii=False).encode("utf-8")
        return 200, [("Content-Type", "application/geo+json"), ("ETag", stored.etag)], body

    @staticmethod
    def _audit(
        cur: psycopg.Cursor[Any],
        principal: Principal,
        layer: LayerDef,
        feature_id: str,
        action: audit.Action,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        audit.record(
            cur, actor=principal.name, role=principal.role, via="api", layer=layer.id,
            feature_id=feature_id, action=action, before=before, after=after,
        )


def _stored(cur: psycopg.Cursor[Any], layer: LayerDef, feature_id: str, *, lock: bool) -> Stored | None:
    """The stored feature ``feature_id`` (locked for update when ``lock``)."""
    query = sql.SQL("SELECT t.fid, {doc}, md5(({doc})::text) FROM {table} t WHERE t.id = %s{lock}").format(
        doc=sql.SQL(_DOC),
        table=sql.Identifier(layer.id),
        lock=sql.SQL(" FOR UPDATE" if lock else ""),
    )
    row = cur.execute(query, [feature_id]).fetchone()
    if row is None:
        return None
    return Stored(fid=int(row[0]), doc=row[1], etag=f'"{row[2]}"')


def _written(cur: psycopg.Cursor[Any], layer: LayerDef, feature_id: str) -> Stored:
    """The feature just written in this transaction."""
    stored = _stored(cur, layer, feature_id, lock=False)
    if stored is None:
        msg = f"{layer.id}: feature {feature_id} vanished inside its own transaction"
        raise RuntimeError(msg)
    return stored


def stored_doc(cur: psycopg.Cursor[Any], layer: LayerDef, feature_id: str) -> dict[str, Any] | None:
    """The stored feature as audited (every column, geometry as GeoJSON), or None."""
    stored = _stored(cur, layer, feature_id, lock=False)
    return None if stored is None else stored.doc


def _check_if_match(environ: dict[str, Any], stored: Stored) -> None:
    given = environ.get("HTTP_IF_MATCH")
    if not given:
        msg = (
            "send 'If-Match' with the ETag of the feature as you read it "
            "(GET the item with your token), so nobody's change is overwritten unseen"
        )
        raise Refused(428, "PreconditionRequired", msg)
    tags = {t.strip().removeprefix("W/") for t in given.split(",")}
    if "*" not in tags and stored.etag not in tags:
        msg = (
            f"the feature changed since you read it (now {stored.etag}); GET it again, "
            "redo your change on the current version and send its ETag"
        )
        raise Refused(412, "PreconditionFailed", msg)


def _json_body(environ: dict[str, Any]) -> Any:
    ctype = environ.get("CONTENT_TYPE", "")
    if ctype and "json" not in ctype:
        msg = f"send the feature as application/geo+json (got {ctype})"
        raise Refused(415, "UnsupportedMediaType", msg)
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY:
        raise Refused(413, "TooLarge", f"one feature per request, at most {MAX_BODY} bytes")
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise Refused(400, "InvalidValue", f"the body is not JSON ({e})", field="body") from None


def _patched(doc: dict[str, Any], patch: Any, layer: LayerDef) -> dict[str, Any]:
    """The stored feature with a partial GeoJSON feature merged in (RFC 7396: null removes)."""
    if not isinstance(patch, dict):
        raise Refused(400, "InvalidValue", "the body must be a JSON object", field="body")
    properties = {f.name: doc.get(f.name) for f in layer.fields if not f.computed}
    changes = patch.get("properties") or {}
    if not isinstance(changes, dict):
        raise Refused(400, "InvalidValue", "properties must be an object", field="properties")
    properties.update(changes)
    return {
        "type": "Feature",
        "geometry": patch.get("geometry") or doc.get("geometry"),
        "properties": properties,
    }


def _values(layer: LayerDef, checked: CheckedFeature, *, keep: dict[str, Any] | None) -> dict[str, Any]:
    """Every column of the row to write: the checked values, the place, and provenance
    (kept from the stored feature when replacing, new for a contribution)."""
    values = dict(checked.values)
    values.update(
        code_insee=checked.code_insee, commune=checked.commune, epci=checked.epci,
        longitude=checked.lon, latitude=checked.lat,
        imported_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
    )
    if keep is None:
        source = f"contribution-{checked.code_insee}"
        source_id = values.get("source_id") or uuid.uuid4().hex[:12]
        values.update(
            id=f"{source}--{source_id}", source=source, source_id=source_id,
            licence=layer.licence.id, attribution=f"Commune de {checked.commune}",
        )
    else:
        for name in ("id", "source", "osm_id", "licence", "attribution", "merged_from", "provenance"):
            values[name] = keep.get(name)
    return {f.name: values.get(f.name) for f in layer.fields}


def _update(
    cur: psycopg.Cursor[Any], layer: LayerDef, fid: int, values: dict[str, Any], checked: CheckedFeature
) -> None:
    cur.execute(
        sql.SQL("UPDATE {} SET {}, geom = ST_SetSRID(ST_MakePoint(%s, %s), 4326) WHERE fid = %s").format(
            sql.Identifier(layer.id),
            sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in values),
        ),
        [*values.values(), checked.lon, checked.lat, fid],
    )


def _base_url(environ: dict[str, Any]) -> str:
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
    return f"{scheme}://{host}{environ.get('SCRIPT_NAME', '')}"
