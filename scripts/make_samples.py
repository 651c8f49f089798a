"""Regenerate the SAMPLE commune deliveries in examples/grand-cahors/sources/ (deterministic, seeded).

Everything written here is sample data invented for the demo and the tests: names,
addresses and attributes are made up; commune names, INSEE codes and the town-hall
positions used as anchors are real facts. Each delivery mimics a format communes really
send, with its usual quirks, and a few deliberate flaws (see examples/grand-cahors/sources/README.md).

Usage: .venv/bin/python scripts/make_samples.py
"""

from __future__ import annotations

import datetime as dt
import math
import random
import re
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

import geopandas as gpd
import pandas as pd
import shapely
from pyproj import Transformer

from geocommuns.definitions.territory import territory_from_spec

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "examples" / "grand-cahors" / "sources"
RNG = random.Random(46042)
#: Timestamp written into the XLSX and DBF headers (their bytes do not depend on the day).
FIXED = dt.datetime(2026, 10, 1, 8, 0, 0)
TERRITORY = territory_from_spec("epci:200023737")
COMMUNES = TERRITORY.communes.set_index("code_insee")
MAIRIES = {m.code_insee: (m.lon, m.lat) for m in TERRITORY.mairies()}
# The annuaire places Pradines' town hall inside Cahors: anchor Pradines on its centre.
MAIRIES["46224"] = tuple(COMMUNES.loc["46224", "geometry"].representative_point().coords[0])
L93 = Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True)
CC44 = Transformer.from_crs("EPSG:4326", "EPSG:3944", always_xy=True)
STREETS = [
    "rue Nationale", "boulevard Léon Gambetta", "rue du Château du Roi", "quai Champollion",
    "avenue Jean Jaurès", "place François Mitterrand", "rue des Écoles", "chemin de la Croix",
    "route de Villefranche", "rue de l'Église", "allée des Tilleuls", "impasse du Lot",
]


def point_in(insee: str, spread: float = 0.01) -> tuple[float, float]:
    """A point inside commune ``insee``, near its town hall."""
    polygon = COMMUNES.loc[insee, "geometry"]
    lon0, lat0 = MAIRIES[insee]
    for _ in range(500):
        lon = lon0 + RNG.uniform(-spread, spread)
        lat = lat0 + RNG.uniform(-spread * 0.7, spread * 0.7)
        if polygon.contains(shapely.Point(lon, lat)):
            return round(lon, 6), round(lat, 6)
    return lon0, lat0


def fix_xlsx_timestamps(path: Path) -> None:
    """Give a workbook fixed zip and document timestamps, so reruns write identical bytes."""
    stamp = FIXED.strftime("%Y-%m-%dT%H:%M:%SZ")
    with zipfile.ZipFile(path) as src:
        items = [(i.filename, src.read(i.filename)) for i in src.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, data in items:
            if name == "docProps/core.xml":
                data = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp.encode(), data)
            dst.writestr(zipfile.ZipInfo(name, date_time=FIXED.timetuple()[:6]), data,
                         compress_type=zipfile.ZIP_DEFLATED)


def fix_dbf_date(path: Path) -> None:
    """Give a DBF header a fixed 'last update' date (bytes 1-3), so reruns write identical bytes."""
    data = bytearray(path.read_bytes())
    data[1:4] = bytes([FIXED.year - 1900, FIXED.month, FIXED.day])
    path.write_bytes(bytes(data))


def address() -> str:
    """An invented street address."""
    return f"{RNG.randint(1, 120)} {RNG.choice(STREETS)}"


def write_yaml(folder: Path, name: str, text: str) -> None:
    """Write a source declaration, labelled as sample data."""
    folder.mkdir(parents=True, exist_ok=True)
    header = "# SAMPLE DATA: an invented delivery for the demo and tests (see ../README.md).\n"
    (folder / name).write_text(header + text.lstrip(), encoding="utf-8")


