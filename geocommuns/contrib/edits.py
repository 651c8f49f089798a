"""geocommuns.contrib.edits: OGC API – Features Part 4 (create, replace, update, delete).

pygeoapi has no authentication of its own, so the writes never reach it: the WSGI
pipeline (:mod:`geocommuns.serve.app`, through its Part 4 hand-off
:mod:`geocommuns.serve.middleware.handoff`) hands this module

- ``POST /collections/{id}/items`` (create),
- ``PUT`` / ``PATCH`` / ``DELETE /collections/{id}/items/{fid}`` (replace, update, delete),
- ``GET`` / ``HEAD /collections/{id}/items/{fid}`` sent with a token (the feature with the
  sensitive fields the user may read, and its ``ETag``).

A layer whose definition says ``access: restricted`` exists only for the tokens that may
read it (:meth:`geocommuns.contrib.auth.Principal.may_read_layer`): for any other request
(no token, an unknown, revoked or expired one, a reader's) :meth:`EditService.handles`
declines, and the request goes on to pygeoapi, which does not know the collection and
answers exactly as for one that does not exist.

The same rules hold on both backends of the living store
(:mod:`geocommuns.contrib.layerstore`: PostGIS, or the GeoPackage of the embedded
default). Each write is one transaction: authenticate the ``Authorization: Bearer``
token (401), check the user may change this layer and the stored feature lies in their
territory (403), that ``If-Match`` carries the feature's current ``ETag`` (428 when
missing, 412 when stale: two technicians never silently overwrite each other), check the
payload with the rules of deliveries (400 naming the field,
:mod:`geocommuns.contrib.payload`) and that the new position is in their territory too
(403: no moving a feature out of it), write, and record the change in the journal
(:mod:`geocommuns.ingest.journal`), which every refresh replays.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sqlite3
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout

from geocommuns.contrib.auth import Principal, authenticate
from geocommuns.contrib.layerstore import (
    LayerTable,
    LivingStore,
    PostgisStore,
    Stored,
    table_of,
)
from geocommuns.contrib.payload import CheckedFeature, PayloadError, check_feature
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.territory import Territory, territory_from_spec
from geocommuns.ingest import journal
from geocommuns.ingest.sqldb import Db

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
#: The WSGI environment key under which a request's authenticated caller is kept, so a
#: token is checked once per request (:meth:`EditService.caller`).
PRINCIPAL_KEY = "geocommuns.principal"
#: What a contributed feature's ``source_id`` may be: it ends the feature's id, which is a
#: URL path segment (no ``/``), and a key (bounded).
SOURCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:~-]{0,63}")
#: Headers of an answer holding fields only its token may read: no cache keeps it, and a
#: cache keying on the URL alone never hands it to another caller.
PRIVATE = [("Cache-Control", "private, no-store"), ("Vary", "Authorization")]
_REASONS = {
    200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
    412: "Precondition Failed", 413: "Content Too Large", 415: "Unsupported Media Type",
    428: "Precondition Required", 503: "Service Unavailable",
}
class Refused(Exception):
    """A request answered with an error status (the body says why and how to fix)."""

    def __init__(self, status: int, code: str, description: str, **extra: Any) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description
        self.extra = extra


class EditService:
    """The Part 4 endpoints of the collections (a WSGI application).

    Parameters
    ----------
    store
        The living store: a :class:`~geocommuns.contrib.layerstore.PostgisStore`, a
        :class:`~geocommuns.contrib.layerstore.GeoPackageStore`, or a PostGIS URL.
    layers
        The layer definitions of the editable collections, by collection id.
    territory
        The project's territory spec (``epci:200023737``): positions are located in its
        communes. It is loaded on the first write (a few seconds), not at start-up.
    """

    def __init__(self, store: LivingStore | str, layers: dict[str, LayerDef], territory: str) -> None:
        self.store: LivingStore = PostgisStore(store) if isinstance(store, str) else store
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
            handled = method == "POST"
        elif len(parts) != 4:
            return False
        elif method in {"GET", "HEAD"}:
            handled = bool(environ.get("HTTP_AUTHORIZATION"))
        else:
            handled = method in _WRITES
        return handled and self.may_read(environ, parts[1])

    def may_read(self, environ: dict[str, Any], layer_id: str) -> bool:
        """Whether the caller of a request may know layer ``layer_id`` exists at all.

        A public layer: everyone. A restricted layer: only a valid token whose user may
        read it (:meth:`geocommuns.contrib.auth.Principal.may_read_layer`); anything else,
        the store unreachable included, is answered as if the layer did not exist.

        Parameters
        ----------
        environ
            The WSGI environment of the request.
        layer_id
            The collection id.

        Returns
        -------
        bool
            True when the layer may be served to this caller.
        """
        layer = self.layers.get(layer_id)
        if layer is None:
            return False
        if layer.access == "public":
            return True
        if not environ.get("HTTP_AUTHORIZATION"):
            return False
        try:
            principal = self.caller(environ)
        except (Refused, PoolTimeout, sqlite3.OperationalError, psycopg.OperationalError):
            return False
        return principal is not None and principal.may_read_layer(layer.id, layer.access)

    def caller(self, environ: dict[str, Any]) -> Principal | None:
        """The user whose token a request carries (None: no token), checked once per request.

        Raises
        ------
        Refused
            ``401`` when the ``Authorization`` header is malformed or its token unknown,
            revoked or expired.
        """
        if PRINCIPAL_KEY not in environ:
            with self.store.reading() as db:
                environ[PRINCIPAL_KEY] = self._principal(db, environ)
        principal: Principal | None = environ[PRINCIPAL_KEY]
        return principal

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answer one request."""
        method = environ.get("REQUEST_METHOD", "GET")
        parts = environ.get("PATH_INFO", "").strip("/").split("/")
        layer = self.layers[parts[1]]
        feature_id = parts[3] if len(parts) == 4 else None
        try:
            session = self.store.reading() if method in {"GET", "HEAD"} else self.store.writing()
            with session as db:
                status, headers, body = self._answer(db, environ, method, layer, feature_id)
        except Refused as e:
            status = e.status
            headers = [("WWW-Authenticate", 'Bearer realm="geocommuns"')] if e.status == 401 else []
            body = json.dumps(
                {"code": e.code, "description": e.description, **e.extra}, ensure_ascii=False
            ).encode("utf-8")
            headers.append(("Content-Type", "application/json"))
        except (PoolTimeout, sqlite3.OperationalError, psycopg.OperationalError):
            logger.exception("the living store did not answer in time")
            status, headers = 503, [("Content-Type", "application/json"), ("Retry-After", "5")]
            body = b'{"code": "Unavailable", "description": "database busy; retry in a few seconds"}'
        if method in {"GET", "HEAD"}:  # a read with a token: for its caller only
            headers += PRIVATE
        headers.append(("Content-Length", str(len(body))))
        start_response(f"{status} {_REASONS.get(status, '')}".strip(), headers)
        return [] if method == "HEAD" else [body]

    # -- one request -------------------------------------------------------------------

    def _principal(self, db: Db, environ: dict[str, Any]) -> Principal | None:
        header = environ.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refused(401, "Unauthorized", "send 'Authorization: Bearer <token>'")
        principal = authenticate(db, token)
        if principal is None:
            msg = "unknown, revoked or expired token; ask an administrator ('geocommuns users add')"
            raise Refused(401, "Unauthorized", msg)
        return principal

    def _answer(
        self,
        db: Db,
        environ: dict[str, Any],
        method: str,
        layer: LayerDef,
        feature_id: str | None,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        principal = environ[PRINCIPAL_KEY] if PRINCIPAL_KEY in environ else self._principal(db, environ)
        table = table_of(db)
        if method in {"GET", "HEAD"}:
            return self._read(table, principal, layer, feature_id or "")
        if principal is None:
            msg = "writing needs a token: send 'Authorization: Bearer <token>'"
            raise Refused(401, "Unauthorized", msg)
        if not principal.may_edit_layer(layer.id):
            msg = f"user {principal.name} ({principal.scope}) may not change layer {layer.id}"
            raise Refused(403, "Forbidden", msg)
        with db.transaction():
            if feature_id is None:
                return self._create(table, environ, principal, layer)
            stored = table.get(layer, feature_id, lock=True)
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
                table.delete(layer, feature_id)
                self._journal(table, principal, layer, feature_id, "delete", stored.doc, None)
                return 204, [], b""
            body = _json_body(environ)
            if method == "PATCH":
                body = _patched(stored.doc, body, layer)
            checked = self._checked(body, principal, layer)
            values = _values(layer, checked, keep=stored.doc)
            table.update(layer, feature_id, values, checked.lon, checked.lat)
            after = _written(table, layer, feature_id)
            action: journal.Action = "update" if method == "PATCH" else "replace"
            self._journal(table, principal, layer, feature_id, action, stored.doc, after.doc)
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
        table: LayerTable,
        environ: dict[str, Any],
        principal: Principal,
        layer: LayerDef,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        checked = self._checked(_json_body(environ), principal, layer)
        given = checked.values.get("source_id")
        if given is not None and not SOURCE_ID.fullmatch(str(given)):
            msg = (
                f"{str(given)[:80]!r} is not a valid source_id: 1 to 64 letters, digits, '.', "
                "'_', ':', '~' or '-', starting with a letter or digit (no '/', no spaces)"
            )
            raise Refused(400, "InvalidValue", msg, field="source_id")
        values = _values(layer, checked, keep=None)
        feature_id = str(values["id"])
        if table.get(layer, feature_id) is not None:
            msg = f"feature {feature_id} already exists; change it with PUT or give another source_id"
            raise Refused(409, "Conflict", msg, field="source_id")
        table.insert(layer, values, checked.lon, checked.lat)
        after = _written(table, layer, feature_id)
        self._journal(table, principal, layer, feature_id, "create", None, after.doc)
        location = f"{_base_url(environ)}/collections/{layer.id}/items/{urllib.parse.quote(feature_id)}"
        return 201, [("Location", location), ("ETag", after.etag)], b""

    def _read(
        self, table: LayerTable, principal: Principal | None, layer: LayerDef, feature_id: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        stored = table.get(layer, feature_id)
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
    def _journal(
        table: LayerTable,
        principal: Principal,
        layer: LayerDef,
        feature_id: str,
        action: journal.Action,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        journal.record(
            table.db, actor=principal.name, role=principal.role, via="api", layer=layer.id,
            feature_id=feature_id, action=action, before=before, after=after,
        )


def _written(table: LayerTable, layer: LayerDef, feature_id: str) -> Stored:
    """The feature just written in this transaction."""
    stored = table.get(layer, feature_id)
    if stored is None:
        msg = f"{layer.id}: feature {feature_id} vanished inside its own transaction"
        raise RuntimeError(msg)
    return stored


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


def _base_url(environ: dict[str, Any]) -> str:
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
    return f"{scheme}://{host}{environ.get('SCRIPT_NAME', '')}"
