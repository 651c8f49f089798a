"""Tests of geocommuns.publish.catalogue and .homepage: what a refresh writes for harvesters and people.

The sample GeoPackage goes through the real exports, then the catalogue and the home page
are written from it with a journal entry (a technician's correction) in the living store:
the DCAT-AP document validates against the SEMIC shapes with pySHACL, the records carry
what a catalogue needs, a restricted layer leaves no trace, and the home page shows each
layer's freshness and provenance with every value escaped.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import ROOT
from dcatap import dcat_violations
from ogcserver import sample_records

from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.service import service_from_root
from geocommuns.definitions.territory import Territory
from geocommuns.ingest import journal
from geocommuns.ingest.harmonise import features_frame
from geocommuns.ingest.sqldb import Db
from geocommuns.ingest.store import write_geopackage
from geocommuns.publish.catalogue import layer_states, write_catalogue
from geocommuns.publish.export import export_all
from geocommuns.publish.homepage import HOME_NAME, write_site
from geocommuns.settings import Settings

NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
BBOX = (1.19, 44.29, 1.71, 44.61)
SERVICE = service_from_root(ROOT)
HOSTILE = "<img src=x onerror=alert(1)> & Cie"


@pytest.fixture(scope="module")
def living(
    tmp_path_factory: pytest.TempPathFactory, layers: dict[str, LayerDef]
) -> tuple[Path, Path]:
    """The sample living store with one correction journaled and a hostile attribution; its exports."""
    folder = tmp_path_factory.mktemp("catalogue")
    gpkg = folder / "living.gpkg"
    records = sample_records(layers, all_layers=True)
    records["wifi"][0][2]["attribution"] = HOSTILE
    write_geopackage(
        {k: features_frame(layers[k], r, g) for k, (r, g) in records.items()}, layers, gpkg
    )
    con = sqlite3.connect(gpkg)
    with con:
        db = Db(con, "sqlite")
        journal.ensure_schema(db)
        journal.record(
            db,
            actor="tech-cahors",
            role="contributor",
            via="api",
            layer="wifi",
            feature_id="test-wifi--1",
            action="update",
            before={"nom": "Borne 1"},
            after={"nom": "Borne 1 (mairie)"},
        )
    con.close()
    export = folder / "export"
    export_all(gpkg, layers, export, publisher=SERVICE.epci.name, service=SERVICE)
    return gpkg, export


def test_states_give_counts_sources_and_the_last_correction(
    living: tuple[Path, Path], layers: dict[str, LayerDef]
) -> None:
    gpkg, export = living
    states = layer_states(gpkg, layers, export)
    assert states["equipements"].features == 25 and states["conteneurs"].features == 1
    assert (
        states["wifi"].last_correction is not None and states["equipements"].last_correction is None
    )
    source = states["equipements"].sources[0]
    assert (
        source.source == "test"
        and source.communes == ("Cahors",)
        and source.last_import == "2026-11-22T10:00:00+00:00"
    )
    assert states["equipements"].last_update == "2026-01-15"
    kinds = {d.format for d in states["equipements"].downloads}
    assert {"geojson", "gpkg", "csv", "json"} <= kinds
    assert all(
        d.length == (export / d.path).stat().st_size for d in states["equipements"].downloads
    )


def test_dcat_document_validates_against_dcat_ap_3(
    living: tuple[Path, Path], layers: dict[str, LayerDef]
) -> None:
    from rdflib import Graph, URIRef

    gpkg, export = living
    files = write_catalogue(
        gpkg,
        layers,
        SERVICE,
        export,
        territory_bbox=BBOX,
        base_url="https://sig.example.fr",
        now=NOW,
    )
    graph = Graph().parse(files.jsonld, format="json-ld")
    assert dcat_violations(graph) == []
    dcat = "http://www.w3.org/ns/dcat#"
    datasets = set(
        graph.subjects(
            URIRef("http://www.w3.org/1999/02/22-rdf-syntax-ns#type"), URIRef(dcat + "Dataset")
        )
    )
    assert len(datasets) == 5
    sizes = {str(s): int(float(o)) for s, o in graph.subject_objects(URIRef(dcat + "byteSize"))}
    assert (
        sizes["https://sig.example.fr/telechargements/wifi/wifi.csv#distribution"]
        == (export / "wifi/wifi.csv").stat().st_size
    )
    assert dcat_violations(Graph().parse(files.turtle, format="turtle")) == []


def test_a_dcat_document_missing_a_title_is_refused(
    living: tuple[Path, Path], layers: dict[str, LayerDef]
) -> None:
    """The validation can fail: a dataset stripped of its title is reported."""
    from rdflib import Graph, URIRef

    gpkg, export = living
    files = write_catalogue(gpkg, layers, SERVICE, export, territory_bbox=BBOX, now=NOW)
    graph = Graph().parse(files.turtle, format="turtle")
    graph.remove(
        (
            URIRef(f"{SERVICE.urls.public}/collections/wifi"),
            URIRef("http://purl.org/dc/terms/title"),
            None,
        )
    )
    assert any("collections/wifi" in v for v in dcat_violations(graph))


def test_records_and_dcat_leave_restricted_layers_out(
    living: tuple[Path, Path], layers: dict[str, LayerDef], tmp_path: Path
) -> None:
    gpkg, export = living
    hidden = {
        **layers,
        "telesante": layers["telesante"].model_copy(update={"access": "restricted"}),
    }
    files = write_catalogue(gpkg, hidden, SERVICE, export, territory_bbox=BBOX, now=NOW)
    records = json.loads(files.records.read_text(encoding="utf-8"))["_default"].values()
    assert sorted(r["id"] for r in records) == sorted(k for k in layers if k != "telesante")
    assert "telesante" not in files.jsonld.read_text(encoding="utf-8")
    assert "telesante" not in files.turtle.read_text(encoding="utf-8")
    assert "telesante" not in files.rdfxml.read_text(encoding="utf-8")
    assert layer_states(gpkg, hidden, export)["telesante"].downloads == []


def test_home_page_shows_freshness_and_provenance_escaped(
    living: tuple[Path, Path], layers: dict[str, LayerDef], grand_cahors: Territory, tmp_path: Path
) -> None:
    gpkg, export = living
    settings = Settings(root=ROOT, webmap_dir=tmp_path / "webmap", export_dir=export)
    files, page = write_site(settings, layers, gpkg, now=NOW)
    assert page == tmp_path / "webmap" / HOME_NAME and files.datasets == 5
    html = page.read_text(encoding="utf-8")
    assert '<html lang="fr">' in html and SERVICE.epci.name.replace("'", "&#x27;") in html
    assert html.count('class="gc-layer"') == 5 and "<strong>25</strong> lieux" in html
    # the import of each source, the last correction by a person, the refresh
    assert 'importé le <time datetime="2026-11-22T10:00:00+00:00">22 novembre 2026</time>' in html
    assert "Dernière correction par un technicien : <time" in html
    assert (
        'Dernière mise à jour : <time datetime="2026-12-01T06:00:00+00:00">1 décembre 2026</time>'
        in html
    )
    assert HOSTILE not in html and "&lt;img src=x onerror=alert(1)&gt; &amp; Cie" in html
    for href in (
        "map/",
        "map/indicateurs.html",
        "telechargements/",
        "collections",
        "collections/catalogue/items",
        "catalogue.jsonld",
        "espace/",
    ):
        assert f'href="{href}"' in html
