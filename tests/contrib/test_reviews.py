"""The review queue on both backends of the living store: submissions, reports, who sees what."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tinygpkg import feature, write_tiny_gpkg

from geocommuns.contrib import reviews
from geocommuns.contrib.auth import Principal
from geocommuns.contrib.layerstore import GeoPackageStore, LivingStore, PostgisStore
from geocommuns.contrib.reviews import ReviewError
from geocommuns.definitions.layerdef import LayerDef

CAHORS, PRADINES, EPCI = "46042", "46224", "200023737"
ADMIN = Principal("grand-cahors", "admin")
CAHORS_SIG = Principal("cahors-sig", "contributor", commune=CAHORS)
PRADINES_SIG = Principal("pradines-sig", "contributor", commune=PRADINES)
WIFI_EDITOR = Principal("wifi-sig", "editor", layers=("wifi",))
READER = Principal("partenaire", "reader")
EMAIL = "habitant@example.org"


def _gpkg(tmp_path: Path, layers: dict[str, LayerDef]) -> Path:
    records = {
        "equipements": [
            feature(
                "equipements",
                1,
                1.4420,
                44.4470,
                categorie="mairie",
                code_insee=CAHORS,
                epci=EPCI,
                nom="Mairie (échantillon)",
            ),
            feature(
                "equipements",
                2,
                1.4100,
                44.4600,
                categorie="mairie",
                code_insee=PRADINES,
                epci=EPCI,
            ),
        ],
    }
    path = tmp_path / "living.gpkg"
    write_tiny_gpkg(path, layers, records)
    return path


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.slow)])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, layers: dict[str, LayerDef]
) -> LivingStore:
    gpkg = _gpkg(tmp_path, layers)
    if request.param == "gpkg":
        return GeoPackageStore(gpkg)
    from geocommuns.publish.postgis import publish

    url = request.getfixturevalue("own_database_url")
    publish(url, gpkg, layers)
    return PostgisStore(url)


def _report(store: LivingStore, layers: dict[str, LayerDef], fid: str, **kw: Any) -> reviews.Item:
    with store.writing() as db:
        return reviews.report(db, layers, layer="equipements", feature_id=fid, **kw)


def test_a_report_reaches_the_queue_of_the_features_commune_and_only_its_reviewers_see_the_email(
    store: LivingStore, layers: dict[str, LayerDef]
) -> None:
    item = _report(
        store, layers, "test-equipements--1", message="  Fermé le lundi\x00 ", reporter_email=EMAIL
    )
    assert (item.kind, item.state, item.commune, item.epci) == ("report", "proposed", CAHORS, EPCI)
    assert item.message == "Fermé le lundi"  # control characters dropped, trimmed
    assert item.payload == {"nom": "Mairie (échantillon)"}
    assert item.submitted_by == reviews.ANONYMOUS
    with store.reading() as db:
        assert [i.reporter_email for i in reviews.list_items(db, CAHORS_SIG)] == [EMAIL]
        assert [i.reporter_email for i in reviews.list_items(db, ADMIN, commune=CAHORS)] == [EMAIL]
        # another commune's contributor, an editor of other layers and a reader see nothing
        assert reviews.list_items(db, PRADINES_SIG) == []
        assert reviews.list_items(db, WIFI_EDITOR) == []
        assert reviews.list_items(db, READER) == []
        assert reviews.list_items(db, ADMIN, commune=PRADINES) == []
        with pytest.raises(ReviewError, match="no item"):
            reviews.get_item(db, PRADINES_SIG, item.id)


def test_a_report_is_marked_done_by_the_commune_once(
    store: LivingStore, layers: dict[str, LayerDef]
) -> None:
    item = _report(store, layers, "test-equipements--1", message="Horaires faux")
    with store.writing() as db:
        with pytest.raises(ReviewError, match="no item"):
            reviews.mark_done(db, PRADINES_SIG, item.id)
        done = reviews.mark_done(db, CAHORS_SIG, item.id, comment="Horaires corrigés")
        assert (done.state, done.decided_by, done.comment) == (
            "done",
            "cahors-sig",
            "Horaires corrigés",
        )
        assert done.decided_at is not None
        with pytest.raises(ReviewError, match="is done"):
            reviews.mark_done(db, ADMIN, item.id)
        assert reviews.list_items(db, ADMIN, state="proposed") == []
        assert [i.id for i in reviews.list_items(db, ADMIN, state="done")] == [item.id]


def test_reports_refused_for_unknown_features_and_bad_text(
    store: LivingStore, layers: dict[str, LayerDef]
) -> None:
    with pytest.raises(ReviewError, match="no feature"):
        _report(store, layers, "nope", message="x")
    with pytest.raises(ReviewError, match="no feature"):
        _report(store, layers, "x" * 201, message="x")
    with store.writing() as db, pytest.raises(ReviewError, match="unknown layer"):
        reviews.report(db, layers, layer="secret", feature_id="test-equipements--1", message="x")
    with pytest.raises(ReviewError, match="empty"):
        _report(store, layers, "test-equipements--1", message=" \x07 ")
    for bad in ("pas une adresse", "a@b", "<x@example.org>", "a" * 250 + "@example.org"):
        with pytest.raises(ReviewError, match="e-mail"):
            _report(store, layers, "test-equipements--1", message="x", reporter_email=bad)
    long = _report(store, layers, "test-equipements--2", message="é" * 5000, reporter_email=" ")
    assert len(long.message) == reviews.MAX_MESSAGE
    assert long.reporter_email is None
    assert long.commune == PRADINES


def test_a_submission_waits_for_the_epci_and_its_submitter_sees_the_decision(
    store: LivingStore,
) -> None:
    with store.writing() as db:
        sub = reviews.submit(
            db,
            kind="submission",
            layer="equipements",
            commune=CAHORS,
            epci=EPCI,
            message="Livraison de mars",
            payload={"features": [{"id": "a"}]},
            submitted_by=CAHORS_SIG.name,
        )
        # the submitter cannot decide it, nor can another commune
        with pytest.raises(ReviewError, match="may not decide"):
            reviews.decide(db, CAHORS_SIG, sub.id, accept=True)
        with pytest.raises(ReviewError, match="no item"):
            reviews.decide(db, PRADINES_SIG, sub.id, accept=True)
        # not done before it is accepted
        with pytest.raises(ReviewError, match="cannot become done"):
            reviews.mark_done(db, ADMIN, sub.id)
        accepted = reviews.decide(db, ADMIN, sub.id, accept=True, comment="Merci")
        assert (accepted.state, accepted.comment, accepted.payload) == (
            "accepted",
            "Merci",
            {"features": [{"id": "a"}]},
        )
        with pytest.raises(ReviewError, match="cannot become refused"):
            reviews.decide(db, ADMIN, sub.id, accept=False)
        assert reviews.mark_done(db, ADMIN, sub.id).state == "done"
        other = reviews.submit(
            db,
            kind="submission",
            layer="wifi",
            commune=CAHORS,
            epci=EPCI,
            message="Bornes",
            submitted_by=CAHORS_SIG.name,
        )
        refused = reviews.decide(
            db, WIFI_EDITOR, other.id, accept=False, comment="Coordonnées inversées"
        )
        assert refused.state == "refused"
    with store.reading() as db:
        mine = reviews.list_items(db, CAHORS_SIG, kind="submission")
        assert [(i.id, i.state, i.comment) for i in mine] == [
            (other.id, "refused", "Coordonnées inversées"),
            (sub.id, "done", "Merci"),
        ]
        assert [i.id for i in reviews.list_items(db, WIFI_EDITOR)] == [other.id]


def test_a_decision_joins_the_callers_transaction(store: LivingStore) -> None:
    """An accepted submission and its application commit together, or not at all."""
    with store.writing() as db:
        sub = reviews.submit(
            db,
            kind="submission",
            layer="equipements",
            commune=CAHORS,
            epci=EPCI,
            message="Correction",
            submitted_by=CAHORS_SIG.name,
        )
    with pytest.raises(RuntimeError), store.writing() as db, db.transaction():
        reviews.decide(db, ADMIN, sub.id, accept=True)
        raise RuntimeError("the application failed")
    with store.reading() as db:
        assert reviews.get_item(db, ADMIN, sub.id).state == "proposed"


def test_unknown_kind_is_refused(tmp_path: Path, layers: dict[str, LayerDef]) -> None:
    store = GeoPackageStore(_gpkg(tmp_path, layers))
    with store.writing() as db, pytest.raises(ReviewError, match="unknown kind"):
        reviews.submit(
            db,
            kind="vote",  # type: ignore[arg-type]
            layer="wifi",
            commune=CAHORS,
            message="x",
            submitted_by="x",
        )


@pytest.mark.slow
def test_the_api_write_login_queues_reports_and_the_read_login_never_sees_them(
    tmp_path: Path, layers: dict[str, LayerDef], own_database_url: str
) -> None:
    """On PostGIS, publish makes the queue; the API's logins get only what they need."""
    import psycopg

    from geocommuns.publish.dbsecurity import service_logins
    from geocommuns.publish.postgis import publish

    publish(own_database_url, _gpkg(tmp_path, layers), layers)
    with psycopg.connect(own_database_url, autocommit=True) as owner:
        urls = service_logins(
            owner, own_database_url, read_login="reviews_lecture", write_login="reviews_ecriture"
        )
    writer = PostgisStore(urls["write"], owner=False)
    item = _report(writer, layers, "test-equipements--1", message="Fermé", reporter_email=EMAIL)
    with writer.writing() as db:
        assert reviews.mark_done(db, ADMIN, item.id).state == "done"
    with psycopg.connect(urls["read"], autocommit=True) as reader:
        for statement in (
            "SELECT reporter_email FROM geocommuns_reviews",
            "SELECT count(*) FROM geocommuns_reviews",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(statement)
    with (
        psycopg.connect(urls["write"], autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("DELETE FROM geocommuns_reviews")
