"""geocommuns.serve.middleware.reports: « Signaler une erreur », the citizens' report form.

Each popup of the citizen map links to ``/espace/signaler?collection=<layer>&id=<feature
id>``: a short French page naming the place, asking what is wrong and, optionally, an
e-mail address to answer to. ``POST /espace/signaler`` (no account) puts the report in
the review queue of the feature's commune (:func:`geocommuns.contrib.reviews.report`);
nothing of it is ever published.

An anonymous form still needs guarding:

- **forged posts** (another site making a visitor's browser post): the form carries a
  signed token (HMAC of the layer, the feature and the time under a key derived from the
  store's secret; valid :data:`TOKEN_TTL_S`), and the ``Origin`` (or, failing it, the
  ``Referer``) must be this server's own or the service's public URL;
- **floods**: at most :data:`REPORTS_PER_HOUR` reports per client address and hour
  (behind a trusted reverse proxy, the address it forwards: :func:`client_address`)
  (:class:`geocommuns.contrib.ratelimit.RateLimit`, shared by the workers): then ``429``
  with a French message and ``Retry-After``;
- **size**: a body over :data:`MAX_FORM_BYTES` is a ``413``; the message is bounded;
- **hostile values**: every value (the feature's name, the query) is escaped by the
  template engine; the page forbids scripts (``Content-Security-Policy``) and is never
  cached or framed.

Only the public collections can be reported on (a restricted one answers as an unknown
collection). The handler is stacked by :func:`geocommuns.serve.app.dispatcher` before
the technician space, which therefore never sees ``/espace/signaler``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import psycopg
from psycopg_pool import PoolTimeout

from geocommuns.contrib import reviews
from geocommuns.contrib.layerstore import LivingStore, table_of
from geocommuns.contrib.ratelimit import RateLimit, address_key
from geocommuns.contrib.reviews import ReviewError
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.ingest import journal
from geocommuns.serve.wsgi import Handler, Headers, Middleware, StartResponse, delegate
from geocommuns.settings import SERVICE_FILE

if TYPE_CHECKING:
    from geocommuns.contrib.edits import EditService
    from geocommuns.serve.config import ServiceConfig

logger = logging.getLogger(__name__)

#: The form's path (the citizen map's popups link to it: keep it).
REPORT_PATH = "/espace/signaler"
#: Largest form body accepted, in bytes (a message of 2,000 characters, encoded, is less).
MAX_FORM_BYTES = 32_768
#: How long a form stays valid, in seconds.
TOKEN_TTL_S = 2 * 3600
#: Reports accepted per client address in an hour.
REPORTS_PER_HOUR = 5
#: Addresses of reverse proxies whose ``X-Forwarded-For`` names the client (comma-separated).
TRUSTED_PROXIES_ENV = "GEOCOMMUNS_TRUSTED_PROXIES"
#: The file counting reports per address, in the technician space's folder.
THROTTLE_FILE = "signalements.sqlite"
TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "signaler"
#: No script at all, styles from the page only, posted to this server only, never framed.
SECURITY_HEADERS = [
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
]
_REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    503: "Service Unavailable",
}


class _Refused(Exception):
    """A request answered with an error page (``text``: what to do, in French)."""

    def __init__(
        self, status: int, title: str, text: str, *, headers: Headers | None = None
    ) -> None:
        super().__init__(text)
        self.status, self.title, self.text = status, title, text
        self.headers = headers or []


class ReportForm:
    """The report form and its submission (a :class:`geocommuns.serve.wsgi.Handler`).

    Parameters
    ----------
    store
        The living store (the edit service's).
    layers
        The public layers citizens may report on, by collection id.
    throttle
        The per-address limit of reports.
    public_url
        The service's public base URL (``urls.public`` of ``geocommuns.yml``): posts from
        its origin are accepted besides the request's own host.
    """

    def __init__(
        self,
        store: LivingStore,
        layers: dict[str, LayerDef],
        *,
        throttle: RateLimit,
        public_url: str | None = None,
    ) -> None:
        self.store = store
        self.layers = layers
        self.throttle = throttle
        self.public_origin = _origin(public_url) if public_url else None
        self._key: bytes | None = None
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )

    def handles(self, environ: dict[str, Any]) -> bool:
        """Whether a request is for the form (``/espace/signaler``)."""
        return str(environ.get("PATH_INFO", "")).rstrip("/") == REPORT_PATH

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Show the form (GET), or take a report (POST)."""
        method = str(environ.get("REQUEST_METHOD", "GET"))
        headers: Headers = []
        try:
            if method in {"GET", "HEAD"}:
                status, body = self._form(environ)
            elif method == "POST":
                status, body = self._post(environ)
            else:
                raise _Refused(
                    405,
                    "Méthode non permise",
                    "Ouvrez la page depuis la carte.",
                    headers=[("Allow", "GET, HEAD, POST")],
                )
        except _Refused as e:
            status, headers = e.status, e.headers
            body = self._page("erreur.html", status=e.status, title=e.title, text=e.text)
        except (PoolTimeout, sqlite3.OperationalError, psycopg.OperationalError):
            logger.exception("the living store did not answer in time")
            status, headers = 503, [("Retry-After", "30")]
            body = self._page(
                "erreur.html",
                status=503,
                title="Service indisponible",
                text="Le service est momentanément indisponible. Réessayez dans quelques minutes.",
            )
        data = body.encode("utf-8")
        start_response(
            f"{status} {_REASONS[status]}",
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(data))),
                *SECURITY_HEADERS,
                *headers,
            ],
        )
        return [] if method == "HEAD" else [data]

    # -- the form ----------------------------------------------------------------------

    def _form(self, environ: dict[str, Any]) -> tuple[int, str]:
        query = urllib.parse.parse_qs(str(environ.get("QUERY_STRING", "")), max_num_fields=10)
        collection = (query.get("collection") or [""])[0]
        feature_id = (query.get("id") or [""])[0]
        doc = self._feature(collection, feature_id)
        return 200, self._form_page(collection, feature_id, doc)

    def _feature(self, collection: str, feature_id: str) -> dict[str, Any]:
        layer = self.layers.get(collection)
        if layer is None or not 0 < len(feature_id) <= 200:
            raise _Refused(
                404,
                "Objet introuvable",
                "Ce lien ne désigne aucun lieu de la carte. Revenez à la carte et "
                "ouvrez la fiche du lieu concerné.",
            )
        with self.store.reading() as db:
            stored = table_of(db).get(layer, feature_id)
        if stored is None:
            raise _Refused(
                404,
                "Objet introuvable",
                "Ce lieu n'est plus sur la carte. Revenez à la carte pour voir les lieux à jour.",
            )
        return stored.doc

    def _form_page(
        self,
        collection: str,
        feature_id: str,
        doc: dict[str, Any],
        *,
        message: str = "",
        email: str = "",
        errors: dict[str, str] | None = None,
    ) -> str:
        layer = self.layers[collection]
        return self._page(
            "form.html",
            layer=layer.title,
            name=str(doc.get("nom") or ""),
            commune=str(doc.get("commune") or ""),
            collection=collection,
            feature_id=feature_id,
            token=self._token(collection, feature_id, int(time.time())),
            message=message,
            email=email,
            errors=errors or {},
            max_message=reviews.MAX_MESSAGE,
            max_email=reviews.MAX_EMAIL,
        )

    # -- a report ----------------------------------------------------------------------

    def _post(self, environ: dict[str, Any]) -> tuple[int, str]:
        self._check_origin(environ)
        form = _form_body(environ)
        collection, feature_id = form.get("collection", ""), form.get("id", "")
        if not self._token_valid(form.get("jeton", ""), collection, feature_id):
            raise _Refused(
                403,
                "Formulaire expiré",
                "Ce formulaire a expiré ou ne vient pas de ce site. Revenez à la "
                "carte et ouvrez de nouveau « Signaler une erreur ».",
            )
        doc = self._feature(collection, feature_id)
        message, email = form.get("message", ""), form.get("email", "")
        errors = {}
        if not reviews.clean_text(message):
            errors["message"] = "Dites en quelques mots ce qui ne va pas."
        elif len(message) > reviews.MAX_MESSAGE:
            errors["message"] = (
                f"Le message est trop long : {reviews.MAX_MESSAGE} caractères au plus."
            )
        try:
            reviews.clean_email(email)
        except ReviewError:
            errors["email"] = (
                "Cette adresse électronique n'est pas valide (exemple : "
                "prenom.nom@exemple.fr). Vous pouvez aussi la laisser vide."
            )
        if errors:
            page = self._form_page(
                collection,
                feature_id,
                doc,
                message=message[: reviews.MAX_MESSAGE],
                email=email[: reviews.MAX_EMAIL],
                errors=errors,
            )
            return 400, page
        wait = self.throttle.take(address_key(client_address(environ), salt="signaler"))
        if wait:
            minutes = max(1, (wait + 59) // 60)
            raise _Refused(
                429,
                "Trop de signalements",
                f"Vous avez envoyé beaucoup de signalements en peu de temps. Merci ! "
                f"Réessayez dans {minutes} minute{'s' if minutes > 1 else ''}.",
                headers=[("Retry-After", str(wait))],
            )
        with self.store.writing() as db:
            reviews.report(
                db,
                self.layers,
                layer=collection,
                feature_id=feature_id,
                message=message,
                reporter_email=email,
            )
        return 200, self._page(
            "merci.html", name=str(doc.get("nom") or ""), commune=str(doc.get("commune") or "")
        )

    def _check_origin(self, environ: dict[str, Any]) -> None:
        sent = environ.get("HTTP_ORIGIN") or ""
        if not sent or sent == "null":
            sent = _origin(str(environ.get("HTTP_REFERER") or ""))
        host = str(environ.get("HTTP_HOST") or "")
        own = f"{environ.get('wsgi.url_scheme', 'http')}://{host}".lower() if host else None
        if not sent or sent.lower() not in {own, self.public_origin}:
            raise _Refused(
                403,
                "Envoi refusé",
                "Ce formulaire ne peut être envoyé que depuis la page « Signaler une "
                "erreur » de ce site.",
            )

    # -- the signed form token ---------------------------------------------------------

    def _secret(self) -> bytes:
        if self._key is None:
            with self.store.reading() as db:
                base = journal.etag_secret(db)
            self._key = hmac.new(base, b"geocommuns/signaler", hashlib.sha256).digest()
        return self._key

    def _token(self, collection: str, feature_id: str, issued: int) -> str:
        text = f"{issued}\x1f{collection}\x1f{feature_id}".encode()
        return f"{issued}.{hmac.new(self._secret(), text, hashlib.sha256).hexdigest()}"

    def _token_valid(self, token: str, collection: str, feature_id: str) -> bool:
        issued_text, _, _mac = token.partition(".")
        if not issued_text.isdigit() or len(issued_text) > 12:
            return False
        issued = int(issued_text)
        if not 0 <= time.time() - issued <= TOKEN_TTL_S:
            return False
        return hmac.compare_digest(self._token(collection, feature_id, issued), token)

    def _page(self, template: str, /, **values: Any) -> str:
        return self.templates.get_template(template).render(**values)


def trusted_proxies() -> frozenset[str]:
    """The addresses whose ``X-Forwarded-For`` is believed: ``GEOCOMMUNS_TRUSTED_PROXIES``
    (comma-separated), by default the machine itself (a reverse proxy beside the server)."""
    raw = os.environ.get(TRUSTED_PROXIES_ENV, "127.0.0.1,::1")
    return frozenset(a.strip() for a in raw.split(",") if a.strip())


def client_address(environ: dict[str, Any], trusted: frozenset[str] | None = None) -> str:
    """The client's address: ``REMOTE_ADDR``, or behind a trusted reverse proxy the last
    address of ``X-Forwarded-For`` that is not a trusted proxy (the one the proxy saw;
    what a client writes in the header itself comes before it and is not believed).

    Parameters
    ----------
    environ
        The request.
    trusted
        The trusted proxies (default: :func:`trusted_proxies`).

    Returns
    -------
    str
        The address the rate limit counts.
    """
    trusted = trusted_proxies() if trusted is None else trusted
    remote = str(environ.get("REMOTE_ADDR") or "")
    forwarded = str(environ.get("HTTP_X_FORWARDED_FOR") or "")
    if remote not in trusted or not forwarded:
        return remote
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if hop not in trusted:
            return hop
    return remote


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-case ('' when it has none)."""
    parts = urllib.parse.urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def _form_body(environ: dict[str, Any]) -> dict[str, str]:
    """The posted form's fields (first value of each), the body bounded."""
    kind = str(environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise _Refused(
            415, "Envoi refusé", "Envoyez le formulaire depuis la page « Signaler une erreur »."
        )
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if not 0 <= length <= MAX_FORM_BYTES:
        raise _Refused(
            413,
            "Message trop long",
            f"Le signalement est trop long. Raccourcissez le message "
            f"({reviews.MAX_MESSAGE} caractères au plus).",
        )
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        fields = urllib.parse.parse_qs(
            raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=10
        )
    except (UnicodeDecodeError, ValueError):
        raise _Refused(
            400, "Envoi refusé", "Le formulaire envoyé est illisible. Rechargez la page."
        ) from None
    return {k: v[0] for k, v in fields.items() if v}


def report_form_for(config: ServiceConfig, edits: EditService | None) -> ReportForm | None:
    """The report form of a configuration: its public collections, on the edit service's store.

    Parameters
    ----------
    config
        The service configuration (its public collections may be reported on).
    edits
        The edit service (None: no living store, hence no reports).

    Returns
    -------
    ReportForm or None
        The form, counting reports per address in the technician space's folder.
    """
    if edits is None:
        return None
    from geocommuns.contrib.portal.options import PortalOptions
    from geocommuns.definitions.service import service_from_root
    from geocommuns.serve.provider import project_path, settings

    layers = {cid: layer for cid, layer in edits.layers.items() if cid in config.collections}
    root = settings().root
    public = service_from_root(root).urls.public if (root / SERVICE_FILE).is_file() else None
    folder = project_path(PortalOptions().folder)
    throttle = RateLimit(folder / THROTTLE_FILE, limit=REPORTS_PER_HOUR, window_s=3600)
    return ReportForm(edits.store, layers, throttle=throttle, public_url=public)


def _plain_headers(environ: dict[str, Any], status: str, headers: Headers) -> Headers:
    return headers


def citizen_reports(form: Handler | None) -> Middleware:
    """Send ``/espace/signaler`` to the report form, everything else down the pipeline.

    Parameters
    ----------
    form
        The form (None: no living store, no reports).

    Returns
    -------
    callable
        The middleware.
    """
    return delegate(form, _plain_headers)