def cahors_conteneurs() -> None:
    """Cahors: recycling containers, cp1252 ';' CSV from Excel, decimal commas, Lambert-93."""
    folder = SOURCES / "46042-cahors"
    rows = []
    kinds = ["Verre", "Papier", "Emballages", "Textile", "Verre", "Emballages"]
    poses = ["Aérien", "Enterré", "Semi-enterré"]
    for i in range(1, 25):
        lon, lat = point_in("46042", 0.012)
        x, y = L93.transform(lon, lat)
        rows.append({
            "N° PAV": f"PAV-{i:03d}",
            "Libellé": f"Point d'apport {RNG.choice(STREETS).split(' ', 1)[1].title()}",
            "Flux": kinds[i % len(kinds)],
            "Type pose": RNG.choice(poses),
            "Adresse": address(),
            "CP": "46000",
            "X_L93": f"{x:.2f}".replace(".", ","),
            "Y_L93": f"{y:.2f}".replace(".", ","),
            "Nb bacs": str(RNG.randint(1, 3)),
            "Date MAJ": "15/09/2026",
        })
    rows[3]["CP"] = "4600"  # lost leading zero... of a wrong code: repaired with a warning
    rows[7]["Libellé"] = ""  # missing required name: rejected
    rows[11]["Flux"] = "Encombrants"  # not a waste stream of this layer: rejected
    rows[15]["X_L93"], rows[15]["Y_L93"] = "612345,00", "6412345,00"  # outside Grand Cahors
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(folder / "pav_cahors.csv", sep=";", index=False, encoding="cp1252")
    write_yaml(folder, "conteneurs.yml", """
layer: conteneurs
path: pav_cahors.csv
producer: Ville de Cahors
licence: etalab-2.0
geometry: {x: X_L93, y: Y_L93, crs: "EPSG:2154"}
mapping:
  source_id: N° PAV
  nom: Libellé
  flux: Flux
  implantation: Type pose
  code_postal: CP
  nb_conteneurs: Nb bacs
  date_maj: Date MAJ
values:
  implantation: {"Aérien": aerien, "Enterré": enterre, "Semi-enterré": semi_enterre}
constants:
  categorie: pav
  gestionnaire: Grand Cahors – service déchets
""")


def pradines_equipements() -> None:
    """Pradines: public equipment, Lambert-93 shapefile in cp1252 WITHOUT a .cpg file."""
    folder = SOURCES / "46224-pradines"
    folder.mkdir(parents=True, exist_ok=True)
    items = [
        ("Salle des fêtes de Pradines", "Salle des fêtes", "Culture"),
        ("Gymnase municipal", "Gymnase", "Sport"),
        ("Stade de Labéraudie", "Stade", "Sport"),
        ("Médiathèque", "Médiathèque", "Culture"),
        ("École élémentaire", "École", "Enseignement"),
        ("Court de tennis couvert", "Court de tennis", "Sport"),
        ("Espace jeunes", "Centre social", "Social"),
        ("Cimetière communal", "Cimetière", "Funéraire"),
    ]
    records, geoms = [], []
    for i, (name, kind, theme) in enumerate(items, start=1):
        lon, lat = point_in("46224", 0.01)
        records.append({
            "CODE": f"PRA{i:02d}", "NOM": name, "NATURE": kind, "THEME": theme,
            "ADRESSE": address(), "TEL": "05 65 22 21 90" if i % 2 else "",
            "HORAIRES": "Mo-Fr 09:00-12:00,14:00-18:00" if i % 3 == 0 else "",
            "MAJ": "2026-06-30",
        })
        geoms.append(shapely.Point(*L93.transform(lon, lat)))
    records[5]["TEL"] = "05 65 22"  # too short: published without the number, with a warning
    gdf = gpd.GeoDataFrame(records, geometry=geoms, crs="EPSG:2154")
    gdf.to_file(folder / "equipements_pradines.shp", encoding="cp1252", engine="pyogrio")
    (folder / "equipements_pradines.cpg").unlink(missing_ok=True)
    fix_dbf_date(folder / "equipements_pradines.dbf")
    write_yaml(folder, "equipements.yml", """
layer: equipements
path: equipements_pradines.shp
producer: Mairie de Pradines
licence: etalab-2.0
mapping:
  source_id: CODE
  nom: NOM
  type: NATURE
  categorie: THEME
  adresse: ADRESSE
  telephone: TEL
  horaires: HORAIRES
  date_maj: MAJ
values:
  categorie: {"Culture": culture, "Sport": sport, "Enseignement": enseignement, "Social": social}
constants:
  gestionnaire: Commune de Pradines
  code_postal: "46090"
""")


