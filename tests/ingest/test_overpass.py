"""The Overpass adapter: the only user of osmnx's private API, for a bounded osmnx version."""

from __future__ import annotations

import ast
import tomllib
from importlib.metadata import version
from pathlib import Path

import osmnx
from packaging.requirements import Requirement

from geocommuns.ingest import overpass

ROOT = Path(__file__).resolve().parents[2]
ADAPTER = ROOT / "geocommuns" / "ingest" / "overpass.py"


def _osmnx_requirement() -> Requirement:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    (found,) = [Requirement(r) for r in project["dependencies"] if Requirement(r).name == "osmnx"]
    return found


def test_osmnx_is_bounded_and_the_installed_version_is_inside() -> None:
    requirement = _osmnx_requirement()
    assert any(spec.operator == "<" for spec in requirement.specifier), (
        "bound osmnx from above: the adapter uses its private modules"
    )
    assert requirement.specifier.contains(version("osmnx"))


def test_the_private_names_the_adapter_uses_still_exist() -> None:
    """A canary: an osmnx release that renames them fails here, not in a territory's build."""
    used = {
        (node.value.attr, node.attr)
        for node in ast.walk(ast.parse(ADAPTER.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and isinstance(node.value.value, ast.Name)
        and node.value.value.id == "ox"
    }
    assert {
        ("_overpass", "_download_overpass_features"),
        ("_errors", "InsufficientResponseError"),
    } <= used
    for module, name in used:
        assert hasattr(getattr(osmnx, module), name), f"osmnx.{module}.{name} is gone"


def test_no_other_module_touches_osmnx_private_api() -> None:
    offenders = []
    for path in sorted((ROOT / "geocommuns").rglob("*.py")):
        if path == ADAPTER:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            private_import = isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "osmnx._"
            )
            private_attribute = (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and isinstance(node.value, ast.Name)
                and node.value.id in {"ox", "osmnx"}
            )
            if private_import or private_attribute:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, f"use geocommuns.ingest.overpass instead: {offenders}"


def test_unreachable_says_how_to_build_offline() -> None:
    error = overpass.unreachable(ConnectionError("down"))
    assert "ConnectionError" in str(error) and ".osm.pbf extract" in str(error)
