"""geocommuns.serve.wsgi: the WSGI vocabulary the serving pipeline is written in.

A WSGI application is a callable ``app(environ, start_response) -> body``; a middleware is
a function that takes the application it wraps and returns a new one (see
:mod:`geocommuns.serve.app` for the order they are stacked in). This module holds those
types and the two helpers several middlewares need: reading a response header and running
an application to the end to look at (or rewrite) its whole answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
#: Wraps an application into another one.
Middleware = Callable[[WSGIApp], WSGIApp]
Headers = list[tuple[str, str]]


def header(headers: Headers, name: str) -> str | None:
    """The value of the first header called ``name`` (any case), or None."""
    name = name.lower()
    return next((v for k, v in headers if k.lower() == name), None)


def is_features_path(path: str) -> bool:
    """Whether a path is a collection's items or one of its items (``/collections/{id}/items...``)."""
    return "/items" in path and path.startswith("/collections/")


def collect(app: WSGIApp, environ: dict[str, Any]) -> tuple[str, Headers, bytes, Any]:
    """Run a WSGI application to the end and keep its answer.

    Parameters
    ----------
    app
        The WSGI application.
    environ
        The request.

    Returns
    -------
    tuple
        Status line, headers, the whole body and the ``exc_info`` it passed (or None).
    """
    captured: dict[str, Any] = {}

    def capture(status: str, headers: Headers, exc_info: Any = None) -> Any:
        captured.update(status=status, headers=list(headers), exc_info=exc_info)
        return lambda data: None

    result = app(environ, capture)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return captured["status"], captured["headers"], body, captured.get("exc_info")


class Handler(Protocol):
    """A WSGI application that answers only some requests (the fast path, the edit service)."""

    def handles(self, environ: dict[str, Any]) -> bool:
        """Whether it answers this request."""
        ...

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answer a request :meth:`handles` accepted."""
        ...


def delegate(
    handler: Handler | None,
    headers: Callable[[dict[str, Any], str, Headers], Headers],
) -> Middleware:
    """A middleware sending what ``handler`` handles to it, everything else down the pipeline.

    Parameters
    ----------
    handler
        The handler (None: the middleware changes nothing).
    headers
        ``headers(environ, status, headers)``: the headers of the handler's answer as sent.

    Returns
    -------
    callable
        The middleware.
    """

    def middleware(app: WSGIApp) -> WSGIApp:
        if handler is None:
            return app

        def answer(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            if not handler.handles(environ):
                return app(environ, start_response)

            def send(status: str, sent: Headers, exc_info: Any = None) -> Any:
                return start_response(status, headers(environ, status, sent), exc_info)

            return handler(environ, send)

        return answer

    return middleware
