"""The technician web space at the HTTP level, without a browser: the WSGI application of
``/espace/`` in process, on a real GeoPackage living store, real users and tokens.

Every upload path (CSV, XLSX, zipped shapefile, GeoJSON, GeoPackage), the French report,
the limit message above the cap, CSRF, sign-in slowed down, sign-out, the territory rules
of submission and correction.
"""

from __future__ import annotations

import html
import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import espace_samples as samples
import pytest
from ogcserver import ROOT, write_sample_gpkg
from werkzeug.test import Client, TestResponse

from geocommuns.contrib import reviews
from geocommuns.contrib.auth import Principal, add_user
from geocommuns.contrib.edits import PRINCIPAL_KEY, EditService
from geocommuns.contrib.layerstore import GeoPackageStore, LivingStore, PostgisStore, table_of
from geocommuns.contrib.portal.options import PortalOptions
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.ingest import journal
from geocommuns.serve.espace.app import espace_from_config
from geocommuns.settings import Settings

CAP = 200_000
#: A Pradines (46224) feature made by an administrator through Part 4.
PRADINES = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1.40, 44.46]},
            "properties": {"nom": "Gymnase de Pradines (échantillon)", "categorie": "sport",
                           "source_id": "pradines-gym", "date_maj": "2026-01-15"}}


@dataclass
class Space:
    """The space under test and what it works on."""

    folder: Path
    store: LivingStore
    edits: EditService
    tokens: dict[str, str]
    app: Any
    sources: Path
    pradines_id: str


def _create_as_admin(edits: EditService, feature: dict[str, Any]) -> str:
    body = json.dumps(feature).encode()
    answer: dict[str, Any] = {}

    def start(status: str, headers: list[tuple[str, str]], exc: Any = None) -> None:
        answer.update(status=status, headers=dict(headers))

    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/collections/equipements/items",
               "CONTENT_TYPE": "application/geo+json", "CONTENT_LENGTH": str(len(body)),
               "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "SERVER_NAME": "x",
               "SERVER_PORT": "80", PRINCIPAL_KEY: Principal("admin", "admin")}
    b"".join(edits(environ, start))
    assert answer["status"].startswith("201"), answer
    return str(answer["headers"]["Location"]).rsplit("/", 1)[1]


def _space(folder: Path, layers: dict[str, LayerDef], *, review: bool, database_url: str | None = None) -> Space:
    gpkg = folder / "geocommuns.gpkg"
    write_sample_gpkg(gpkg, layers)
    store: LivingStore = GeoPackageStore(gpkg)
    if database_url is not None:
        from geocommuns.publish.postgis import publish

        publish(database_url, gpkg, layers)
        store = PostgisStore(database_url)
    tokens = {}
    with store.writing() as db:
        tokens["douelle"] = add_user(db, "douelle", "contributor", commune="46088")
        tokens["cahors"] = add_user(db, "cahors", "contributor", commune="46042")
        tokens["epci"] = add_user(db, "epci", "admin")
        reviews.ensure_schema(db)
    sources = folder / "sources"
    shutil.copytree(ROOT / "examples" / "grand-cahors" / "sources", sources)
    edits = EditService(store, layers, "epci:200023737")
    pradines = _create_as_admin(edits, PRADINES)
    app = espace_from_config(
        edits, Settings(root=ROOT, sources_dir=sources),
        PortalOptions(folder=folder / "espace", upload_max_bytes=CAP, review=review),
    )
    return Space(folder, store, edits, tokens, app, sources, pradines)


@pytest.fixture(scope="module", autouse=True)
def french() -> Iterator[None]:
    """The space in French, as a server runs by default (tests/conftest.py sets English)."""
    before = os.environ.get("GEOCOMMUNS_LANG")
    os.environ["GEOCOMMUNS_LANG"] = "fr"
    yield
    if before is None:
        os.environ.pop("GEOCOMMUNS_LANG", None)
    else:
        os.environ["GEOCOMMUNS_LANG"] = before


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory, layers: dict[str, LayerDef]) -> Space:
    return _space(tmp_path_factory.mktemp("espace"), layers, review=False)


def csrf_of(response: TestResponse) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', response.get_data(as_text=True))
    assert found, response.get_data(as_text=True)[:500]
    return html.unescape(found.group(1))


