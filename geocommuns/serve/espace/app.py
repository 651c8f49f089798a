"""geocommuns.serve.espace.app: the routes of ``/espace/`` and the space ``geocommuns serve`` mounts.

:class:`EspaceApp` is a WSGI application answering the paths under ``/espace/``: it
finds the session of the request, sends a visitor who is not signed in to the sign-in
page, refuses a form without its CSRF token (403) and hands the request to the page's
function. :func:`espace_from_config` builds it from the edit service of the served
collections (the same living store, layers and territory).
"""

from __future__ import annotations

import datetime as dt
import logging
import mimetypes
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout
from werkzeug.exceptions import (
    Forbidden,
    HTTPException,
    MethodNotAllowed,
    NotFound,
    RequestEntityTooLarge,
)
from werkzeug.routing import Map, Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from geocommuns.contrib.edits import EditService
from geocommuns.contrib.portal.options import PortalOptions
from geocommuns.contrib.portal.sessions import SessionStore
from geocommuns.contrib.portal.throttle import SignInThrottle
from geocommuns.contrib.portal.uploads import Uploads
from geocommuns.serve.espace import account, corrections, deliveries, queue
from geocommuns.serve.espace.web import PREFIX, STATIC, Espace, Visit, page, signed_in
from geocommuns.serve.middleware.bodylimit import MAX_BODY
from geocommuns.serve.wsgi import StartResponse
from geocommuns.settings import Settings

logger = logging.getLogger(__name__)

_RULES = Map([
    Rule(f"{PREFIX}/", endpoint="home"),
    Rule(f"{PREFIX}/connexion", endpoint="signin"),
    Rule(f"{PREFIX}/deconnexion", endpoint="signout", methods=["POST"]),
    Rule(f"{PREFIX}/deposer", endpoint="deliver"),
    Rule(f"{PREFIX}/depots/<upload_id>", endpoint="report"),
    Rule(f"{PREFIX}/depots/<upload_id>/rejets.csv", endpoint="rejects"),
    Rule(f"{PREFIX}/depots/<upload_id>/carte.json", endpoint="map"),
    Rule(f"{PREFIX}/depots/<upload_id>/correspondance", endpoint="assistant"),
    Rule(f"{PREFIX}/depots/<upload_id>/apercu", endpoint="preview"),
    Rule(f"{PREFIX}/depots/<upload_id>/apercu.json", endpoint="preview_map"),
    Rule(f"{PREFIX}/depots/<upload_id>/envoyer", endpoint="submit", methods=["POST"]),
    Rule(f"{PREFIX}/couches/<layer_id>/lieux", endpoint="features"),
    Rule(f"{PREFIX}/couches/<layer_id>/lieux/<path:feature_id>", endpoint="feature"),
    Rule(f"{PREFIX}/horaires", endpoint="hours"),
    Rule(f"{PREFIX}/relecture", endpoint="queue"),
    Rule(f"{PREFIX}/relecture/<int:item_id>", endpoint="decide", methods=["POST"]),
    Rule(f"{PREFIX}/static/<name>", endpoint="static"),
])

Handler = Callable[[Espace, Request, Visit, dict[str, Any]], Response]


def _route(espace: Espace, request: Request, visit: Visit, endpoint: str, args: dict[str, Any]) -> Response:
    """The signed-in pages."""
    post = request.method == "POST"
    if endpoint == "home":
        return account.home(espace, request, visit)
    if endpoint == "signout":
        return account.signout(espace, request, visit)
    if endpoint == "deliver":
        return deliveries.deliver_post(espace, request, visit) if post else deliveries.deliver_form(espace, visit)
    if endpoint == "report":
        return deliveries.report_page(espace, request, visit, args["upload_id"])
    if endpoint == "rejects":
        return deliveries.rejects_download(espace, visit, args["upload_id"])
    if endpoint == "map":
        return deliveries.map_data(espace, visit, args["upload_id"])
    if endpoint == "assistant":
        if post:
            return deliveries.assistant_post(espace, request, visit, args["upload_id"])
        return deliveries.assistant_get(espace, visit, args["upload_id"])
    if endpoint == "preview":
        return deliveries.preview_page(espace, visit, args["upload_id"])
    if endpoint == "preview_map":
        return deliveries.preview_map(espace, visit, args["upload_id"])
    if endpoint == "submit":
        return deliveries.submit(espace, request, visit, args["upload_id"])
    if endpoint == "features":
        return corrections.feature_list(espace, request, visit, args["layer_id"])
    if endpoint == "feature":
        if post:
            return corrections.feature_post(espace, request, visit, args["layer_id"], args["feature_id"])
        return corrections.feature_get(espace, request, visit, args["layer_id"], args["feature_id"])
    if endpoint == "hours":
        return corrections.hours_helper(request)
    if endpoint == "queue":
        return queue.queue_page(espace, request, visit)
    if endpoint == "decide":
        return queue.decide(espace, request, visit, args["item_id"])
    raise NotFound


