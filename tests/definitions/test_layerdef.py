"""Tests of geocommuns.definitions.layerdef: shipped layers load, malformed files fail clearly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import LAYERS_DIR

from geocommuns.definitions.layerdef import LayerDef, layer_from_yaml, layers_from_dir
from geocommuns.errors import LayerDefinitionError

SHIPPED = sorted(p.stem for p in LAYERS_DIR.glob("*.yml") if not p.name.startswith("_"))


def test_five_layers_are_shipped() -> None:
    assert SHIPPED == ["conteneurs", "equipements", "telesante", "tiers_lieux", "wifi"]


@pytest.mark.parametrize("layer_id", SHIPPED)
def test_every_shipped_layer_loads(layers: dict[str, LayerDef], layer_id: str) -> None:
    layer = layers[layer_id]
    assert layer.id == layer_id
    # _common.yml fields come first, then the layer's own fields.
    assert layer.field_names[:3] == ["id", "nom", "code_insee"]
    assert "categorie" in layer.field_names
    assert layer.field("nom").required
    assert layer.style.colour.startswith("#")
    assert len(set(layer.field_names)) == len(layer.field_names)


def test_sensitive_fields_are_not_public(layers: dict[str, LayerDef]) -> None:
    wifi = layers["wifi"]
    assert wifi.sensitive_fields == ["adresse_mac"]
    assert "adresse_mac" not in [f.name for f in wifi.public_fields]
    assert "referent_telephone" in layers["telesante"].sensitive_fields


def test_field_lookup_of_unknown_name_raises(layers: dict[str, LayerDef]) -> None:
    with pytest.raises(KeyError, match="no field 'nope'"):
        layers["wifi"].field("nope")


# ---------------------------------------------------------------- malformed files


def _copy_layers(tmp_path: Path) -> Path:
    target = tmp_path / "layers"
    shutil.copytree(LAYERS_DIR, target)
    return target


def _edit(path: Path, change: object) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)  # type: ignore[operator]
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _load_error(directory: Path) -> str:
    with pytest.raises(LayerDefinitionError) as info:
        layers_from_dir(directory)
    return str(info.value)


def test_unknown_key_names_file_key_and_fix(tmp_path: Path) -> None:
    directory = _copy_layers(tmp_path)
    _edit(directory / "wifi.yml", lambda d: d.update(colour="#ff0000"))
    message = _load_error(directory)
    assert "wifi.yml" in message
    assert "colour" in message
    assert "remove this key or fix its spelling" in message


def test_unknown_key_inside_a_field_names_the_field(tmp_path: Path) -> None:
    directory = _copy_layers(tmp_path)
    _edit(directory / "wifi.yml", lambda d: d["fields"][1].update(requried=True))
    message = _load_error(directory)
    assert "wifi.yml" in message
    assert "(ssid)" in message
    assert "requried" in message
    assert "remove this key or fix its spelling" in message


def test_missing_key_names_file_key_and_fix(tmp_path: Path) -> None:
    directory = _copy_layers(tmp_path)
    _edit(directory / "conteneurs.yml", lambda d: d.pop("licence"))
    message = _load_error(directory)
    assert "conteneurs.yml" in message
    assert "licence" in message
    assert "add this key" in message


def test_bad_colour_names_file_key_and_fix(tmp_path: Path) -> None:
    directory = _copy_layers(tmp_path)
    _edit(directory / "telesante.yml", lambda d: d["style"].update(colour="red"))
    message = _load_error(directory)
    assert "telesante.yml" in message
    assert "style.colour" in message
    assert "'red'" in message
    assert "hex colour such as '#1b6ca8'" in message


def test_bad_yaml_names_file_and_fix(tmp_path: Path) -> None:
    directory = _copy_layers(tmp_path)
    path = directory / "tiers_lieux.yml"
    path.write_text(path.read_text(encoding="utf-8") + "\n  : - [unbalanced\n", encoding="utf-8")
    message = _load_error(directory)
    assert "tiers_lieux.yml" in message
    assert "not valid YAML" in message
    assert "fix the indentation or quoting" in message


def test_yaml_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "wifi.yml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(LayerDefinitionError, match=r"wifi\.yml: must hold a mapping"):
        layer_from_yaml(path)


def test_id_not_matching_file_name(tmp_path: Path) -> None:
    directory = _copy_layers(tmp_path)
    (directory / "wifi.yml").rename(directory / "hotspots.yml")
    message = _load_error(directory)
    assert "hotspots.yml" in message
    assert "'wifi'" in message
    assert "make them equal" in message


def test_bad_field_type_and_pattern(tmp_path: Path) -> None:
    directory = _copy_layers(tmp_path)

    def change(d: dict) -> None:
        d["fields"][0]["type"] = "text"
        d["fields"][2]["constraints"] = {"pattern": "([a-z"}

    _edit(directory / "wifi.yml", change)
    message = _load_error(directory)
    assert "wifi.yml" in message
    assert "2 problem(s)" in message
    assert "(categorie).type" in message
    assert "(gratuit).constraints.pattern" in message
    assert "not a valid regular expression" in message


def test_field_declared_twice(tmp_path: Path) -> None:
    directory = _copy_layers(tmp_path)
    _edit(directory / "wifi.yml", lambda d: d["fields"].append(dict(d["fields"][0])))
    message = _load_error(directory)
    assert "wifi.yml" in message
    assert "fields declared twice: categorie" in message


def test_exclude_rule_on_unknown_field(tmp_path: Path) -> None:
    directory = _copy_layers(tmp_path)
    _edit(
        directory / "telesante.yml",
        lambda d: d["exclude"][0].update(field="type_site"),
    )
    message = _load_error(directory)
    assert "telesante.yml" in message
    assert "unknown field 'type_site'" in message


def test_missing_directory_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(LayerDefinitionError, match="no such folder"):
        layers_from_dir(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LayerDefinitionError, match="holds no layer definition"):
        layers_from_dir(tmp_path / "empty")


def test_layer_without_common(tmp_path: Path) -> None:
    directory = _copy_layers(tmp_path)
    (directory / "_common.yml").unlink()
    message = _load_error(directory)
    # Without the shared fields, osm.tags points at the missing 'nom' field.
    assert "conteneurs.yml" in message
    assert "osm.tags maps 'name' to unknown field 'nom'" in message


# ---------------------------------------------------------------- the citizen map's declarations


def test_every_shipped_layer_declares_its_popup_and_english_labels(layers: dict[str, LayerDef]) -> None:
    for layer in layers.values():
        assert layer.popup, layer.id
        assert layer.label_in("en") != layer.style.label, layer.id
        for line in layer.popup:
            field = layer.field(line.field)
            assert not field.sensitive
            assert field.en is not None or line.label, (layer.id, field.name)
        for name in layer.filter_names:
            if name == "ouvert_maintenant":
                continue
            field = layer.field(name)
            for value in field.constraints.enum or []:
                assert field.label(value) and field.label(value, "en"), (layer.id, name, value)
    flux = layers["conteneurs"].field("flux")
    assert flux.label("verre") == "Verre" and flux.label("verre", "en") == "Glass"
    assert layers["conteneurs"].popup[1].format_for(flux) == "list"
    assert "ouvert_maintenant" in layers["equipements"].filter_names
    assert "france_services" in layers["equipements"].filter_names
    assert "gratuit" in layers["wifi"].filter_names


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["popup"].append({"field": "adresse_mac"}), "sensitive field 'adresse_mac'"),
        (lambda d: d["popup"].append({"field": "nope"}), "popup[9] names unknown field 'nope'"),
        (lambda d: d["popup"].append({"field": "ssid", "format": "yesno"}), "format 'yesno' cannot show a array field"),
        (lambda d: d.update(filters=["ssid"]), "filters: 'ssid' is not a public enum or boolean field"),
        (lambda d: d.update(filters=["adresse_mac"]), "filters: 'adresse_mac'"),
        (lambda d: d["fields"][0].update(labels={"borne_volante": "Volante"}), "labels of field 'categorie' names 'borne_volante'"),
        (lambda d: d["fields"][0].update(en={"title": "Kind", "labels": {"x": "X"}}), "en.labels of field 'categorie'"),
    ],
)
def test_popup_filters_and_labels_are_validated(tmp_path: Path, change: object, expected: str) -> None:
    directory = _copy_layers(tmp_path)
    _edit(directory / "wifi.yml", change)
    message = _load_error(directory)
    assert "wifi.yml" in message and expected in message, message
