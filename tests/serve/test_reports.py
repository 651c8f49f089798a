"""« Signaler une erreur »: the citizens' report form, at the HTTP level and in a real browser.

The fast tests call the WSGI handler (:class:`ReportForm`) on a real GeoPackage living
store; the slow one starts ``geocommuns serve`` and Debian's Chromium: a citizen reports
an error from the form, it reaches Cahors's queue, the EPCI marks it done from the command
line, and no output (API in every format, map, exports, dashboard) ever holds the report.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    HOSTILE_NAMES,
    OfflinePage,
    axe_violations,
    require_browser,
)
from markupsafe import escape
from ogcserver import ROOT, RunningServer, served_sample
from tinygpkg import feature, write_tiny_gpkg

from geocommuns.contrib import reviews
from geocommuns.contrib.auth import Principal
from geocommuns.contrib.layerstore import GeoPackageStore
from geocommuns.contrib.ratelimit import RateLimit, address_key
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.serve.middleware.reports import (
    MAX_FORM_BYTES,
    REPORTS_PER_HOUR,
    ReportForm,
    client_address,
)

CAHORS, PRADINES, EPCI = "46042", "46224", "200023737"
ADMIN = Principal("grand-cahors", "admin")
HOST = "geo.example.org"
ORIGIN = f"http://{HOST}"
MESSAGE = "Fermé le lundi depuis septembre (test)"
EMAIL = "habitante.secrete@example.org"


# -- the handler on a GeoPackage ---------------------------------------------------------


@pytest.fixture
def form(tmp_path: Path, layers: dict[str, LayerDef]) -> ReportForm:
    records = {
        "equipements": [
            feature(
                "equipements",
                i,
                1.44 + 0.001 * i,
                44.45,
                categorie="mairie",
                code_insee=CAHORS,
                epci=EPCI,
                commune="Cahors",
                nom=name,
            )
            for i, name in enumerate(HOSTILE_NAMES)
        ]
        + [
            feature(
                "equipements",
                9,
                1.41,
                44.46,
                categorie="mairie",
                code_insee=PRADINES,
                epci=EPCI,
                commune="Pradines",
                nom="Mairie de Pradines (échantillon)",
            )
        ],
    }
    gpkg = tmp_path / "living.gpkg"
    write_tiny_gpkg(gpkg, layers, records)
    public = {k: v for k, v in layers.items() if k != "telesante"}
    throttle = RateLimit(
        tmp_path / "espace" / "signalements.sqlite", limit=REPORTS_PER_HOUR, window_s=3600
    )
    return ReportForm(
        GeoPackageStore(gpkg), public, throttle=throttle, public_url="https://carte.example.fr"
    )


def call(
    app: ReportForm,
    method: str,
    query: dict[str, str] | None = None,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    address: str = "192.0.2.10",
) -> tuple[int, dict[str, str], str]:
    """One request through the WSGI handler, as a server would make it."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": "/espace/signaler",
        "QUERY_STRING": urllib.parse.urlencode(query or {}),
        "HTTP_HOST": HOST,
        "wsgi.url_scheme": "http",
        "REMOTE_ADDR": address,
        "wsgi.input": io.BytesIO(body or b""),
    }
    if body is not None:
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key in {"CONTENT_TYPE", "CONTENT_LENGTH"} else f"HTTP_{key}"] = value
    assert app.handles(environ)
    got: dict[str, Any] = {}

    def start_response(status: str, sent: list[tuple[str, str]], exc_info: Any = None) -> Any:
        got.update(status=int(status.split()[0]), headers=dict(sent))

    text = b"".join(app(environ, start_response)).decode("utf-8")
    return got["status"], got["headers"], text


def form_fields(page: str) -> dict[str, str]:
    """The hidden fields of the form page, unescaped."""
    import html

    return {
        m[0]: html.unescape(m[1])
        for m in re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', page)
    }


def post(
    app: ReportForm, fid: str, *, message: str = MESSAGE, email: str = "", **kw: Any
) -> tuple[int, dict[str, str], str]:
    status, _, page = call(app, "GET", {"collection": "equipements", "id": fid})
    assert status == 200
    fields = {**form_fields(page), "message": message, "email": email}
    headers = {"Origin": ORIGIN, **kw.pop("headers", {})}
    return call(app, "POST", body=urllib.parse.urlencode(fields).encode(), headers=headers, **kw)


