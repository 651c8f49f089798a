"""A small WSGI application for the middleware tests: what lies further down the pipeline.

It answers ``200`` with a JSON echo of the request it received (method, path, query) and
the content type a test asks for (``?ctype=``), so a test sees what a middleware changed on
the way in and on the way out.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterable
from typing import Any

from geocommuns.serve.wsgi import StartResponse


def downstream(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Echo the request as JSON."""
    query = environ.get("QUERY_STRING", "")
    ctype = urllib.parse.parse_qs(query).get("ctype", ["application/json"])[0]
    body = json.dumps({
        "method": environ.get("REQUEST_METHOD"), "path": environ.get("PATH_INFO"), "query": query,
    }).encode("utf-8")
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body))),
                              ("Access-Control-Allow-Origin", "https://pygeoapi.example")])
    return [body]
