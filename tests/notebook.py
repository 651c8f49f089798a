"""Run a notebook for real (nbclient, the venv's ipykernel) and read its outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient


def run_notebook(
    path: Path, *, cwd: Path, env: dict[str, str] | None = None, timeout: int = 300
) -> nbformat.NotebookNode:
    """Execute every cell of ``path`` with ``cwd`` as working directory and return it.

    ``env`` is added to the current environment of the kernel. A failing cell raises
    ``nbclient.exceptions.CellExecutionError`` with the cell's traceback.
    """
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute(env={**os.environ, **(env or {})})
    return nb


def tagged_cell(nb: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    """The first cell carrying ``tag`` in its metadata."""
    for cell in nb.cells:
        if tag in cell.get("metadata", {}).get("tags", []):
            return cell
    msg = f"no cell tagged {tag!r}"
    raise KeyError(msg)


def stdout_of(nb: nbformat.NotebookNode, tag: str) -> str:
    """What the cell tagged ``tag`` printed."""
    cell = tagged_cell(nb, tag)
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stdout")


def json_printed(nb: nbformat.NotebookNode, tag: str) -> Any:
    """The JSON document the cell tagged ``tag`` printed."""
    return json.loads(stdout_of(nb, tag))


def output_types(nb: nbformat.NotebookNode) -> set[str]:
    """MIME types of every rich output (``image/png``, ``text/html``...)."""
    found: set[str] = set()
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            found.update(out.get("data", {}).keys())
    return found