def queue(app: ReportForm) -> list[reviews.Item]:
    with app.store.reading() as db:
        return reviews.list_items(db, ADMIN)


def test_the_form_names_the_place_in_french_and_escapes_every_value(form: ReportForm) -> None:
    for i, name in enumerate(HOSTILE_NAMES):
        status, headers, page = call(
            form, "GET", {"collection": "equipements", "id": f"test-equipements--{i}"}
        )
        assert status == 200
        assert '<html lang="fr">' in page and "Signaler une erreur" in page
        assert str(escape(name)) in page  # shown as text
        assert "<script" not in page.lower() and "<img" not in page and "<b>" not in page
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert headers["Cache-Control"] == "no-store"
    # a hostile id in the query is escaped in the hidden field too (and the place is unknown)
    status, _, page = call(form, "GET", {"collection": "equipements", "id": '"><script>x</script>'})
    assert status == 404 and "<script>" not in page and "Objet introuvable" in page


def test_unknown_and_restricted_places_are_404(form: ReportForm) -> None:
    for query in (
        {"collection": "equipements", "id": "nope"},
        {"collection": "nope", "id": "x"},
        {"collection": "telesante", "id": "test-telesante--0"},
        {},
    ):
        status, _, page = call(form, "GET", query)
        assert status == 404, query
        assert "Revenez à la carte" in page


def test_a_report_lands_in_the_queue_of_the_features_commune(form: ReportForm) -> None:
    status, _, page = post(form, "test-equipements--9", email=EMAIL)
    assert status == 200, page
    assert "Merci" in page and "Pradines" in page
    assert EMAIL not in page  # not even echoed back
    [item] = queue(form)
    assert (item.kind, item.commune, item.layer, item.feature_id) == (
        "report",
        PRADINES,
        "equipements",
        "test-equipements--9",
    )
    assert (item.message, item.reporter_email, item.submitted_by) == (
        MESSAGE,
        EMAIL,
        reviews.ANONYMOUS,
    )


def test_forged_posts_are_refused(form: ReportForm) -> None:
    status, _, page = call(form, "GET", {"collection": "equipements", "id": "test-equipements--9"})
    fields = {**form_fields(page), "message": MESSAGE}
    body = urllib.parse.urlencode(fields).encode()
    # another site's origin, a null origin, no origin at all
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"}, {}):
        status, _, text = call(form, "POST", body=body, headers=headers)
        assert status == 403 and "Envoi refusé" in text, headers
    # a Referer from this server will do when the browser sends no Origin; the public URL's origin too
    assert (
        call(form, "POST", body=body, headers={"Referer": f"{ORIGIN}/espace/signaler?x"})[0] == 200
    )
    assert call(form, "POST", body=body, headers={"Origin": "https://carte.example.fr"})[0] == 200
    # no token, a token of another feature, a tampered or expired one
    other = form_fields(
        call(form, "GET", {"collection": "equipements", "id": "test-equipements--0"})[2]
    )["jeton"]
    issued = int(fields["jeton"].split(".")[0])
    for token in (
        "",
        other,
        fields["jeton"][:-1] + "0",
        f"{issued - 3 * 3600}.{fields['jeton'].split('.')[1]}",
        "1.x",
    ):
        forged = urllib.parse.urlencode({**fields, "jeton": token}).encode()
        status, _, text = call(form, "POST", body=forged, headers={"Origin": ORIGIN})
        assert status == 403 and "expiré" in text, token
    # not a form, too large
    assert (
        call(
            form, "POST", body=body, headers={"Origin": ORIGIN, "Content-Type": "application/json"}
        )[0]
        == 415
    )
    big = urllib.parse.urlencode({**fields, "message": "x" * MAX_FORM_BYTES}).encode()
    status, _, text = call(form, "POST", body=big, headers={"Origin": ORIGIN})
    assert status == 413 and "trop long" in text
    assert len(queue(form)) == 2
    assert call(form, "PUT")[0] == 405


