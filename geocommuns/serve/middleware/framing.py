"""geocommuns.serve.middleware.framing: which websites may show the citizen map in an ``<iframe>``.

Every answer under ``/map/`` carries ``Content-Security-Policy: frame-ancestors 'self'``
followed by the origins of the service file's ``embedding.frame_ancestors`` (the
communes' websites): a browser shows the map in a frame only on those pages, and refuses
it anywhere else (no clickjacking of the council's map by a third-party page). The other
routes are left as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from geocommuns.definitions.service import SERVICE_FILE, service_from_file
from geocommuns.serve.wsgi import Middleware, StartResponse, WSGIApp

#: Where the map is served (``geocommuns.serve.middleware.static.PREFIX``).
MAP_PREFIX = "/map/"


def project_frame_ancestors() -> list[str]:
    """The origins the project's service file lets embed the map (none without a service file).

    Raises
    ------
    ServiceDefinitionError
        The service file is invalid (its message names the key to fix).
    """
    from geocommuns.serve.provider import settings

    path = settings().root / SERVICE_FILE
    if not path.is_file():
        return []
    return list(service_from_file(path).embedding.frame_ancestors)


def frame_ancestors_policy(origins: Sequence[str]) -> str:
    """The ``Content-Security-Policy`` value allowing ``'self'`` and ``origins`` to frame a page.

    ``'none'`` among the origins forbids every frame, the map's own site's included.

    Examples
    --------
    >>> frame_ancestors_policy(["https://www.douelle.fr"])
    "frame-ancestors 'self' https://www.douelle.fr"
    """
    if "'none'" in origins:
        return "frame-ancestors 'none'"
    allowed = ["'self'", *(o for o in dict.fromkeys(origins) if o != "'self'")]
    return "frame-ancestors " + " ".join(allowed)


def framed_by(origins: Sequence[str], prefix: str = MAP_PREFIX) -> Middleware:
    """Add the frame-ancestors policy of ``origins`` to every answer under ``prefix``.

    Parameters
    ----------
    origins
        Origins (scheme and host) allowed to embed the map, as the service file's
        ``embedding.frame_ancestors`` validates them.
    prefix
        The path of the pages the policy covers (``/map/``; ``/map`` too).

    Returns
    -------
    callable
        The middleware.
    """
    policy = frame_ancestors_policy(origins)

    def middleware(app: WSGIApp) -> WSGIApp:
        def answer(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path != prefix.rstrip("/") and not path.startswith(prefix):
                return app(environ, start_response)

            def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                kept = [(k, v) for k, v in headers if k.lower() != "content-security-policy"]
                return start_response(
                    status, [*kept, ("Content-Security-Policy", policy)], exc_info
                )

            return app(environ, start)

        return answer

    return middleware
