"""The service file model: the repository's own file is valid; errors name the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from geocommuns.definitions.service import SERVICE_FILE, service_from_file, service_from_root
from geocommuns.errors import ServiceDefinitionError

ROOT = Path(__file__).resolve().parents[2]


def _raw() -> dict[str, object]:
    loaded = yaml.safe_load((ROOT / SERVICE_FILE).read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _write(tmp_path: Path, raw: dict[str, object]) -> Path:
    path = tmp_path / SERVICE_FILE
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_repository_service_file_is_valid() -> None:
    service = service_from_root(ROOT)
    assert service.epci.siren == "200023737"
    assert service.languages[0] == "fr"
    assert {basemap.kind for basemap in service.basemaps} == {"xyz", "wmts", "outlines"}


@pytest.mark.parametrize(
    ("change", "key", "hint"),
    [
        ({"epci": {"name": "X", "siren": "12345"}}, "epci.siren", "9 digits"),
        ({"epci": {"name": "X", "siren": "200023737", "siret": "99999999900014"}}, "epci", "SIREN"),
        ({"territory": "cahors"}, "territory", "epci:SIREN"),
        ({"languages": ["en", "fr"]}, "languages", "French comes first"),
        ({"embedding": {"frame_ancestors": ["www.douelle.fr/page"]}}, "frame_ancestors", "scheme"),
        (
            {
                "basemaps": [
                    {"id": "t", "kind": "xyz", "title": {"fr": "T"}, "url": "https://t/{z}"}
                ]
            },
            "basemaps.0",
            "{x}",
        ),
        (
            {
                "basemaps": [
                    {
                        "id": "t",
                        "kind": "xyz",
                        "title": {"fr": "T"},
                        "url": "https://t/{z}/{x}/{y}.png",
                    }
                ]
            },
            "basemaps.0",
            "attribution",
        ),
        ({"colour": "blue"}, "colour", "Extra inputs"),
        ({"territory": "communes:46042,46088"}, "territory", "joined by '+'"),
        ({"epci": {"name": "X", "siret": "20002373700014"}}, "epci", "SIREN"),
    ],
)
def test_errors_name_the_key_and_the_fix(
    tmp_path: Path, change: dict[str, object], key: str, hint: str
) -> None:
    raw = _raw() | change
    with pytest.raises(ServiceDefinitionError) as caught:
        service_from_file(_write(tmp_path, raw))
    message = str(caught.value)
    assert key in message
    assert hint in message


def test_missing_and_broken_files_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ServiceDefinitionError, match="geocommuns init"):
        service_from_root(tmp_path)
    (tmp_path / SERVICE_FILE).write_text("territory: [epci\n", encoding="utf-8")
    with pytest.raises(ServiceDefinitionError, match="not valid YAML"):
        service_from_root(tmp_path)


def test_territory_specs_as_the_territory_module_reads_them(tmp_path: Path) -> None:
    for spec in ("epci:123456789", "departement:2A", "commune:46042+commune:46088", "region:76"):
        assert service_from_file(_write(tmp_path, _raw() | {"territory": spec})).territory == spec


def test_a_publisher_without_siren_until_it_is_known(tmp_path: Path) -> None:
    raw = _raw() | {"territory": "departement:46", "epci": {"name": "Département du Lot"}}
    assert service_from_file(_write(tmp_path, raw)).epci.siren is None
