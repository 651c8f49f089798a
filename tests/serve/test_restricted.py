"""Restricted layers on the real server, both backends: invisible to anonymous callers.

The test's own copy of the layer files makes ``telesante`` ``access: restricted`` (its
planted feature carries a sensitive phone number). Every route the service answers is
asked in every encoding by an anonymous caller and by four tokens (reader, partner,
contributor, expired); for anyone who may not read the layer, the answer about
``telesante`` must be the answer about a collection that does not exist, byte for byte
once the id is swapped, headers included. The partner and the contributor are served it,
privately (``Cache-Control: private, no-store``, ``Vary: Authorization``).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from ogcserver import (
    PLANTED,
    PLANTED_IDS,
    ROOT,
    sample_database,
    write_sample_gpkg,
    write_test_config,
)

from geocommuns.contrib.auth import add_user
from geocommuns.contrib.layerstore import GeoPackageStore, LivingStore, PostgisStore
from geocommuns.definitions.layerdef import LayerDef, layers_from_dir
from harness.processes import geocommuns_serve

pytestmark = pytest.mark.slow  # a real server per backend

RESTRICTED = "telesante"
#: A collection that does not exist, as long as the restricted id (so are the answers).
MISSING = "xelesante"
PHONE = PLANTED[RESTRICTED][1]
PLANTED_ID = PLANTED_IDS[RESTRICTED]
ROLES = ("anonymous", "reader", "partner", "contributor", "expired")
ALLOWED = {"partner", "contributor"}
#: Every read route of a collection, with the encodings it is asked in.
READS = [
    ("/collections/{cid}", ("json", "html", "jsonld")),
    ("/collections/{cid}/items", ("json", "html", "csv", "jsonld")),
    (f"/collections/{{cid}}/items/{PLANTED_ID}", ("json", "html", "jsonld")),
    ("/collections/{cid}/queryables", ("json", "html")),
    ("/collections/{cid}/schema", ("json", "html")),
]
#: Headers that differ between any two answers.
VOLATILE = {"date"}


@dataclass
class Env:
    url: str
    backend: str
    tokens: dict[str, str | None]
    layers: dict[str, LayerDef]


def restricted_layers_dir(folder: Path) -> Path:
    """A copy of the project's layer files with :data:`RESTRICTED` made ``access: restricted``."""
    target = folder / "layers"
    shutil.copytree(ROOT / "layers", target)
    path = target / f"{RESTRICTED}.yml"
    text = path.read_text(encoding="utf-8")
    assert "\naccess: public\n" in text
    path.write_text(text.replace("\naccess: public\n", "\naccess: restricted\n"), encoding="utf-8")
    return target


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    backend = str(request.param)
    database_url = sample_database(request, backend)
    folder = tmp_path_factory.mktemp(f"restricted-{backend}")
    layers = layers_from_dir(restricted_layers_dir(folder))
    assert layers[RESTRICTED].access == "restricted"
    gpkg = folder / "geocommuns.gpkg"
    write_sample_gpkg(gpkg, layers)
    if database_url is not None:
        from geocommuns.publish.postgis import publish

        publish(database_url, gpkg, layers)
    store: LivingStore = PostgisStore(database_url) if database_url else GeoPackageStore(gpkg)
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    with store.writing() as db:
        tokens: dict[str, str | None] = {
            "anonymous": None,
            "reader": add_user(db, "lecteur", "reader"),
            "partner": add_user(db, "partenaire", "partner"),
            "contributor": add_user(db, "cahors", "contributor", commune="46042"),
            "expired": add_user(db, "ancien", "admin", expires=expiry),
        }
    config = write_test_config(folder, gpkg, layers, database_url=database_url)
    environment = {**os.environ, "GEOCOMMUNS_ROOT": str(ROOT), "GEOCOMMUNS_LAYERS_DIR": str(folder / "layers")}
    with geocommuns_serve(folder, config, env=environment) as service:
        time.sleep(max(0.0, (expiry - dt.datetime.now(dt.UTC)).total_seconds() + 0.1))
        yield Env(service.url, backend, tokens, layers)


def ask(env: Env, role: str, method: str, path: str, **kwargs: object) -> httpx.Response:
    headers = dict(kwargs.pop("headers", {}) or {})  # type: ignore[call-overload]
    token = env.tokens[role]
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, env.url + path, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


def same_as_missing(env: Env, role: str, method: str, path: str, **kwargs: object) -> None:
    """The answer about the restricted collection is the one about a missing collection."""
    restricted = ask(env, role, method, path.format(cid=RESTRICTED), **kwargs)
    missing = ask(env, role, method, path.format(cid=MISSING), **kwargs)
    where = (role, method, path, restricted.status_code, restricted.text[:300])
    assert restricted.status_code == missing.status_code, where
    assert restricted.status_code in {400, 404, 405}, where
    assert restricted.content.replace(RESTRICTED.encode(), MISSING.encode()) == missing.content, where
    seen = [(k.lower(), v.replace(RESTRICTED, MISSING)) for k, v in restricted.headers.items()
            if k.lower() not in VOLATILE]
    expected = [(k.lower(), v) for k, v in missing.headers.items() if k.lower() not in VOLATILE]
    assert seen == expected, where
    assert PHONE not in restricted.text


