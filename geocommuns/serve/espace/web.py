"""geocommuns.serve.espace.web: what every page of the space shares.

:class:`Espace` holds the space's collaborators (living store, edit service, layers,
sessions, deliveries, templates). :func:`page` renders a template in the common layout;
:func:`signed_in` finds the session of a request's cookie; :func:`check_csrf` refuses a
form without the token of its session (or, before sign-in, of its cookie). The session
cookie is ``HttpOnly``, ``SameSite=Strict``, ``Secure`` when the request came over
HTTPS, and scoped to ``/espace/``.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.exceptions import Forbidden
from werkzeug.wrappers import Request, Response

from geocommuns.contrib.auth import Principal, find_user
from geocommuns.contrib.edits import EditService
from geocommuns.contrib.layerstore import LivingStore
from geocommuns.contrib.portal.check import CheckCache
from geocommuns.contrib.portal.options import PortalOptions
from geocommuns.contrib.portal.sessions import Session, SessionStore
from geocommuns.contrib.portal.throttle import SignInThrottle
from geocommuns.contrib.portal.uploads import Uploads
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.territory import Territory
from geocommuns.settings import Settings

PREFIX = "/espace"
SESSION_COOKIE = "geocommuns_espace"
#: The cookie holding the sign-in form's CSRF token (no session yet).
SIGNIN_COOKIE = "geocommuns_espace_csrf"
TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
#: Headers of every page: never cached (they hold a user's data), never framed, no
#: script but the space's own.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
}


@functools.cache
def templates() -> Environment:
    """The space's Jinja2 environment (autoescaped)."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["json_attr"] = lambda value: json.dumps(value, ensure_ascii=False)
    return env


@dataclass
class Espace:
    """Everything the space's pages use."""

    store: LivingStore
    edits: EditService
    layers: dict[str, LayerDef]
    settings: Settings
    options: PortalOptions
    sessions: SessionStore
    throttle: SignInThrottle
    uploads: Uploads
    review: bool = False
    #: The last checks made by this process (a report, its map and CSV share one).
    checks: CheckCache = field(default_factory=CheckCache)

    @property
    def territory(self) -> Territory:
        """The project's territory (loaded once per process, shared with the edit service)."""
        return self.edits.territory

    @property
    def sources_dir(self) -> Path:
        """Where the communes' source declarations are (the settings' / service file's)."""
        return self.settings.path(self.settings.sources_dir)

    def communes_of(self, principal: Principal) -> list[tuple[str, str]]:
        """The communes a user works on: (INSEE code, name), by name."""
        frame = self.territory.communes
        rows = [(str(c), str(n), str(e)) for c, n, e in zip(frame["code_insee"], frame["commune"], frame["epci"], strict=True)]
        mine = [(c, n) for c, n, e in rows if principal.owns(c, e)]
        return sorted(mine, key=lambda cn: cn[1])

    def layers_of(self, principal: Principal) -> list[LayerDef]:
        """The layers a user may change."""
        return [layer for layer in self.layers.values() if principal.may_edit_layer(layer.id)]

    def commune_name(self, insee: str) -> str:
        """A commune's name."""
        frame = self.territory.communes
        found = frame.loc[frame["code_insee"] == insee, "commune"]
        return str(found.iloc[0]) if len(found) else insee

    def commune_outline(self, insee: str) -> dict[str, Any] | None:
        """A commune's outline as GeoJSON (for the maps)."""
        frame = self.territory.communes
        found = frame.loc[frame["code_insee"] == insee]
        if not len(found):
            return None
        geometry = found.geometry.iloc[0].simplify(0.0005)
        return {"type": "Feature", "properties": {"nom": self.commune_name(insee)},
                "geometry": json.loads(json.dumps(geometry.__geo_interface__))}


@dataclass(frozen=True)
class Visit:
    """A signed-in request: the user and their session."""

    principal: Principal
    session: Session
    secret: str


def is_https(request: Request) -> bool:
    """Whether the browser reached the space over HTTPS (directly or through the proxy)."""
    return request.scheme == "https" or request.headers.get("X-Forwarded-Proto", "") == "https"


def set_session_cookie(response: Response, request: Request, secret: str, expires: dt.datetime) -> None:
    """Give the browser its session id (HttpOnly, SameSite=Strict, Secure over HTTPS)."""
    response.set_cookie(
        SESSION_COOKIE, secret, expires=expires, path=f"{PREFIX}/", httponly=True,
        samesite="Strict", secure=is_https(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    """Make the browser forget its session id."""
    response.delete_cookie(SESSION_COOKIE, path=f"{PREFIX}/", httponly=True,
                           samesite="Strict", secure=is_https(request))


def signed_in(espace: Espace, request: Request) -> Visit | None:
    """The user of a request's session cookie, or None (no cookie, ended, user revoked)."""
    secret = request.cookies.get(SESSION_COOKIE, "")
    session = espace.sessions.find(secret) if secret else None
    if session is None:
        return None
    with espace.store.reading() as db:
        principal = find_user(db, session.user)
    if principal is None:  # revoked since: the session ends with the token
        espace.sessions.close(secret)
        return None
    return Visit(principal=principal, session=session, secret=secret)


def signin_token(request: Request) -> str:
    """The sign-in form's CSRF token: the cookie's, or a new one."""
    return request.cookies.get(SIGNIN_COOKIE) or secrets.token_urlsafe(32)


def check_csrf(request: Request, expected: str) -> None:
    """Refuse (403) a form whose ``csrf`` field is not the expected token."""
    given = request.form.get("csrf", "") or request.headers.get("X-CSRF-Token", "")
    if not expected or not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Forbidden(
            "Le formulaire a expiré ou ne vient pas de l'espace technicien : rechargez la page "
            "et recommencez."
        )


def page(
    template: str, *, visit: Visit | None = None, status: int = 200, title: str = "",
    **context: Any,
) -> Response:
    """A page of the space in its layout."""
    html = templates().get_template(template).render(
        visit=visit, user=visit.principal if visit else None,
        csrf=visit.session.csrf if visit else context.pop("csrf", ""),
        title=title, prefix=PREFIX, **context,
    )
    response = Response(html, status=status, mimetype="text/html")
    response.headers.update(PAGE_HEADERS)
    return response


def json_answer(data: Any, status: int = 200) -> Response:
    """A JSON answer (for the pages' scripts)."""
    response = Response(json.dumps(data, ensure_ascii=False), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def wants_json(request: Request) -> bool:
    """Whether the page's script sent the request (it asks for JSON)."""
    return request.headers.get("X-Requested-With") == "XMLHttpRequest"
