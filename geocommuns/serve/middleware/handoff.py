"""geocommuns.serve.middleware.handoff: the requests the edit service answers, handed over.

pygeoapi has no authentication, so OGC API – Features Part 4 writes (and the reads made
with a token) never reach it: whatever the edit service says it handles
(``handles(environ)``) it answers, with the CORS headers of the writes and, on a
successful answer, the ``Link`` header of a features response. The service is built by
:func:`geocommuns.serve.app.edit_service_from_config`; any object with ``handles`` and a
WSGI ``__call__`` (:class:`geocommuns.serve.wsgi.Handler`) fits.
"""

from __future__ import annotations

from typing import Any

from geocommuns.serve.middleware.cors import CORS_EDITS
from geocommuns.serve.middleware.features import link_header
from geocommuns.serve.wsgi import Handler, Headers, Middleware, delegate, header


def _edit_headers(environ: dict[str, Any], status: str, headers: Headers) -> Headers:
    if status.startswith("200"):
        headers = [*headers, ("Link", link_header(environ, header(headers, "content-type") or ""))]
    return [*headers, *CORS_EDITS]


def hand_off(edits: Handler | None) -> Middleware:
    """Send the requests ``edits`` handles to it, the others on down the pipeline.

    Parameters
    ----------
    edits
        The edit service (None: a read-only service, nothing is handed over).

    Returns
    -------
    callable
        The middleware.
    """
    return delegate(edits, _edit_headers)
