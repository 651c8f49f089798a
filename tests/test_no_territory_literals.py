"""Nothing territory-specific is written in Python: territory, EPCI, contact and tiles are YAML.

Every string literal of ``geocommuns/**/*.py`` (docstrings aside: they document, with
examples) is searched for what belongs in the service file ``geocommuns.yml`` or in a layer
file: the sample territory's names and codes (Cahors, its EPCI's SIREN, any 14-digit SIRET),
its contact (street address, a real e-mail address) and base-map tile URLs (OpenStreetMap's
tile server, the Géoplateforme, any WMTS or ``{z}`` tile template).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "geocommuns"

#: (what it is, pattern): each names the kind of literal the service file should hold.
FORBIDDEN: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("territory or EPCI name", re.compile(r"cahors", re.IGNORECASE)),
    ("EPCI SIREN", re.compile(r"200023737")),
    ("SIRET", re.compile(r"(?<!\d)\d{14}(?!\d)")),
    ("contact address", re.compile(r"rue wilson", re.IGNORECASE)),
    (
        "contact e-mail",
        re.compile(r"[\w.+-]+@(?!(?:example|exemple|domaine)\.)[\w-]+\.[a-z]{2,}", re.IGNORECASE),
    ),
    ("tile URL", re.compile(r"tile\.openstreetmap|data\.geopf\.fr", re.IGNORECASE)),
    ("tile URL", re.compile(r"https?://[^\s\"']*(?:wmts|\{z\})", re.IGNORECASE)),
)

#: Files another issue is rewriting, with the issue that removes their literal (each case is
#: a strict xfail: it fails as soon as the literal is gone, so the entry must go too).
PENDING: dict[str, str] = {}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants of a module, its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def literals(path: Path) -> list[tuple[int, str, str]]:
    """(line, kind, text) of every forbidden literal in one module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = _docstrings(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            hits += [
                (node.lineno, kind, node.value[:80])
                for kind, pattern in FORBIDDEN
                if pattern.search(node.value)
            ]
    return hits


def _cases() -> list[object]:
    cases: list[object] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).as_posix()
        marks = [pytest.mark.xfail(strict=True, reason=PENDING[rel])] if rel in PENDING else []
        cases.append(pytest.param(path, id=rel, marks=marks))
    return cases


@pytest.mark.parametrize("path", _cases())
def test_no_territory_contact_or_tile_literal(path: Path) -> None:
    hits = literals(path)
    assert not hits, (
        f"{path.relative_to(PACKAGE.parent)}: move these to the service file (geocommuns.yml) "
        f"or a layer file: {hits}"
    )


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    """Each kind of literal is caught (so a green run means something)."""
    module = tmp_path / "m.py"
    module.write_text(
        '"""Docstring about Cahors is documentation."""\n'
        'A = "Grand Cahors"\nB = "200023737"\nC = "20002373700014"\nD = "72 rue Wilson"\n'
        'E = "sig@agglo-cahors.fr"\nF = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"\n'
        'G = "https://data.geopf.fr/wmts?LAYER=X"\nH = "https://tiles.example.org/{z}/{x}/{y}.png"\n'
        'OK = "sig@example.fr"\n',
        encoding="utf-8",
    )
    lines = {line for line, _, _ in literals(module)}
    assert lines == {2, 3, 4, 5, 6, 7, 8, 9}