def mercues_wifi() -> None:
    """Mercuès: wifi hotspots as GeoJSON (WGS84), with MAC addresses (sensitive)."""
    folder = SOURCES / "46191-mercues"
    features = []
    sites = ["Mairie", "Place du village", "Salle polyvalente", "Bibliothèque", "Stade", "Gare"]
    for i, site in enumerate(sites, start=1):
        lon, lat = point_in("46191", 0.008)
        features.append({
            "id_borne": f"MER-WIFI-{i}",
            "site": f"Wifi public – {site}",
            "ssid": "WiFi4EU" if i % 2 else "Mercues-Public",
            "inout": "Intérieur" if site in {"Mairie", "Bibliothèque"} else "Extérieur",
            "cout": "Gratuit",
            "programme": "WiFi4EU" if i % 2 else "Commune",
            "date_mes": "12/03/2022",
            "mac": f"3C:84:6A:12:{i:02X}:{(i * 37) % 256:02X}",
            "maj": "2026-05-20",
            "geometry": shapely.Point(lon, lat),
        })
    folder.mkdir(parents=True, exist_ok=True)
    gpd.GeoDataFrame(features, crs="EPSG:4326").to_file(
        folder / "bornes_wifi.geojson", driver="GeoJSON", engine="pyogrio"
    )
    write_yaml(folder, "wifi.yml", """
layer: wifi
path: bornes_wifi.geojson
producer: Commune de Mercuès
licence: etalab-2.0
mapping:
  source_id: id_borne
  nom: site
  ssid: ssid
  categorie: inout
  gratuit: cout
  programme: programme
  date_mise_en_service: date_mes
  adresse_mac: mac
  date_maj: maj
values:
  categorie: {"Intérieur": borne_interieure, "Extérieur": borne_exterieure}
""")


def douelle_tiers_lieux() -> None:
    """Douelle (for the EPCI): tiers-lieux in an XLSX workbook with lon/lat columns."""
    folder = SOURCES / "46088-douelle"
    rows = []
    places = [
        ("46088", "La Cale – coworking", "Coworking", "Payant"),
        ("46042", "Fablab du Grand Cahors", "Fablab", "Gratuit sous condition"),
        ("46042", "Espace numérique Cahors centre", "Espace numérique", "Gratuit"),
        ("46224", "Atelier partagé des Matelots", "Atelier partagé", "Payant"),
        ("46191", "Télécentre de Mercuès", "Télécentre", "Payant"),
        ("46256", "Tiers-lieu de Saint-Cirq-Lapopie", "Hybride", "Gratuit"),
    ]
    for i, (insee, name, kind, fee) in enumerate(places, start=1):
        lon, lat = point_in(insee, 0.006)
        rows.append({
            "Identifiant": f"TL{i:02d}", "Nom du lieu": name, "Typologie": kind, "Frais": fee,
            "Adresse": address(), "Code postal": 46000 if insee == "46042" else 46090,
            "Longitude": lon, "Latitude": lat, "Téléphone": f"0565{RNG.randint(100000, 999999)}",
            "Contact": f"Contact {i} – 06 {RNG.randint(10, 99)} {RNG.randint(10, 99)} 00 00",
            "Mise à jour": pd.Timestamp("2026-04-02"),
        })
    rows[2]["Typologie"] = "Salle de réunion"  # not a tiers-lieu category: rejected
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_excel(folder / "tiers_lieux.xlsx", index=False, engine="openpyxl")
    fix_xlsx_timestamps(folder / "tiers_lieux.xlsx")
    write_yaml(folder, "tiers_lieux.yml", """
layer: tiers_lieux
path: tiers_lieux.xlsx
producer: Grand Cahors – mission numérique
licence: etalab-2.0
geometry: {x: Longitude, y: Latitude, crs: "EPSG:4326"}
mapping:
  source_id: Identifiant
  nom: Nom du lieu
  categorie: Typologie
  frais: Frais
  code_postal: Code postal
  telephone: Téléphone
  contact_personne: Contact
  date_maj: Mise à jour
values:
  frais: {"Gratuit sous condition": gratuit_sous_condition}
""")


