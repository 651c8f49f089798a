"""Settings: territory and folders come from the project's service file unless overridden."""

from __future__ import annotations

from pathlib import Path

import pytest

from geocommuns.definitions.service import service_from_root
from geocommuns.errors import ServiceDefinitionError
from geocommuns.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_developer_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ROOT", "TERRITORY", "LAYERS_DIR", "SOURCES_DIR"):
        monkeypatch.delenv(f"GEOCOMMUNS_{name}", raising=False)


def test_the_service_file_gives_territory_and_folders() -> None:
    service = service_from_root(ROOT)
    settings = Settings(_env_file=None, root=ROOT)
    assert settings.territory == service.territory
    assert settings.layers_dir == service.paths.layers
    assert settings.sources_dir == service.paths.sources == Path("examples/grand-cahors/sources")


def test_environment_and_arguments_override_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOCOMMUNS_TERRITORY", "departement:46")
    monkeypatch.setenv("GEOCOMMUNS_SOURCES_DIR", "/elsewhere")
    settings = Settings(_env_file=None, root=ROOT, layers_dir=Path("other"))
    assert (settings.territory, settings.sources_dir, settings.layers_dir) == (
        "departement:46", Path("/elsewhere"), Path("other")
    )


def test_a_project_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "geocommuns.yml").write_text(
        "territory: commune:46042\npaths: {layers: couches, sources: livraisons}\n", encoding="utf-8"
    )
    settings = Settings(_env_file=None, root=tmp_path)
    assert (settings.territory, settings.layers_dir, settings.sources_dir) == (
        "commune:46042", Path("couches"), Path("livraisons")
    )
    (tmp_path / "geocommuns.yml").write_text("territory: [", encoding="utf-8")
    with pytest.raises(ServiceDefinitionError, match="not valid YAML"):
        Settings(_env_file=None, root=tmp_path)


def test_a_scratch_folder_without_service_file_uses_the_example_territory(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, root=tmp_path)
    assert settings.territory == service_from_root(ROOT).territory
    assert settings.sources_dir == Path("geodata/sources")
