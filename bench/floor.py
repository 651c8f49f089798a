"""bench.floor: the HTTP floor, what serving costs when data access costs nothing.

The same stack as ``geocommuns serve`` (gunicorn, same workers, geocommuns' WSGI
dispatcher with its CORS handling) answering every ``GET /floor/<case>`` with a response
captured beforehand from geocommuns for that case: same body bytes, same content type and
encoding. Run it with ``gunicorn 'bench.floor:create_app()'`` and ``BENCH_FLOOR_DIR``
pointing at a folder holding ``<case>.body`` and ``<case>.json`` (its headers).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from geocommuns.serve.app import dispatcher
from geocommuns.serve.wsgi import StartResponse, WSGIApp

FLOOR_ENV = "BENCH_FLOOR_DIR"
PREFIX = "/floor/"


def save_response(folder: Path, case: str, body: bytes, headers: dict[str, str]) -> None:
    """Store one captured response for the floor server.

    Parameters
    ----------
    folder
        The floor's folder.
    case
        Case name (the path is ``/floor/<case>``).
    body
        The raw body bytes, as sent on the wire (compressed when it was).
    headers
        ``Content-Type`` and, when present, ``Content-Encoding``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{case}.body").write_bytes(body)
    (folder / f"{case}.json").write_text(json.dumps(headers), encoding="utf-8")


def load_responses(folder: Path) -> dict[str, tuple[bytes, list[tuple[str, str]]]]:
    """Every stored response of ``folder``: path to (body, headers)."""
    out = {}
    for body in sorted(folder.glob("*.body")):
        headers = json.loads(body.with_suffix(".json").read_text(encoding="utf-8"))
        pairs = [(k, v) for k, v in headers.items()]
        pairs.append(("Content-Length", str(body.stat().st_size)))
        out[PREFIX + body.stem] = (body.read_bytes(), pairs)
    return out


def floor_app(responses: dict[str, tuple[bytes, list[tuple[str, str]]]]) -> WSGIApp:
    """A WSGI app answering each stored path with its stored response, 404 otherwise."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        found = responses.get(environ.get("PATH_INFO", ""))
        if found is None:
            start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "0")])
            return []
        body, headers = found
        start_response("200 OK", headers)
        return [body]

    return app


def create_app() -> WSGIApp:
    """The WSGI application gunicorn runs (``bench.floor:create_app()``).

    Raises
    ------
    RuntimeError
        When ``BENCH_FLOOR_DIR`` is not set or holds no response.
    """
    folder = os.environ.get(FLOOR_ENV)
    responses = load_responses(Path(folder)) if folder else {}
    if not responses:
        msg = f"{FLOOR_ENV} must name a folder of captured responses (<case>.body + <case>.json)"
        raise RuntimeError(msg)
    # the landing page answers too, so the harness can wait for the server like any other
    responses["/"] = next(iter(responses.values()))
    return dispatcher(floor_app(responses), None)