def signed_in(space: Space, name: str) -> tuple[Client, str]:
    client = Client(space.app)
    form = client.get("/espace/connexion")
    answer = client.post("/espace/connexion", data={"csrf": csrf_of(form), "nom": name,
                                                     "jeton": space.tokens[name]})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:500]
    home = client.get("/espace/")
    assert home.status_code == 200
    return client, csrf_of(home)


def upload(client: Client, csrf: str, name: str, content: bytes, *, commune: str = "46088",
           layer: str = "tiers_lieux", xhr: bool = False) -> TestResponse:
    headers = {"X-Requested-With": "XMLHttpRequest"} if xhr else {}
    return client.post("/espace/deposer", headers=headers, data={
        "csrf": csrf, "couche": layer, "commune": commune, "fichier": (io.BytesIO(content), name)})


def text_of(response: TestResponse) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))))


@pytest.mark.slow
def test_sign_in_cookie_and_sign_out(space: Space) -> None:
    client = Client(space.app)
    assert client.get("/espace/").headers["Location"].endswith("/espace/connexion")
    form = client.get("/espace/connexion")
    answer = client.post("/espace/connexion", data={"csrf": csrf_of(form), "nom": "douelle",
                                                     "jeton": space.tokens["douelle"]})
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/espace/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over HTTPS the cookie is Secure
    home = client.get("/espace/")
    assert home.status_code == 200 and "Douelle" in text_of(home)
    assert home.headers["Cache-Control"] == "no-store" and home.headers["X-Frame-Options"] == "DENY"
    policy = home.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy and "unsafe" not in policy
    out = client.post("/espace/deconnexion", data={"csrf": csrf_of(home)})
    assert out.status_code == 303
    # the old cookie value opens nothing any more, even sent again by hand
    stolen = cookie.split(";")[0].split("=", 1)[1]
    again = Client(space.app)
    again.set_cookie("geocommuns_espace", stolen, path="/espace/")
    assert again.get("/espace/").status_code == 303


@pytest.mark.slow
def test_secure_cookie_over_https(space: Space) -> None:
    client = Client(space.app)
    form = client.get("/espace/connexion", base_url="https://localhost")
    answer = client.post("/espace/connexion", base_url="https://localhost", data={
        "csrf": csrf_of(form), "nom": "cahors", "jeton": space.tokens["cahors"]})
    assert "Secure" in answer.headers["Set-Cookie"]