def arcambal_telesante() -> None:
    """Arcambal (for the EPCI): telehealth sites, UTF-8 CSV with a "lat, lon" column."""
    folder = SOURCES / "46007-arcambal"
    places = [
        ("46007", "Cabine de téléconsultation – pharmacie d'Arcambal", "Cabine", "Pharmacie"),
        ("46042", "Maison de santé pluriprofessionnelle de Cahors", "MSP", "Autre"),
        ("46042", "Salle de téléconsultation – France services", "Salle", "France services"),
        ("46224", "Centre de santé de Pradines", "Centre de santé", "Autre"),
        ("46149", "Point téléassistance de Lamagdelaine", "Point téléassistance", "Mairie"),
        ("46007", "Domicile abonné n°1 (téléassistance)", "Domicile abonné", "Autre"),
    ]
    rows = []
    for i, (insee, name, kind, host) in enumerate(places, start=1):
        lon, lat = point_in(insee, 0.006)
        rows.append({
            "id": f"TS-{i}", "nom": name, "type": kind, "hote": host,
            "coordonnees": f"{lat}, {lon}",
            "services": "téléconsultation" if i != 5 else "téléassistance",
            "rdv": "oui" if i % 2 else "non",
            "tel_referent": f"06 {RNG.randint(10, 99)} {RNG.randint(10, 99)} {RNG.randint(10, 99)} 12",
            "maj": "2026-10-01",
        })
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(folder / "telesante.csv", index=False, encoding="utf-8-sig")
    write_yaml(folder, "telesante.yml", """
layer: telesante
path: telesante.csv
producer: Grand Cahors – CIAS
licence: etalab-2.0
geometry: {latlon: coordonnees}
mapping:
  source_id: id
  categorie: type
  lieu_hote_type: hote
  services_telesante: services
  sur_rdv: rdv
  referent_telephone: tel_referent
  date_maj: maj
values:
  categorie:
    Cabine: cabine_teleconsultation
    Salle: salle_teleconsultation
    MSP: msp
    Centre de santé: centre_sante
    Point téléassistance: point_teleassistance
    Domicile abonné: domicile_abonne
  lieu_hote_type: {"France services": france_services}
""")


def saint_gery_conteneurs() -> None:
    """Saint Géry-Vers: containers, CSV with CC44 coordinates and no CRS declared."""
    folder = SOURCES / "46268-saint-gery-vers"
    rows = []
    for i in range(1, 9):
        lon, lat = point_in("46268", 0.01)
        x, y = CC44.transform(lon, lat)
        rows.append({
            "id": f"SGV{i}", "nom": f"Colonne {['verre', 'papier', 'multi'][i % 3]} {i}",
            "dechet": ["Verre", "Papier", "Verre + emballages"][i % 3],
            "x": round(x, 1), "y": round(y, 1), "maj": "01/07/2026",
        })
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(folder / "colonnes.csv", index=False, encoding="utf-8")
    write_yaml(folder, "conteneurs.yml", """
layer: conteneurs
path: colonnes.csv
producer: Commune de Saint Géry-Vers
licence: etalab-2.0
# No CRS declared on purpose: geocommuns detects CC44 (EPSG:3944) and says so.
mapping:
  flux: dechet
constants:
  categorie: pav
  implantation: aerien
""")


def offset(lon: float, lat: float, metres: float, rng: random.Random) -> tuple[float, float]:
    """A position ``metres`` away from (lon, lat) in a random direction."""
    bearing = rng.uniform(0, 2 * math.pi)
    dlat = metres * math.cos(bearing) / 111_320
    dlon = metres * math.sin(bearing) / (111_320 * math.cos(math.radians(lat)))
    return round(lon + dlon, 7), round(lat + dlat, 7)