def _static(name: str) -> Response:
    path = STATIC / name
    if "/" in name or not path.is_file():
        raise NotFound
    mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = Response(path.read_bytes(), mimetype=mimetype)
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


class EspaceApp:
    """The WSGI application of ``/espace/``."""

    def __init__(self, espace: Espace) -> None:
        self.espace = espace

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answer one request under ``/espace/``."""
        request = Request(environ)
        try:
            response = self._answer(request)
        except HTTPException as e:
            response = self._error(request, e)
        except (psycopg.Error, sqlite3.Error, PoolTimeout):
            logger.exception("the living store failed under /espace/")
            response = page("erreur.html", title="Service momentanément indisponible", status=503,
                            message="Les données ne répondent pas : réessayez dans un instant. "
                                    "Rien n'a été modifié par cette demande.")
            response.headers["Retry-After"] = "5"
        return response(environ, start_response)

    def _answer(self, request: Request) -> Response:
        if request.path == PREFIX:
            return redirect(f"{PREFIX}/", code=301)
        adapter = _RULES.bind_to_environ(request.environ)
        endpoint, args = adapter.match()
        # the space is mounted before the service's 1 MB cap: only a delivery may be larger
        limit = MAX_BODY if endpoint != "deliver" else (
            self.espace.options.upload_max_bytes + deliveries.FORM_MARGIN
        )
        if (request.content_length or 0) > limit:
            raise RequestEntityTooLarge
        request.max_content_length = limit
        if endpoint == "static":
            return _static(str(args["name"]))
        if request.method not in {"GET", "HEAD", "POST"}:
            raise MethodNotAllowed(valid_methods=["GET", "POST"])
        if endpoint == "signin":
            visit = signed_in(self.espace, request)
            if visit is not None and request.method != "POST":
                return redirect(f"{PREFIX}/", code=303)
            if request.method == "POST":
                return account.signin_post(self.espace, request)
            return account.signin_form(request, message="Vous êtes déconnecté." if request.args.get("fin") else "")
        visit = signed_in(self.espace, request)
        if visit is None:
            if request.method == "POST":
                raise Forbidden("Votre session a pris fin : reconnectez-vous.")
            return redirect(f"{PREFIX}/connexion", code=303)
        return _route(self.espace, request, visit, str(endpoint), dict(args))

    def _error(self, request: Request, error: HTTPException) -> Response:
        status = error.code or 500
        titles = {403: "Action refusée", 404: "Page introuvable", 405: "Méthode non permise",
                  413: "Demande trop volumineuse"}
        ours = status in {403, 404} and error.description and "server" not in error.description
        message = error.description if ours else {
            404: "Cette page n'existe pas.", 405: "Cette action n'est pas permise ici.",
            413: "La demande est trop volumineuse.",
        }.get(status, "La demande n'a pas pu aboutir.")
        if status == 413 and request.path == f"{PREFIX}/deposer":
            return deliveries.too_large(self.espace, request, signed_in(self.espace, request))
        visit = signed_in(self.espace, request) if status != 403 else None
        return page("erreur.html", visit=visit, title=titles.get(status, "Erreur"), message=message, status=status)


def _review_required(settings: Settings) -> bool:
    """Whether the service file asks for deliveries to be reviewed (``espace.review``)."""
    from geocommuns.definitions.service import service_from_root
    from geocommuns.errors import ServiceDefinitionError

    try:
        return service_from_root(settings.root).espace.review
    except ServiceDefinitionError:  # no service file (a bare test project): no review
        return False


def espace_from_config(
    edits: EditService, settings: Settings | None = None, options: PortalOptions | None = None
) -> EspaceApp:
    """The space of the served collections' living store (what ``geocommuns serve`` mounts).

    Parameters
    ----------
    edits
        The edit service of the collections (its store, layers and territory).
    settings
        The project settings (default: from the environment).
    options
        The space's options (default: from the environment, ``GEOCOMMUNS_ESPACE_*``).

    Returns
    -------
    EspaceApp
        The WSGI application of ``/espace/``.
    """
    current = settings or Settings()
    options = options or PortalOptions()
    folder = current.path(options.folder)
    espace = Espace(
        store=edits.store, edits=edits, layers=edits.layers, settings=current, options=options,
        sessions=SessionStore(folder / "sessions.sqlite",
                              lifetime=dt.timedelta(minutes=options.session_minutes),
                              idle=dt.timedelta(minutes=options.idle_minutes)),
        throttle=SignInThrottle(folder / "sessions.sqlite"),
        uploads=Uploads(folder / "depots", max_bytes=options.upload_max_bytes),
        review=options.review or _review_required(current),
    )
    return EspaceApp(espace)