def test_bad_input_is_shown_in_french_beside_the_field(form: ReportForm) -> None:
    status, _, page = post(form, "test-equipements--1", message="  ", email="pas une adresse")
    assert status == 400
    assert 'role="alert"' in page
    assert "Dites en quelques mots ce qui ne va pas." in page
    assert str(escape("adresse électronique n'est pas valide")) in page
    assert (
        'aria-invalid="true"' in page and 'aria-describedby="message-aide message-erreur"' in page
    )
    assert "pas une adresse" in page  # kept in the field, escaped
    status, _, page = post(form, "test-equipements--1", message="x" * (reviews.MAX_MESSAGE + 1))
    assert status == 400 and "trop long" in page
    assert queue(form) == []


def test_reports_are_limited_per_address_with_a_french_429(form: ReportForm) -> None:
    for _ in range(REPORTS_PER_HOUR):
        assert post(form, "test-equipements--9")[0] == 200
    status, headers, page = post(form, "test-equipements--9")
    assert status == 429
    assert "Trop de signalements" in page and "Réessayez dans" in page
    assert 0 < int(headers["Retry-After"]) <= 3600
    # another address is not held back; an IPv6 client is counted by its /64
    assert post(form, "test-equipements--9", address="192.0.2.99")[0] == 200
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff")
    assert address_key("2001:db8::1") != address_key("2001:db8:0:1::1")
    assert len(queue(form)) == REPORTS_PER_HOUR + 1


def test_the_client_address_behind_a_trusted_proxy() -> None:
    trusted = frozenset({"127.0.0.1"})
    proxied = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "10.9.9.9, 203.0.113.7"}
    # the proxy appended what it saw; what the client wrote before it is not believed
    assert client_address(proxied, trusted) == "203.0.113.7"
    assert client_address({"REMOTE_ADDR": "127.0.0.1"}, trusted) == "127.0.0.1"
    direct = {"REMOTE_ADDR": "198.51.100.4", "HTTP_X_FORWARDED_FOR": "203.0.113.7"}
    assert client_address(direct, trusted) == "198.51.100.4"  # not a proxy: header ignored


def test_the_rate_limit_window_slides(tmp_path: Path) -> None:
    limit = RateLimit(tmp_path / "hits.sqlite", limit=2, window_s=60)
    assert [limit.take("a", now=t) for t in (0, 10)] == [0, 0]
    assert limit.take("a", now=20) == 40  # the first hit leaves the window at 60
    assert limit.take("b", now=20) == 0
    assert limit.take("a", now=61) == 0


# -- a real server, a real browser -------------------------------------------------------


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, layers: dict[str, LayerDef]
) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("signaler")
    with (
        mock.patch.dict(os.environ, {"GEOCOMMUNS_ESPACE_FOLDER": str(folder / "espace")}),
        served_sample(folder, layers, "gpkg") as srv,
    ):
        yield srv


