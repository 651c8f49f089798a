"""Command-line options with fixed choices are typed as choices: typer refuses other values."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geocommuns.cli import app

CLI = Path(__file__).resolve().parents[1] / "geocommuns" / "cli.py"


@pytest.mark.parametrize(
    ("args", "listed"),
    [
        (["config", "--extent", "everywhere"], "'territory', 'data'"),
        (["config", "--backend", "sqlite"], "'gpkg', 'postgis'"),
        (["webmap", "--mode", "sometimes"], "'auto', 'static', 'live'"),
        (["conflicts", "resolve", "1", "--keep", "both"], "'edit', 'source'"),
        (["reports", "--state", "lost"], "'proposed', 'accepted', 'refused', 'done', 'all'"),
        (["reports", "--kind", "letter"], "'submission', 'report'"),
    ],
)
def test_a_value_outside_the_choices_is_refused_before_anything_runs(
    args: list[str], listed: str
) -> None:
    result = CliRunner().invoke(app, args, env={"COLUMNS": "250", "NO_COLOR": "1"})
    assert result.exit_code == 2
    assert f"is not one of {listed}" in result.output


def test_the_cli_needs_no_type_ignore() -> None:
    text = CLI.read_text(encoding="utf-8")
    assert "type: ignore" not in text
    # every option's choices are a Literal alias of the module, not a bare str checked by hand
    tree = ast.parse(text)
    aliases = {
        node.targets[0].id
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Subscript)
        and isinstance(node.value.value, ast.Name)
        and node.value.value.id == "Literal"
    }
    assert {"ExtentChoice", "BackendChoice", "MapMode", "KeepChoice"} <= aliases