def test_listings_never_name_it(env: Env) -> None:
    title = env.layers[RESTRICTED].title.fr
    for role in ROLES:
        for path, formats in (("/", ("json", "html")), ("/collections", ("json", "html", "jsonld")),
                              ("/openapi", ("json", "html")), ("/conformance", ("json",))):
            for f in formats:
                r = ask(env, role, "GET", path, params={"f": f})
                assert r.status_code == 200, (role, path, f, r.status_code)
                assert RESTRICTED not in r.text and title not in r.text, (role, path, f)
                assert RESTRICTED not in str(r.headers), (role, path, f)
    # the public layers are still listed, and served to every caller
    ids = {c["id"] for c in ask(env, "anonymous", "GET", "/collections", params={"f": "json"}).json()["collections"]}
    assert ids == set(env.layers) - {RESTRICTED}
    for role in ROLES:
        r = ask(env, role, "GET", "/collections/equipements/items", params={"f": "json", "limit": 2})
        assert r.status_code == 200 and r.json()["numberReturned"] == 2, (role, r.text[:200])


@pytest.mark.parametrize("role", sorted(set(ROLES) - ALLOWED))
def test_reads_are_answered_as_for_a_missing_collection(env: Env, role: str) -> None:
    for path, formats in READS:
        for f in formats:
            same_as_missing(env, role, "GET", path, params={"f": f})
            same_as_missing(env, role, "HEAD", path, params={"f": f})
        same_as_missing(env, role, "GET", path)  # no f: the Accept header decides
        same_as_missing(env, role, "GET", path, headers={"Accept": "text/html"})
    for params in ({"bbox": "1.3,44.3,1.6,44.6"}, {"limit": "1", "offset": "0"}, {"nom": "x"},
                   {"filter": "nom = 'x'"}, {"sortby": "nom"}, {"unknown": "1"}, {"offset": "-1"}):
        same_as_missing(env, role, "GET", "/collections/{cid}/items", params=params)


@pytest.mark.parametrize("role", sorted(set(ROLES) - ALLOWED))
def test_writes_are_answered_as_for_a_missing_collection(env: Env, role: str) -> None:
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1.4476, 44.4559]},
               "properties": {"nom": "Essai (exemple)"}}
    same_as_missing(env, role, "POST", "/collections/{cid}/items", json=feature)
    for method in ("PUT", "PATCH", "DELETE"):
        same_as_missing(env, role, method, f"/collections/{{cid}}/items/{PLANTED_ID}", json=feature,
                        headers={"If-Match": "*"})


def private(r: httpx.Response) -> None:
    assert r.headers.get("Cache-Control") == "private, no-store", r.headers
    assert "Authorization" in r.headers.get("Vary", ""), r.headers
    assert "ETag" not in r.headers or r.request.url.path.count("/") == 4  # only an item's edit ETag


@pytest.mark.parametrize("role", sorted(ALLOWED))
def test_allowed_tokens_are_served_it_privately(env: Env, role: str) -> None:
    doc = ask(env, role, "GET", f"/collections/{RESTRICTED}", params={"f": "json"})
    assert doc.status_code == 200 and doc.json()["id"] == RESTRICTED
    private(doc)
    page = ask(env, role, "GET", f"/collections/{RESTRICTED}/items", params={"f": "json", "limit": 5})
    assert page.status_code == 200, page.text
    private(page)
    assert page.headers["Content-Type"].startswith("application/geo+json")
    assert PLANTED_ID in {f["id"] for f in page.json()["features"]}
    assert PHONE not in page.text  # pages: the public fields only
    head = ask(env, role, "HEAD", f"/collections/{RESTRICTED}/items")
    assert head.status_code == 200 and not head.content
    private(head)
    item = ask(env, role, "GET", f"/collections/{RESTRICTED}/items/{PLANTED_ID}")
    assert item.status_code == 200 and item.json()["id"] == PLANTED_ID
    private(item)
    # the sensitive field: to the contributor of the feature's commune, not to a partner
    assert (PHONE in item.text) == (role == "contributor")
    for path, formats in READS[:2]:
        for f in formats:
            if f == "json":
                continue
            r = ask(env, role, "GET", path.format(cid=RESTRICTED), params={"f": f})
            assert r.status_code == 400 and "restricted" in r.json()["description"], (path, f, r.text)
            private(r)
    # a partner reads, never writes
    if role == "partner":
        r = ask(env, role, "DELETE", f"/collections/{RESTRICTED}/items/{PLANTED_ID}", headers={"If-Match": "*"})
        assert r.status_code == 403

