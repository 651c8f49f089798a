"""geocommuns.serve.middleware.replicas: a client that writes reads its own writes.

With PostgreSQL streaming replicas (``GEOCOMMUNS_DATABASE_REPLICA_URLS``), anonymous
reads go to the replicas, which replay the primary's writes a moment after they are
committed. A request carrying a token (``Authorization``: a Part 4 writer, a technician's
application, a partner) is answered from the primary for the whole request
(:func:`geocommuns.serve.provider_postgis.primary_reads`): whoever has just created or
changed a feature sees it at once, whatever page, filter or item it asks next.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from geocommuns.serve.provider_postgis import primary_reads
from geocommuns.serve.wsgi import StartResponse, WSGIApp


def own_writes_from_primary(app: WSGIApp) -> WSGIApp:
    """Answer the requests carrying a token from the primary database (see the module)."""

    def answer(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not environ.get("HTTP_AUTHORIZATION"):
            return app(environ, start_response)
        with primary_reads():
            # the body is produced inside the block, where the reads happen
            result = app(environ, start_response)
            try:
                return list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

    return answer