def _get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return str(r.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as e:
        return e.read().decode("utf-8", "replace")


def _cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GEOCOMMUNS_OUTPUT": str(folder / "geocommuns.gpkg")}
    command = Path(sys.executable).with_name("geocommuns")
    return subprocess.run(
        [str(command), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.mark.slow
def test_a_citizens_report_reaches_cahors_is_marked_done_and_is_never_published(
    server: RunningServer, layers: dict[str, LayerDef], grand_cahors: Any, tmp_path: Path
) -> None:
    require_browser()
    from playwright.sync_api import sync_playwright

    fid = "test-equipements--3"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # axe is injected as a script: the page forbids scripts, so its CSP is bypassed
            view = OfflinePage(
                browser,
                server.url,
                f"/espace/signaler?collection=equipements&id={fid}",
                bypass_csp=True,
            )
            page = view.page
            assert view.response is not None and view.response.status == 200
            assert page.locator("h1").inner_text() == "Signaler une erreur"
            assert "Équipement 03" in page.locator(".lieu").inner_text()
            assert axe_violations(page) == []
            # sent empty: the error is announced and tied to the field, still accessible
            page.get_by_role("button", name="Envoyer le signalement").click()
            page.wait_for_load_state()
            assert (
                page.locator("#message-erreur").inner_text()
                == "Dites en quelques mots ce qui ne va pas."
            )
            assert axe_violations(page) == []
            page.get_by_label("Qu'est-ce qui ne va pas ?").fill(MESSAGE)
            page.get_by_label("Votre adresse électronique (facultatif)").fill(EMAIL)
            page.get_by_role("button", name="Envoyer le signalement").click()
            page.wait_for_load_state()
            assert page.locator("h1").inner_text() == "Merci pour votre signalement"
            assert "à la commune de Cahors" in page.locator("[role=status]").inner_text()
            assert axe_violations(page) == []
            # the empty form was answered 400 (Chromium logs it), and nothing else went wrong
            assert [e for e in view.errors if "status of 400" not in e] == [] and view.aborted == []
            view.close()
        finally:
            browser.close()
    folder = server.config.parent
    gpkg = folder / "geocommuns.gpkg"
    store = GeoPackageStore(gpkg)
    cahors = Principal("cahors-sig", "contributor", commune=CAHORS)
    with store.reading() as db:
        [item] = reviews.list_items(db, cahors)
        assert (item.commune, item.feature_id, item.message, item.reporter_email) == (
            CAHORS,
            fid,
            MESSAGE,
            EMAIL,
        )
        assert (
            reviews.list_items(db, Principal("pradines-sig", "contributor", commune=PRADINES)) == []
        )

    # never published: the API in every format and page, the map, the exports, the dashboard
    outputs = [
        _get(f"{server.url}{path}")
        for path in (
            "/",
            "/collections",
            "/openapi?f=json",
            "/collections/equipements/items?f=json&limit=100",
            "/collections/equipements/items?f=html",
            "/collections/equipements/items?f=csv",
            f"/collections/equipements/items/{fid}?f=json",
            f"/collections/equipements/items/{fid}?f=html",
            f"/collections/equipements/items/{fid}?f=jsonld",
        )
    ]
    from geocommuns.definitions.service import service_from_root
    from geocommuns.publish.dashboard import write_dashboard
    from geocommuns.publish.export import export_all
    from geocommuns.publish.indicators import compute_indicators
    from geocommuns.publish.webmap import write_webmap

    service = service_from_root(ROOT)  # the exports and the dashboard name its EPCI
    started = time.perf_counter()
    export_all(gpkg, layers, tmp_path / "export", publisher="Grand Cahors (test)", service=service)
    write_webmap(gpkg, layers, grand_cahors, tmp_path / "map", mode="static")
    indicators = compute_indicators(gpkg, layers, grand_cahors, today=dt.date(2026, 12, 1))
    write_dashboard(indicators, grand_cahors, tmp_path / "dashboard", service)
    print(f"outputs written in {time.perf_counter() - started:.1f} s")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 5
    outputs += [p.read_bytes().decode("utf-8", "replace") for p in files]
    outputs.append(json.dumps(indicators, ensure_ascii=False, default=str))
    for text in outputs:
        assert MESSAGE not in text and EMAIL not in text and "habitante.secrete" not in text

    # the EPCI lists Cahors's reports (e-mail shown to it only) and marks this one done
    listed = _cli(folder, "reports", "--commune", CAHORS)
    assert listed.returncode == 0, listed.stderr
    assert str(item.id) in listed.stdout and EMAIL in listed.stdout
    assert _cli(folder, "reports", "--commune", PRADINES).stdout.count(EMAIL) == 0
    done = _cli(folder, "reports", "done", str(item.id), "--comment", "Horaires corrigés")
    assert done.returncode == 0, done.stderr
    with store.reading() as db:
        assert reviews.get_item(db, ADMIN, item.id).state == "done"
        assert reviews.list_items(db, ADMIN, state="proposed") == []
    again = _cli(folder, "reports", "done", str(item.id))
    assert again.returncode == 2 and "Traceback" not in again.stderr

    # the limit per address holds across the server's workers: the browser's report counted
    statuses = []
    for _ in range(REPORTS_PER_HOUR):
        page_html = _get(f"{server.url}/espace/signaler?collection=equipements&id={fid}")
        fields = {**form_fields(page_html), "message": "encore (test)"}
        request = urllib.request.Request(
            f"{server.url}/espace/signaler",
            data=urllib.parse.urlencode(fields).encode(),
            headers={"Origin": server.url, "Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                statuses.append(r.status)
        except urllib.error.HTTPError as e:
            statuses.append(e.code)
            body = e.read().decode("utf-8")
    assert statuses == [200] * (REPORTS_PER_HOUR - 1) + [429]
    assert "Trop de signalements" in body
