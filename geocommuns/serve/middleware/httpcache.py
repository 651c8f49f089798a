"""geocommuns.serve.middleware.httpcache: compressed, revalidatable GET responses (WSGI middleware).

Citizens on poor connections and applications paging through whole layers download the
same GeoJSON again and again. :func:`compressed_and_tagged` wraps a WSGI application so
that every successful ``GET`` response

- carries a strong ``ETag`` (a hash of the uncompressed body) and ``Cache-Control:
  no-cache`` (clients may keep it but must revalidate), and is answered
  ``304 Not Modified`` with no body when the client's ``If-None-Match`` matches;
- is gzip-compressed (level 5: a 95 kB page of 100 features becomes 10 kB in about 1 ms)
  when the client accepts it and the media type is text-like, with ``Vary:
  Accept-Encoding``.

Responses that already carry an ``ETag`` (the item validators of Part 4 edits, which
``If-Match`` must see unchanged) or a ``Content-Encoding`` are left as they are, and so
are the answers to requests sent with ``Authorization`` or marked ``private`` /
``no-store`` (a token's reads, which may hold sensitive fields): nothing here makes them
storable or shareable.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Iterable
from typing import Any

from geocommuns.serve.wsgi import StartResponse, WSGIApp, collect, header

#: Smallest body worth compressing (one TCP segment).
MIN_COMPRESS = 1400
GZIP_LEVEL = 5
_COMPRESSIBLE = ("application/json", "application/geo+json", "application/schema+json",
                 "application/ld+json", "application/vnd.oai.openapi", "text/", "application/javascript",
                 "image/svg+xml", "application/xml")


#: pygeoapi stamps every page with the time it was made: not a change of the data.
_TIMESTAMP = re.compile(rb'"timeStamp":\s*"[^"]*"')


def etag_of(body: bytes) -> str:
    """The entity tag of an uncompressed body (its ``timeStamp`` member left out)."""
    digest = hashlib.blake2b(_TIMESTAMP.sub(b"", body), digest_size=12).hexdigest()
    return f'"{digest}"'


def _matches(if_none_match: str, etag: str) -> bool:
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags or etag.removesuffix('"') + '-gzip"' in tags


def compressed_and_tagged(app: WSGIApp) -> WSGIApp:
    """Wrap ``app``: ETags, 304 answers and gzip for successful GET responses.

    Parameters
    ----------
    app
        The WSGI application.

    Returns
    -------
    callable
        The wrapped application.
    """

    def wrapped(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "GET" or environ.get("HTTP_AUTHORIZATION"):
            return app(environ, start_response)
        status, headers, body, exc_info = collect(app, environ)
        cache_control = (header(headers, "cache-control") or "").lower()
        if (
            not status.startswith("200")
            or "private" in cache_control
            or "no-store" in cache_control
            or header(headers, "content-encoding")
            or header(headers, "etag")  # someone else's validator (e.g. for If-Match): keep it
        ):
            start_response(status, headers, exc_info)
            return [body]
        etag = etag_of(body)
        headers += [("ETag", etag), ("Cache-Control", "no-cache")]
        if _matches(environ.get("HTTP_IF_NONE_MATCH", ""), etag):
            kept = [(k, v) for k, v in headers if k.lower() not in {"content-length", "content-type"}]
            start_response("304 Not Modified", kept)
            return []
        ctype = header(headers, "content-type") or ""
        accepts = "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "").lower()
        if accepts and len(body) >= MIN_COMPRESS and ctype.startswith(_COMPRESSIBLE):
            body = gzip.compress(body, GZIP_LEVEL, mtime=0)
            headers = [(k, v) for k, v in headers if k.lower() not in {"content-length", "etag"}]
            headers += [
                ("Content-Encoding", "gzip"),
                ("ETag", etag.removesuffix('"') + '-gzip"'),
                ("Vary", "Accept-Encoding"),
                ("Content-Length", str(len(body))),
            ]
        start_response(status, headers)
        return [body]

    return wrapped
