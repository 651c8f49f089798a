"""The package's stages and their import directions, enforced on the source tree.

definitions ← ingest ← publish ← contrib ← serve ← cli: a module may import its own stage
and the stages to its left (plus the top-level ``settings`` and ``errors``), never one to
its right; and no module imports another module's private (``_``-prefixed) names. The
messages' catalogue (``i18n``) is at the bottom, beside ``settings`` and ``errors``: every
stage says what a technician reads through it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "geocommuns"
#: Lowest first; a module of rank r may import modules of rank <= r.
RANKS = {"settings": 0, "errors": 0, "i18n": 0, "definitions": 1, "ingest": 2, "publish": 3,
         "contrib": 4, "serve": 5, "cli": 6}
STAGES = ["definitions", "ingest", "publish", "contrib", "serve"]


def _stage_of(module: str) -> str:
    """``geocommuns.ingest.build`` -> ``ingest``; ``geocommuns.cli`` -> ``cli``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((".".join(parts), path))
    return out


def _imports(path: Path, module: str) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every geocommuns import of a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("geocommuns")]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            if target.startswith("geocommuns"):
                names = [a.name for a in node.names]
                # ``from geocommuns.contrib import audit`` imports a module of that stage
                found.append((target, names, node.lineno))
    return found


def test_every_stage_is_a_documented_subpackage() -> None:
    for stage in STAGES:
        init = PACKAGE / stage / "__init__.py"
        assert init.is_file(), f"{stage}/ must be a subpackage"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and "May import" in doc, f"{stage}/__init__.py must say what it may import"
    flat = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in {"__init__", *RANKS})
    assert not flat, f"modules outside the stages: {flat}"


@pytest.mark.parametrize(("module", "path"), _modules(), ids=lambda v: str(v) if isinstance(v, str) else "")
def test_imports_run_downwards(module: str, path: Path) -> None:
    own = _stage_of(module)
    if own not in RANKS:  # geocommuns/__init__.py
        return
    for target, _names, line in _imports(path, module):
        stage = _stage_of(target)
        if stage in RANKS:
            assert RANKS[stage] <= RANKS[own], (
                f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}: "
                f"stage {own!r} may not import the higher stage {stage!r}"
            )


@pytest.mark.parametrize(("module", "path"), _modules(), ids=lambda v: str(v) if isinstance(v, str) else "")
def test_no_private_names_across_modules(module: str, path: Path) -> None:
    for target, names, line in _imports(path, module):
        if target == module:
            continue
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        assert not private, (
            f"{path.relative_to(PACKAGE.parent)}:{line} imports private {private} from {target}: "
            "make it public (a name without '_', with a docstring) or keep it in its module"
        )


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """The AST check itself: an upward import and a private import are both found."""
    bad = tmp_path / "bad.py"
    bad.write_text("from geocommuns.serve.server import create_app\nfrom geocommuns.ingest.osm import _x\n")
    found = _imports(bad, "geocommuns.ingest.bad")
    assert [(t, n) for t, n, _ in found] == [
        ("geocommuns.serve.server", ["create_app"]), ("geocommuns.ingest.osm", ["_x"])
    ]
    assert RANKS[_stage_of(found[0][0])] > RANKS["ingest"]
