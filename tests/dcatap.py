"""DCAT-AP 3.0.0 validation with pySHACL, against the SEMIC shapes kept beside the project.

The shapes live in ``../shared/schemas/dcat-ap-3.0.0/`` (CC-BY 4.0, SOURCE.md there), read
from there and never copied into the project: ``shapes.ttl`` (the classes' mandatory and
recommended properties) and ``range.ttl`` (the classes their values must have).
``mdr-vocabularies.shape.ttl`` needs the EU vocabularies themselves, which are not there.
"""

from __future__ import annotations

import functools
from typing import Any

from conftest import ROOT, require

SHAPES_DIR = ROOT.parent / "shared" / "schemas" / "dcat-ap-3.0.0"
SHAPES = ("shapes.ttl", "range.ttl")


@functools.cache
def _shapes() -> Any:
    from rdflib import Graph

    graph = Graph()
    for name in SHAPES:
        graph.parse(SHAPES_DIR / name, format="turtle")
    return graph


def dcat_violations(data: Any) -> list[str]:
    """The SHACL violations of an rdflib graph against DCAT-AP 3.0.0 (empty: it conforms).

    Skips (fails in CI, ``GEOCOMMUNS_REQUIRE_REALDATA=1``) when the shapes are absent.
    """
    require(
        "REALDATA",
        all((SHAPES_DIR / n).is_file() for n in SHAPES),
        f"the DCAT-AP shapes are absent from {SHAPES_DIR}",
    )
    from pyshacl import validate

    conforms, report, _text = validate(
        data, shacl_graph=_shapes(), inference="none", allow_warnings=True
    )
    if conforms:
        return []
    from rdflib import Namespace

    sh = Namespace("http://www.w3.org/ns/shacl#")
    return sorted(
        f"{report.value(r, sh.focusNode)} {report.value(r, sh.resultPath)}: {report.value(r, sh.resultMessage)}"
        for r in report.subjects(sh.resultSeverity, sh.Violation)
    )
