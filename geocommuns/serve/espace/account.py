"""geocommuns.serve.espace.account: sign-in, sign-out and the home page of the space."""

from __future__ import annotations

from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from geocommuns.contrib import reviews
from geocommuns.contrib.portal.signin import SignInRefused, sign_in
from geocommuns.serve.espace.web import (
    PREFIX,
    SIGNIN_COOKIE,
    Espace,
    Visit,
    check_csrf,
    clear_session_cookie,
    is_https,
    page,
    set_session_cookie,
    signin_token,
)


def signin_form(request: Request, *, message: str = "", status: int = 200, name: str = "") -> Response:
    """The sign-in page, with its CSRF token (kept in a cookie until sign-in)."""
    token = signin_token(request)
    response = page("connexion.html", title="Connexion", csrf=token, message=message,
                    status=status, name=name)
    response.set_cookie(SIGNIN_COOKIE, token, path=f"{PREFIX}/", httponly=True,
                        samesite="Strict", secure=is_https(request))
    return response


def signin_post(espace: Espace, request: Request) -> Response:
    """Check the name and token; open a session, or say why not (slowed down)."""
    check_csrf(request, request.cookies.get(SIGNIN_COOKIE, ""))
    name = request.form.get("nom", "")
    try:
        signed = sign_in(espace.store, espace.throttle, name=name,
                         token=request.form.get("jeton", ""), address=request.remote_addr or "?")
    except SignInRefused as e:
        status = 429 if e.wait and "Trop" in str(e) else 401
        response = signin_form(request, message=str(e), status=status, name=name)
        if e.wait:
            response.headers["Retry-After"] = str(e.wait)
        return response
    session = espace.sessions.open(signed.principal.name)
    response = redirect(f"{PREFIX}/", code=303)
    set_session_cookie(response, request, session.secret, session.expires_at)
    response.delete_cookie(SIGNIN_COOKIE, path=f"{PREFIX}/")
    return response


def signout(espace: Espace, request: Request, visit: Visit) -> Response:
    """End the session (its cookie opens nothing afterwards)."""
    check_csrf(request, visit.session.csrf)
    espace.sessions.close(visit.secret)
    response = redirect(f"{PREFIX}/connexion?fin=1", code=303)
    clear_session_cookie(response, request)
    return response


def home(espace: Espace, request: Request, visit: Visit) -> Response:
    """The user's communes and layers, their deliveries, and the queue they see."""
    principal = visit.principal
    with espace.store.reading() as db:
        items = reviews.list_items(db, principal, limit=100)
    waiting = [i for i in items if i.state == "proposed" and reviews.may_review(principal, i)]
    mine = [i for i in items if i.kind == "submission" and i.submitted_by == principal.name]
    return page(
        "accueil.html", visit=visit, title="Accueil",
        communes=espace.communes_of(principal), layers=espace.layers_of(principal),
        uploads=espace.uploads.of_user(principal.name)[:20], waiting=waiting, mine=mine,
        review=espace.review,
    )