@pytest.mark.slow
def test_failed_sign_ins_are_slowed_down(space: Space) -> None:
    client = Client(space.app)
    csrf = csrf_of(client.get("/espace/connexion"))
    statuses = [client.post("/espace/connexion", data={"csrf": csrf, "nom": "epci", "jeton": "gct_x_y"},
                            environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code for _ in range(5)]
    assert statuses[:3] == [401, 401, 401]
    assert 429 in statuses[3:]
    # while the wait is due, even the right token is refused, with the wait in French
    right = client.post("/espace/connexion", data={"csrf": csrf, "nom": "epci", "jeton": space.tokens["epci"]},
                        environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert right.status_code == 429 and "réessayez dans" in text_of(right)
    assert int(right.headers["Retry-After"]) >= 1


@pytest.mark.slow
def test_forms_without_csrf_are_refused(space: Space) -> None:
    client, csrf = signed_in(space, "douelle")
    refused = upload(client, "", "d.csv", samples.csv_bytes())
    assert refused.status_code == 403 and "formulaire a expiré" in text_of(refused)
    wrong = client.post("/espace/deconnexion", data={"csrf": csrf[:-1] + "x"})
    assert wrong.status_code == 403
    assert client.get("/espace/").status_code == 200  # still signed in
    no_cookie = Client(space.app).post("/espace/connexion", data={
        "csrf": "forged", "nom": "douelle", "jeton": space.tokens["douelle"]})
    assert no_cookie.status_code == 403


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["csv", "xlsx", "shapefile", "geojson", "gpkg"])
def test_every_upload_path_gives_the_french_report(space: Space, kind: str, tmp_path: Path) -> None:
    client, csrf = signed_in(space, "douelle")
    if kind == "csv":
        name, content = "douelle.csv", samples.csv_bytes(flawed=True)
    elif kind == "xlsx":
        name, content = "douelle.xlsx", samples.xlsx_bytes(flawed=True)
    else:
        name, content = samples.vector_bytes(kind, tmp_path, flawed=True)
    answer = upload(client, csrf, name, content, xhr=True)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    location = answer.json["location"]
    report = client.get(location)
    assert report.status_code == 200
    words = text_of(report)
    assert "3 ligne(s) lue(s)" in words, words[:2000]
    if kind in {"csv", "xlsx"}:  # read with the Douelle declaration: only the category fails
        assert "2 ligne(s) valide(s)" in words and "1 ligne(s) refusée(s)" in words
        assert "Valeur hors de la liste autorisée : Catégorie (1 ligne)" in words
        assert "ligne 2." in words and "Que faire :" in words
        assert f"Motif : '{samples.UNKNOWN_CATEGORY}' ne fait pas partie de la liste" in words  # i18n
        rejects = client.get(location + "/rejets.csv")
        assert rejects.headers["Content-Type"].startswith("text/csv")
        lines = rejects.get_data(as_text=True).lstrip("\ufeff").splitlines()
        assert lines[0].startswith("ligne;champ;motif;que faire")
        assert len(lines) == 2 and samples.UNKNOWN_CATEGORY in lines[1]
        data = client.get(location + "/carte.json").json
        assert len(data["features"]["features"]) == 2 and data["outline"]["properties"]["nom"] == "Douelle"


@pytest.mark.slow
def test_over_the_cap_gets_the_french_limit_message(space: Space) -> None:
    client, csrf = signed_in(space, "douelle")
    big = b"Identifiant;Nom du lieu\n" + b"x;" + b"y" * (CAP + 10)
    plain = upload(client, csrf, "gros.csv", big)
    assert plain.status_code == 413
    assert "dépasse la taille maximale acceptée" in text_of(plain)
    huge = upload(client, csrf, "gros.csv", big + b"z" * 100_000, xhr=True)
    assert huge.status_code == 413 and "taille maximale" in huge.json["error"]
    assert not any((space.folder / "espace" / "depots").glob("*/gros.csv"))


@pytest.mark.slow
def test_unaccepted_types_are_refused_in_french(space: Space) -> None:
    client, csrf = signed_in(space, "douelle")
    answer = upload(client, csrf, "notes.docx", b"PK\x03\x04 not a delivery")
    assert answer.status_code == 400 and "n'est pas un type de fichier accepté" in text_of(answer)
    traversal = upload(client, csrf, "../../evil.zip", b"PK\x05\x06" + b"\0" * 18)
    assert traversal.status_code == 400 and "seul shapefile" in text_of(traversal)


@pytest.mark.slow
def test_assistant_value_map_saves_the_declaration_the_cli_reads(space: Space) -> None:
    from geocommuns.definitions.sourcedef import source_from_yaml

    client, csrf = signed_in(space, "douelle")
    location = upload(client, csrf, "douelle.csv", samples.csv_bytes(flawed=True)).headers["Location"]
    page = client.get(location + "/correspondance")
    body = page.get_data(as_text=True)
    assert samples.UNKNOWN_CATEGORY in html.unescape(body)
    # « Adresse » is not in the Douelle declaration: guessed from the field's aliases, marked
    adresse = re.search(r'<th scope="row" id="champ-adresse">(.*?)</th>', body, re.S)
    assert adresse is not None and "deviné" in adresse.group(1)
    form = _assistant_form(body, csrf)
    raw_key = next(k for k, v in form.items() if k.startswith("raw.categorie.") and v == samples.UNKNOWN_CATEGORY)
    form["val.categorie." + raw_key.rsplit(".", 1)[1]] = "atelier_partage"
    live = client.post(location + "/correspondance", data={**form, "action": "verifier"},
                       headers={"X-Requested-With": "XMLHttpRequest"})
    assert live.json["rejected"] == 0 and live.json["valid"] == 3
    saved = client.post(location + "/correspondance", data={**form, "action": "enregistrer"})
    assert saved.status_code == 303
    declaration = space.sources / "46088-douelle" / "tiers_lieux.yml"
    source = source_from_yaml(declaration)
    assert source.values["categorie"][samples.UNKNOWN_CATEGORY] == "atelier_partage"
    assert source.values["frais"] == {"Gratuit sous condition": "gratuit_sous_condition"}  # kept
    assert source.path is not None and source.path.read_bytes() == samples.csv_bytes(flawed=True)
    assert "0 ligne(s) refusée(s)" in text_of(client.get(location))


def _assistant_form(body: str, csrf: str) -> dict[str, str]:
    form = {"csrf": csrf}
    for name, options in re.findall(r'<select[^>]*name="((?:map|geom|const)\.[^"]+)"[^>]*>(.*?)</select>', body, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', options)
        form[name] = html.unescape(chosen.group(1)) if chosen else ""
    for name, value in re.findall(r'<input type="hidden" name="(raw\.[^"]+)" value="([^"]*)"', body):
        form[name] = html.unescape(value)
    for name, value in re.findall(r'<input name="(const\.[^"]+)" value="([^"]*)"', body):
        form[name] = html.unescape(value)
    return form


@pytest.mark.slow
def test_preview_and_submit_through_the_contribution_path(space: Space, layers: dict[str, LayerDef]) -> None:
    client, csrf = signed_in(space, "douelle")
    fixed = samples.csv_bytes()  # no flaw: every category in the enum
    location = upload(client, csrf, "douelle-ok.csv", fixed).headers["Location"]
    preview = client.get(location + "/apercu")
    assert preview.status_code == 200 and "3 ajout(s)" in text_of(preview)
    with space.store.reading() as db:
        before = journal.last_seq(db)
    done = client.post(location + "/envoyer", data={"csrf": csrf})
    assert done.status_code == 200 and "La livraison est appliquée : 3 ajout(s)" in text_of(done)
    with space.store.reading() as db:
        entries = journal.changes(db, since=before)
        stored = table_of(db).get(layers["tiers_lieux"], "46088-douelle-tiers_lieux--DOU-2")
    assert len(entries) == 3 and {e.actor for e in entries} == {"douelle"}
    assert stored is not None and stored.doc["code_insee"] == "46088"
    again = client.post(location + "/envoyer", data={"csrf": csrf})
    assert again.status_code == 200 and "0 ajout(s)" in text_of(again)
    # the next delivery renames one place and drops another: old → new, and the removal
    lines = fixed.decode().splitlines()
    renamed = [lines[0], lines[1].replace("La Cale – coworking (échantillon)", "La Cale (échantillon)"), lines[2], ""]
    later = upload(client, csrf, "douelle-mai.csv", "\n".join(renamed).encode()).headers["Location"]
    words = text_of(client.get(later + "/apercu"))
    assert "0 ajout(s)" in words and "1 modification(s)" in words and "1 suppression(s)" in words
    assert "Nom : La Cale – coworking (échantillon) → La Cale (échantillon)" in words
    assert "Suppression Salle numérique (échantillon)" in words
    kinds = {f["properties"]["kind"] for f in client.get(later + "/apercu.json").json["features"]["features"]}
    assert kinds == {"changed", "removed"}


@pytest.mark.slow
def test_cahors_cannot_submit_or_correct_in_pradines(space: Space, layers: dict[str, LayerDef]) -> None:
    client, csrf = signed_in(space, "cahors")
    # a Pradines commune is not offered, and forcing it is refused
    assert "46224" not in client.get("/espace/deposer").get_data(as_text=True)
    forced = upload(client, csrf, "pradines.csv", samples.csv_bytes(), commune="46224")
    assert forced.status_code == 400 and "commune de votre territoire" in text_of(forced)
    # rows of another commune delivered as Cahors's: refused whole, nothing changed
    location = upload(client, csrf, "douelle-as-cahors.csv", samples.csv_bytes(), commune="46042").headers["Location"]
    with space.store.reading() as db:
        before = journal.last_seq(db)
    refused = client.post(location + "/envoyer", data={"csrf": csrf})
    assert refused.status_code == 409 and "rien n'a changé" in text_of(refused)
    assert "d'autres communes" in text_of(refused)
    # a Pradines feature cannot be opened nor corrected
    path = f"/espace/couches/equipements/lieux/{space.pradines_id}"
    assert client.get(path).status_code == 404
    with space.store.reading() as db:
        etag = table_of(db).get(layers["equipements"], space.pradines_id).etag  # type: ignore[union-attr]
    posted = client.post(path, data={"csrf": csrf, "etag": etag, "nom": "Pris par Cahors",
                                     "categorie": "sport", "lon": "1.40", "lat": "44.46"})
    assert posted.status_code in {403, 404}
    with space.store.reading() as db:
        assert journal.last_seq(db) == before
        assert table_of(db).get(layers["equipements"], space.pradines_id).doc["nom"] == PRADINES["properties"]["nom"]  # type: ignore[union-attr]


@pytest.mark.slow
def test_correction_uses_the_part4_rules(space: Space, layers: dict[str, LayerDef]) -> None:
    client, csrf = signed_in(space, "cahors")
    listing = client.get("/espace/couches/equipements/lieux?commune=46042")
    feature_id = re.search(r"/lieux/([^\"]+)\"", listing.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    form_page = client.get(f"/espace/couches/equipements/lieux/{feature_id}")
    etag = html.unescape(re.search(r'name="etag" value="([^"]*)"', form_page.get_data(as_text=True)).group(1))  # type: ignore[union-attr]
    values = {"csrf": csrf, "etag": etag, "nom": "Équipement corrigé", "categorie": "sport",
              "horaires": "du lundi au vendredi de 9h à 12h", "date_maj": "2026-11-30",
              "lon": "1.4417", "lat": "44.4475"}  # the point moved into Cahors proper
    done = client.post(f"/espace/couches/equipements/lieux/{feature_id}", data=values)
    assert done.status_code == 303, text_of(done)[:1500]
    with space.store.reading() as db:
        doc = table_of(db).get(layers["equipements"], feature_id).doc  # type: ignore[union-attr]
        last = journal.changes(db, since=journal.last_seq(db) - 1)[0]
    assert doc["nom"] == "Équipement corrigé" and doc["horaires"] == "Mo-Fr 09:00-12:00"
    assert last.actor == "cahors" and last.via == "api"
    stale = client.post(f"/espace/couches/equipements/lieux/{feature_id}", data={**values, "nom": "Écrasé"})
    assert stale.status_code == 409 and "modifié par quelqu'un d'autre" in text_of(stale)
    out = client.post(f"/espace/couches/equipements/lieux/{feature_id}",
                      data={**values, "etag": table_etag(space, layers, feature_id), "lon": "1.40", "lat": "44.46"})
    assert out.status_code == 403 and "hors de votre territoire" in text_of(out)


def table_etag(space: Space, layers: dict[str, LayerDef], feature_id: str) -> str:
    with space.store.reading() as db:
        return table_of(db).get(layers["equipements"], feature_id).etag  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory: pytest.TempPathFactory, layers: dict[str, LayerDef]) -> Iterator[Space]:
    yield _space(tmp_path_factory.mktemp("espace-revue"), layers, review=True)


@pytest.mark.slow
def test_review_queue_accept_and_refuse(reviewed: Space, layers: dict[str, LayerDef]) -> None:
    client, csrf = signed_in(reviewed, "douelle")
    location = upload(client, csrf, "douelle.csv", samples.csv_bytes()).headers["Location"]
    queued = client.post(location + "/envoyer", data={"csrf": csrf, "note": "Mise à jour de mars"})
    assert queued.status_code == 200 and "attend la relecture" in text_of(queued)
    with reviewed.store.reading() as db:
        assert table_of(db).get(layers["tiers_lieux"], "46088-douelle-tiers_lieux--DOU-1") is None
    admin, admin_csrf = signed_in(reviewed, "epci")
    queue = admin.get("/espace/relecture")
    item_id = re.search(r"/espace/relecture/(\d+)", queue.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    assert "Mise à jour de mars" in text_of(queue)
    accepted = admin.post(f"/espace/relecture/{item_id}", data={"csrf": admin_csrf, "action": "accepter",
                                                              "commentaire": "Merci"})
    assert accepted.status_code == 303
    with reviewed.store.reading() as db:
        assert table_of(db).get(layers["tiers_lieux"], "46088-douelle-tiers_lieux--DOU-1") is not None
    home = text_of(client.get("/espace/"))
    assert "acceptée et appliquée" in home and "« Merci »" in home
    second = upload(client, csrf, "douelle2.csv", samples.csv_bytes()).headers["Location"]
    client.post(second + "/envoyer", data={"csrf": csrf})
    queue = admin.get("/espace/relecture")
    item_id = re.search(r"/espace/relecture/(\d+)", queue.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    admin.post(f"/espace/relecture/{item_id}", data={"csrf": admin_csrf, "action": "refuser",
                                                   "commentaire": "Doublon"})
    assert "refusée" in text_of(client.get("/espace/")) and "« Doublon »" in text_of(client.get("/espace/"))


@pytest.mark.slow
def test_a_citizen_report_reaches_the_commune_queue_and_is_marked_done(space: Space, layers: dict[str, LayerDef]) -> None:
    with space.store.writing() as db:
        item = reviews.report(db, layers, layer="equipements", feature_id="test-equipements--3",
                              message="Les horaires ont changé", reporter_email="habitant@example.org")
    assert item.commune == "46042"
    other, _ = signed_in(space, "douelle")
    assert "Les horaires ont changé" not in text_of(other.get("/espace/relecture"))
    client, csrf = signed_in(space, "cahors")
    queue = text_of(client.get("/espace/relecture"))
    assert "Les horaires ont changé" in queue and "habitant@example.org" in queue
    done = client.post(f"/espace/relecture/{item.id}", data={"csrf": csrf, "action": "traiter",
                                                            "commentaire": "Corrigé"})
    assert done.status_code == 303
    with space.store.reading() as db:
        assert reviews.get_item(db, Principal("epci", "admin"), item.id).state == "done"
    again = client.post(f"/espace/relecture/{item.id}", data={"csrf": csrf, "action": "traiter"})
    assert again.status_code == 404


@pytest.mark.slow
def test_enum_values_show_the_layer_french_labels(space: Space) -> None:
    client, csrf = signed_in(space, "douelle")
    location = upload(client, csrf, "douelle.csv", samples.csv_bytes(flawed=True)).headers["Location"]
    page = html.unescape(client.get(location + "/correspondance").get_data(as_text=True))
    assert '<option value="atelier_partage">Atelier partagé (atelier_partage)</option>' in page
    assert "Tiers-lieu hybride" in page


@pytest.mark.slow
def test_bodies_are_capped_off_the_upload_form(space: Space) -> None:
    # the space is mounted before the service's 1 MB cap: its other forms keep that cap
    client = Client(space.app)
    form = client.get("/espace/connexion")
    huge = client.post("/espace/connexion", data={"csrf": csrf_of(form), "nom": "x" * 1_100_000, "jeton": "y"})
    assert huge.status_code == 413 and "trop volumineuse" in text_of(huge)


@pytest.mark.slow
def test_the_space_on_postgis(tmp_path_factory: pytest.TempPathFactory, layers: dict[str, LayerDef],
                              database_url: str) -> None:
    """Upload, report, preview, submit and correction on the PostGIS living store."""
    pg = _space(tmp_path_factory.mktemp("espace-pg"), layers, review=False, database_url=database_url)
    client, csrf = signed_in(pg, "douelle")
    location = upload(client, csrf, "douelle.xlsx", samples.xlsx_bytes(flawed=True)).headers["Location"]
    assert "1 ligne(s) refusée(s)" in text_of(client.get(location))
    refused = client.post(location + "/envoyer", data={"csrf": csrf})
    assert refused.status_code == 409 and "1 ligne(s) sont refusées" in text_of(refused)
    body = client.get(location + "/correspondance").get_data(as_text=True)
    form = _assistant_form(body, csrf)
    raw_key = next(k for k, v in form.items() if k.startswith("raw.categorie.") and v == samples.UNKNOWN_CATEGORY)
    form["val.categorie." + raw_key.rsplit(".", 1)[1]] = "atelier_partage"
    assert client.post(location + "/correspondance", data={**form, "action": "verifier"}).status_code == 200
    assert "3 ajout(s)" in text_of(client.get(location + "/apercu"))
    done = client.post(location + "/envoyer", data={"csrf": csrf})
    assert "La livraison est appliquée : 3 ajout(s)" in text_of(done)
    feature = "46088-douelle-tiers_lieux--DOU-2"
    with pg.store.reading() as db:
        stored = table_of(db).get(layers["tiers_lieux"], feature)
        assert stored is not None and stored.doc["categorie"] == "atelier_partage"
        etag = stored.etag
    values = {"csrf": csrf, "etag": etag, "nom": "Atelier du quai", "categorie": "fablab",
              "date_maj": "2026-11-30", "lon": "1.3600", "lat": "44.4700"}
    assert client.post(f"/espace/couches/tiers_lieux/lieux/{feature}", data=values).status_code == 303
    with pg.store.reading() as db:
        assert table_of(db).get(layers["tiers_lieux"], feature).doc["categorie"] == "fablab"  # type: ignore[union-attr]
        assert journal.changes(db, feature_id=feature)[-1].actor == "douelle"


@pytest.mark.slow
def test_hostile_values_are_escaped_on_every_page(space: Space) -> None:
    from browser import HOSTILE_NAMES

    client, csrf = signed_in(space, "cahors")
    lines = samples.csv_bytes().decode().splitlines()
    rows = [lines[0]] + [
        ";".join([f"H{i}", name.replace(";", ","), "Coworking", "Payant", "a", "46000", "1.4417",
                  f"44.44{i}", "", "", "02/04/2026"])
        for i, name in enumerate(HOSTILE_NAMES)
    ] + [";".join(["H9", "x", "<img src=x onerror=alert(1)>", "Payant", "a", "46000", "1.4417", "44.449", "", "", "02/04/2026"])]
    location = upload(client, csrf, "<b>hostile</b>.csv", ("\n".join(rows) + "\n").encode(), commune="46042").headers["Location"]
    pages = [client.get(location), client.get(location + "/correspondance"), client.get(location + "/apercu")]
    assert pages[2].status_code == 409  # the hostile category is rejected: nothing applied
    valid = upload(client, csrf, "hostile.csv", ("\n".join(rows[:-1]) + "\n").encode(), commune="46042").headers["Location"]
    pages.append(client.post(valid + "/envoyer", data={"csrf": csrf}))
    listing = client.get("/espace/couches/tiers_lieux/lieux?commune=46042")
    ids = re.findall(r'/lieux/(46042-[^"]+--H\d)"', listing.get_data(as_text=True))
    pages += [listing, *(client.get(f"/espace/couches/tiers_lieux/lieux/{i}") for i in ids)]
    assert len(ids) == len(HOSTILE_NAMES)
    for response in pages:
        body = response.get_data(as_text=True)
        assert response.status_code in {200, 409}
        for raw in ("<script>window.__xss", "<img src=x onerror", "<b>des</b>", "<b>hostile</b>"):
            assert raw not in body, (response.request.path, raw)


@pytest.mark.slow
def test_the_service_file_requires_review(space: Space, tmp_path: Path) -> None:
    import yaml

    service = yaml.safe_load((ROOT / "geocommuns.yml").read_text(encoding="utf-8"))
    assert service["espace"]["review"] is False
    service["espace"] = {"review": True}
    (tmp_path / "geocommuns.yml").write_text(yaml.safe_dump(service, allow_unicode=True), encoding="utf-8")
    options = PortalOptions(folder=tmp_path / "espace")
    reviewing = espace_from_config(space.edits, Settings(root=tmp_path, sources_dir=space.sources), options)
    assert reviewing.espace.review is True
    plain = espace_from_config(space.edits, Settings(root=ROOT, sources_dir=space.sources), options)
    assert plain.espace.review is False


@pytest.mark.slow
def test_a_broken_store_is_a_french_503(space: Space, layers: dict[str, LayerDef], tmp_path: Path) -> None:
    broken = tmp_path / "broken.gpkg"
    broken.write_bytes(b"this is not a GeoPackage" * 100)
    app = espace_from_config(EditService(GeoPackageStore(broken), layers, "epci:200023737"),
                             Settings(root=ROOT, sources_dir=space.sources),
                             PortalOptions(folder=tmp_path / "espace"))
    client = Client(app)
    form = client.get("/espace/connexion")
    answer = client.post("/espace/connexion", data={"csrf": csrf_of(form), "nom": "douelle",
                                                     "jeton": space.tokens["douelle"]})
    assert answer.status_code == 503 and "réessayez dans un instant" in text_of(answer)
    assert answer.headers["Retry-After"] == "5"
