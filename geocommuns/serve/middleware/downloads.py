"""geocommuns.serve.middleware.downloads: the open-data files at ``/telechargements/``, the DCAT-AP catalogue.

``geocommuns export`` (and each refresh) writes every layer's downloads into the export
folder (``<export_dir>/<layer>/``: GeoJSON, GeoPackage, CSV, the national-schema CSV and
``datapackage.json``), and the refresh writes the DCAT-AP catalogue beside them
(:mod:`geocommuns.publish.catalogue`). :func:`downloads` serves them:

- ``/telechargements/``: a French page listing each public layer's files with their
  size;
- ``/telechargements/<layer>/<file>``: one file, with its media type, length, a strong
  ``ETag`` (a hash of its bytes; ``If-None-Match`` answered ``304``), ``Last-Modified``
  and ``Content-Disposition: attachment`` naming it;
- ``/catalogue.jsonld``, ``/catalogue.ttl`` and ``/catalogue.rdf``: the DCAT-AP catalogue
  (JSON-LD, Turtle, RDF/XML).

Only the files a layer's ``datapackage.json`` lists are served, and never a file of a
restricted layer (``access: restricted``): those answer 404 like a file that does not
exist, whatever the path says.
"""

from __future__ import annotations

import hashlib
import html
import threading
from collections.abc import Iterable, Mapping
from email.utils import formatdate
from pathlib import Path
from typing import Any

from geocommuns.definitions.layerdef import LayerDef
from geocommuns.publish.catalogue import (
    JSONLD_NAME,
    RDFXML_NAME,
    TURTLE_NAME,
    Download,
    downloads_of,
)
from geocommuns.serve.wsgi import Middleware, StartResponse, WSGIApp

PREFIX = "/telechargements/"
#: The DCAT-AP documents, by path, with their media types.
CATALOGUE_FILES = {
    "/" + JSONLD_NAME: (JSONLD_NAME, "application/ld+json"),
    "/" + TURTLE_NAME: (TURTLE_NAME, "text/turtle"),
    "/" + RDFXML_NAME: (RDFXML_NAME, "application/rdf+xml"),
}
_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/geo+json",
    "application/ld+json",
    "application/rdf+xml",
)
_CHUNK = 1 << 16


class _Tags:
    """Entity tags of files, computed once per (path, size, modification time)."""

    def __init__(self) -> None:
        self._known: dict[Path, tuple[int, int, str]] = {}
        self._lock = threading.Lock()

    def of(self, path: Path) -> str:
        stat = path.stat()
        with self._lock:
            known = self._known.get(path)
        if known is not None and known[:2] == (stat.st_size, stat.st_mtime_ns):
            return known[2]
        digest = hashlib.blake2b(digest_size=12)
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                digest.update(chunk)
        tag = f'"{digest.hexdigest()}"'
        with self._lock:
            self._known[path] = (stat.st_size, stat.st_mtime_ns, tag)
        return tag