def osm_xml(objects: list[tuple[str, tuple[float, float] | list[tuple[float, float]], dict[str, str]]]) -> str:
    """An OSM XML document: nodes, and closed ways for the objects given as rings."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<!-- SAMPLE DATA written by scripts/make_samples.py: invented OpenStreetMap-style objects '
        "for the demo and the tests, not an extract of OpenStreetMap. -->",
        '<osm version="0.6" generator="geocommuns make_samples.py">',
    ]
    stamp = 'version="1" timestamp="2026-07-14T10:00:00Z"'
    node_id, way_id = 1000, 5000
    for _, where, tags in objects:
        tag_lines = "".join(
            f'<tag k="{k}" v="{xml_escape(v, {chr(34): "&quot;"})}"/>' for k, v in tags.items()
        )
        if isinstance(where, tuple):
            node_id += 1
            lines.append(
                f'  <node id="{node_id}" lat="{where[1]}" lon="{where[0]}" {stamp}>{tag_lines}</node>'
            )
            continue
        refs = []
        for lon, lat in where:
            node_id += 1
            lines.append(f'  <node id="{node_id}" lat="{lat}" lon="{lon}" {stamp}/>')
            refs.append(node_id)
        way_id += 1
        nds = "".join(f'<nd ref="{r}"/>' for r in [*refs, refs[0]])
        lines.append(f'  <way id="{way_id}" {stamp}>{nds}{tag_lines}</way>')
    lines.append("</osm>")
    return "\n".join(lines) + "\n"


def square(lon: float, lat: float, half_m: float) -> list[tuple[float, float]]:
    """The corners of a square of side ``2 * half_m`` metres around (lon, lat)."""
    dlat = half_m / 111_320
    dlon = half_m / (111_320 * math.cos(math.radians(lat)))
    return [(round(lon + a * dlon, 7), round(lat + b * dlat, 7)) for a, b in
            ((-1, -1), (1, -1), (1, 1), (-1, 1))]


def osm_cahors() -> None:
    """OpenStreetMap-style objects of the Grand Cahors, some overlapping the deliveries.

    Written after the deliveries and from their files, so that some objects sit a few
    metres from a delivered feature with a slightly different name (the conflation merges
    them), some are uncertain or of another category (listed, not merged), and some exist
    only here.
    """
    rng = random.Random(46190)
    folder = SOURCES / "osm-cahors"
    to_wgs84 = Transformer.from_crs("EPSG:2154", "EPSG:4326", always_xy=True)
    pav = pd.read_csv(SOURCES / "46042-cahors" / "pav_cahors.csv", sep=";", encoding="cp1252",
                      dtype=str).set_index("N° PAV")

    def pav_at(ref: str) -> tuple[float, float]:
        x, y = (float(pav.loc[ref, c].replace(",", ".")) for c in ("X_L93", "Y_L93"))
        return to_wgs84.transform(x, y)

    wifi = gpd.read_file(SOURCES / "46191-mercues" / "bornes_wifi.geojson").set_index("id_borne")
    pradines = gpd.read_file(SOURCES / "46224-pradines" / "equipements_pradines.shp")
    pradines = pradines.to_crs("EPSG:4326").set_index("CODE")
    tiers = pd.read_excel(SOURCES / "46088-douelle" / "tiers_lieux.xlsx").set_index("Identifiant")

    def near(point: tuple[float, float], metres: float) -> tuple[float, float]:
        return offset(point[0], point[1], metres, rng)

    def geom_at(frame: gpd.GeoDataFrame, key: str) -> tuple[float, float]:
        g = frame.loc[key, "geometry"]
        return g.x, g.y

    hours = "Mo-Fr 08:30-12:00,13:30-17:30"
    objects = [
        # town halls near the annuaire's positions (reference-mairies)
        ("townhall", near(MAIRIES["46042"], 12), {
            "amenity": "townhall", "name": "Mairie de Cahors", "wheelchair": "yes",
            "opening_hours": hours}),
        ("townhall", near(MAIRIES["46191"], 20), {
            "amenity": "townhall", "name": "Mairie", "wheelchair": "limited"}),
        ("townhall", near(MAIRIES["46007"], 8), {
            "amenity": "townhall", "name": "Mairie d'Arcambal", "website": "https://www.arcambal.fr"}),
        ("townhall", near(MAIRIES["46268"], 15), {
            "amenity": "townhall", "name": "Mairie de Saint-Géry-Vers",
            "website": "https://www.saint-gery-vers.fr", "wheelchair": "yes"}),
        ("townhall", near(MAIRIES["46088"], 10), {"amenity": "townhall", "name": "Hôtel de ville"}),
        # Pradines' equipment: a match, an uncertain pair, another category
        ("gym", near(geom_at(pradines, "PRA02"), 15), {
            "leisure": "sports_centre", "name": "Gymnase de Pradines", "wheelchair": "yes",
            "opening_hours": "Mo-Sa 08:00-22:00"}),
        ("library", near(geom_at(pradines, "PRA04"), 50), {
            "amenity": "library", "name": "Médiathèque Robert-Doisneau"}),
        ("hall", near(geom_at(pradines, "PRA01"), 10), {
            "amenity": "community_centre", "name": "Salle des fêtes"}),
        # only in OpenStreetMap
        ("pool", square(*near(MAIRIES["46042"], 700), 25), {
            "leisure": "swimming_pool", "name": "Piscine municipale de Cahors", "access": "yes"}),
        ("museum", near(MAIRIES["46042"], 350), {"tourism": "museum", "name": "Musée Henri-Martin"}),
        # recycling containers near Cahors' delivery
        ("pav", near(pav_at("PAV-001"), 6), {
            "amenity": "recycling", "recycling_type": "container", "name": "Point d'apport volontaire Nationale",
            "recycling:paper": "yes", "operator": "Grand Cahors", "location": "overground"}),
        ("pav", near(pav_at("PAV-005"), 4), {
            "amenity": "recycling", "recycling_type": "container",
            "name": "Point d'apport " + pav.loc["PAV-005", "Libellé"].split(" ", 2)[2],
            "recycling:glass_bottles": "yes"}),
        ("pav", near(pav_at("PAV-010"), 9), {
            "amenity": "recycling", "recycling_type": "container",
            "name": pav.loc["PAV-010", "Libellé"], "recycling:clothes": "yes", "recycling:shoes": "yes"}),
        ("pav", near(pav_at("PAV-020"), 350), {
            "amenity": "recycling", "recycling_type": "container", "name": "Colonne à verre du stade",
            "recycling:glass_bottles": "yes"}),
        ("centre", square(*near(MAIRIES["46149"], 900), 30), {
            "amenity": "recycling", "recycling_type": "centre", "name": "Déchèterie de Lamagdelaine",
            "opening_hours": "Mo-Sa 09:00-12:00,14:00-18:00", "recycling:green_waste": "yes",
            "recycling:glass_bottles": "yes", "recycling:paper": "yes", "recycling:batteries": "yes"}),
        # Mercuès' wifi hotspots
        ("wifi", near(geom_at(wifi, "MER-WIFI-1"), 10), {
            "internet_access": "wlan", "name": "Mairie de Mercuès", "internet_access:fee": "no",
            "internet_access:ssid": "WiFi4EU", "opening_hours": "Mo-We 09:00-12:00"}),
        ("wifi", near(geom_at(wifi, "MER-WIFI-4"), 15), {
            "internet_access": "wlan", "name": "Bibliothèque", "internet_access:fee": "no"}),
        ("wifi", near(MAIRIES["46191"], 900), {
            "internet_access": "wlan", "name": "Camping de Mercuès", "internet_access:fee": "customers"}),
        # tiers-lieux
        ("cowork", near((tiers.loc["TL01", "Longitude"], tiers.loc["TL01", "Latitude"]), 10), {
            "office": "coworking", "name": "La Cale", "website": "https://lacale.example.org",
            "opening_hours": "Mo-Fr 09:00-18:00"}),
        ("cowork", near(MAIRIES["46042"], 450), {
            "amenity": "coworking_space", "name": "Cowork du Boulevard", "fee": "yes"}),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "grand-cahors-sample.osm").write_text(osm_xml(objects), encoding="utf-8")
    for layer in ("equipements", "conteneurs", "wifi", "tiers_lieux"):
        write_yaml(folder, f"{layer}.yml", f"""
layer: {layer}
kind: osm
path: grand-cahors-sample.osm
producer: OpenStreetMap contributors (SAMPLE objects written by scripts/make_samples.py)
""")


def main() -> None:
    """Write every sample delivery."""
    cahors_conteneurs()
    pradines_equipements()
    mercues_wifi()
    douelle_tiers_lieux()
    arcambal_telesante()
    saint_gery_conteneurs()
    osm_cahors()


if __name__ == "__main__":
    main()
