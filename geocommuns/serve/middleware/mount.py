"""geocommuns.serve.middleware.mount: an application answering every path under a prefix.

:func:`mounted` hands the requests of ``/espace`` and below to the technician web space
before anything else sees them: the space has its own size limit for delivered files
(above the 1 MB cap of :mod:`.bodylimit`) and its own headers (no cache, no framing).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from geocommuns.serve.wsgi import Middleware, StartResponse, WSGIApp


def mounted(prefix: str, mount: WSGIApp | None, *, leave: tuple[str, ...] = ()) -> Middleware:
    """Send the requests of ``prefix`` and below to ``mount`` (None: nothing mounted).

    Parameters
    ----------
    prefix
        The path prefix, without a trailing slash (``/espace``).
    mount
        The application answering them.
    leave
        Paths under ``prefix`` (and below them) left to the rest of the pipeline.

    Returns
    -------
    callable
        The middleware.
    """

    def middleware(app: WSGIApp) -> WSGIApp:
        if mount is None:
            return app

        def answer(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            path = str(environ.get("PATH_INFO", ""))
            left = any(path == p or path.startswith(p + "/") for p in leave)
            if not left and (path == prefix or path.startswith(prefix + "/")):
                return mount(environ, start_response)
            return app(environ, start_response)

        return answer

    return middleware
