"""Writes corrections in a loop through the real Part 4 edit service, until killed.

Run by tests/contrib/test_crashes.py as ``python crash_writer.py STORE LAYER FEATURE TOKEN``
(``STORE``: a GeoPackage path or a PostgreSQL URL). Each committed write prints the value
it wrote, so the test knows what may have been written when it kills the process with
SIGKILL in the middle of one.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

from geocommuns.contrib.edits import EditService
from geocommuns.contrib.layerstore import GeoPackageStore, LivingStore, PostgisStore
from geocommuns.definitions.layerdef import layers_from_dir

ROOT = Path(__file__).resolve().parents[2]


def wsgi_call(service: EditService, method: str, path: str, token: str, body: Any = None,
          etag: str | None = None) -> tuple[str, dict[str, str], bytes]:
    raw = b"" if body is None else json.dumps(body).encode()
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "",
        "HTTP_AUTHORIZATION": f"Bearer {token}", "CONTENT_TYPE": "application/geo+json",
        "CONTENT_LENGTH": str(len(raw)), "wsgi.input": io.BytesIO(raw), "wsgi.url_scheme": "http",
        "HTTP_HOST": "localhost", **({"HTTP_IF_MATCH": etag} if etag else {}),
    }
    got: dict[str, Any] = {}

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        got["status"], got["headers"] = status, dict(headers)

    body_out = b"".join(service(environ, start))
    return got["status"], got["headers"], body_out


def main() -> None:
    """Edit one feature's ``nom`` again and again, printing each committed value."""
    store_arg, layer, feature, token = sys.argv[1:5]
    store: LivingStore = PostgisStore(store_arg) if store_arg.startswith("postgresql") else GeoPackageStore(Path(store_arg))
    layers = layers_from_dir(ROOT / "layers")
    service = EditService(store, {layer: layers[layer]}, "epci:200023737")
    path = f"/collections/{layer}/items/{feature}"
    i = 0
    while True:
        status, headers, _ = wsgi_call(service, "GET", path, token)
        value = f"Nom corrigé {i}"
        status, _, body = wsgi_call(service, "PATCH", path, token, {"properties": {"nom": value}}, headers.get("ETag"))
        if not status.startswith("204"):
            print(f"refused {status} {body!r}", flush=True)
            sys.exit(3)
        print(value, flush=True)
        i += 1


if __name__ == "__main__":
    main()