def _not_found(start_response: StartResponse) -> list[bytes]:
    body = b"Fichier introuvable."
    start_response(
        "404 Not Found",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _send_file(
    path: Path, media_type: str, environ: dict[str, Any], start_response: StartResponse, tags: _Tags
) -> list[bytes]:
    """Answer with one file: type, length, ETag (304 when it matches), Content-Disposition."""
    etag = tags.of(path)
    ctype = media_type + ("; charset=utf-8" if media_type.startswith(_TEXT_TYPES) else "")
    headers = [
        ("ETag", etag),
        ("Last-Modified", formatdate(path.stat().st_mtime, usegmt=True)),
        ("Cache-Control", "no-cache"),
        ("Content-Disposition", f'attachment; filename="{path.name}"'),
    ]
    wanted = {
        t.strip().removeprefix("W/") for t in environ.get("HTTP_IF_NONE_MATCH", "").split(",")
    }
    if etag in wanted or "*" in wanted:
        start_response("304 Not Modified", headers)
        return []
    body = path.read_bytes()
    start_response(
        "200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body))), *headers]
    )
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


def _size(length: int) -> str:
    """A length in French units (ko, Mo)."""
    if length < 1000:
        return f"{length} octets"
    if length < 1_000_000:
        return f"{length / 1000:.0f} ko".replace(".", ",")
    return f"{length / 1_000_000:.1f} Mo".replace(".", ",")


def index_page(layers: Mapping[str, LayerDef], files: Mapping[str, list[Download]]) -> str:
    """The French page listing the downloads of every public layer."""
    sections = []
    for layer_id, layer in layers.items():
        if layer.access == "restricted":
            continue
        items = (
            "".join(
                f'<li><a href="{html.escape(d.path)}" type="{html.escape(d.media_type)}">'
                f"{html.escape(d.title)}</a> ({_size(d.length)})</li>"
                for d in files.get(layer_id, [])
            )
            or "<li>Pas encore de fichier : lancez <code>geocommuns refresh</code>.</li>"
        )
        sections.append(
            f'<section aria-labelledby="l-{layer_id}"><h2 id="l-{layer_id}">{html.escape(layer.title.fr)}</h2>'
            f"<p>{html.escape(layer.description.fr)}</p><ul>{items}</ul></section>"
        )
    return (
        '<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Téléchargements – données ouvertes</title>"
        '<link rel="stylesheet" href="../assets/geocommuns.css"></head><body>'
        '<header><a href="../">Accueil</a></header><main><h1>Téléchargements</h1>'
        "<p>Chaque couche en GeoJSON, GeoPackage et CSV (WGS84), au schéma national quand il "
        "existe, avec sa description (<code>datapackage.json</code>). Le catalogue DCAT-AP est "
        'en <a href="../catalogue.jsonld">JSON-LD</a> et en <a href="../catalogue.ttl">Turtle</a>.</p>'
        + "".join(sections)
        + "</main></body></html>"
    )


def downloads(folder: Path | None, layers: Mapping[str, LayerDef]) -> Middleware:
    """Serve the export folder at ``/telechargements/`` and the DCAT-AP documents.

    Parameters
    ----------
    folder
        The export folder (None: no downloads; the paths go on down the pipeline).
    layers
        The layer definitions (their ``access`` decides what is served).

    Returns
    -------
    callable
        The middleware.
    """

    def middleware(app: WSGIApp) -> WSGIApp:
        if folder is None:
            return app
        tags = _Tags()
        public = {k: v for k, v in layers.items() if v.access != "restricted"}

        def answer(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if environ.get("REQUEST_METHOD", "GET") not in {"GET", "HEAD"}:
                return app(environ, start_response)
            if path in CATALOGUE_FILES:
                name, media_type = CATALOGUE_FILES[path]
                target = folder / name
                if not target.is_file():
                    return _not_found(start_response)
                return _send_file(target, media_type, environ, start_response, tags)
            if path == PREFIX.rstrip("/"):
                start_response("301 Moved Permanently", [("Location", PREFIX)])
                return []
            if not path.startswith(PREFIX):
                return app(environ, start_response)
            rest = path[len(PREFIX) :]
            if rest == "":
                page = index_page(layers, {k: downloads_of(folder, v) for k, v in public.items()})
                body = page.encode()
                start_response(
                    "200 OK",
                    [
                        ("Content-Type", "text/html; charset=utf-8"),
                        ("Content-Length", str(len(body))),
                    ],
                )
                return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]
            layer_id, _, name = rest.partition("/")
            layer = public.get(layer_id)
            if layer is None or not name:
                return _not_found(start_response)
            offered = {d.path: d for d in downloads_of(folder, layer)}
            download = offered.get(f"{layer_id}/{name}")
            if download is None:
                return _not_found(start_response)
            return _send_file(
                folder / download.path, download.media_type, environ, start_response, tags
            )

        return answer

    return middleware
