"""Open a geocommuns QGIS project headless and try a technician's edits (QGIS's PostgreSQL provider).

Run with Debian's ``/usr/bin/python3`` (``python3-qgis``):
``qgis_edit.py PROJECT.qgz STEPS.json``, with ``PGSERVICEFILE`` and ``PGPASSFILE`` set as
on the technician's computer. Each step edits one layer in an edit session and commits:

- ``{"do": "set", "layer": L, "id": ID, "field": F, "value": V}``;
- ``{"do": "move", "layer": L, "id": ID, "lon": X, "lat": Y}``;
- ``{"do": "add", "layer": L, "values": {...}, "lon": X, "lat": Y}``.

Prints one JSON document: the project's layers (name, table, whether valid, field set-up)
and its default view extent, then per step whether the commit succeeded and QGIS's
commit errors (the edit session is rolled back after a refused commit).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (
    QgsApplication,
    QgsFeature,
    QgsFeatureRequest,
    QgsGeometry,
    QgsPointXY,
    QgsProject,
)


def _layers(project: QgsProject) -> dict[str, object]:
    # keyed by layer id: each layer reads its view, <layer>_qgis
    return {layer.dataProvider().uri().table().removesuffix("_qgis"): layer
            for layer in project.mapLayers().values()}


def describe(project: QgsProject) -> dict[str, object]:
    """The project's layers and their field set-up."""
    out: dict[str, object] = {}
    for table, layer in _layers(project).items():
        form = layer.editFormConfig()
        fields = {}
        for i, f in enumerate(layer.fields()):
            setup = layer.editorWidgetSetup(i)
            fields[f.name()] = {
                "alias": layer.attributeAlias(i),
                "widget": setup.type(),
                "read_only": form.readOnly(i),
                "value_map": setup.config().get("map") if setup.type() == "ValueMap" else None,
            }
        out[table] = {
            "name": layer.name(), "valid": layer.isValid(), "read_only": layer.readOnly(),
            "source": layer.source(), "count": layer.featureCount(), "fields": fields,
            "symbol": [(sl.layerType(), sl.color().name(), getattr(sl, "path", lambda: None)())
                       for sl in layer.renderer().symbol().symbolLayers()],
        }
    return out


def _feature(layer: object, feature_id: str) -> QgsFeature:
    request = QgsFeatureRequest().setFilterExpression(f"\"id\" = '{feature_id}'")
    return next(layer.getFeatures(request))


def run(project: QgsProject, step: dict[str, object]) -> dict[str, object]:
    """Make one edit in an edit session and commit it."""
    layer = _layers(project)[step["layer"]]
    layer.startEditing()
    if step["do"] == "set":
        f = _feature(layer, step["id"])
        layer.changeAttributeValue(f.id(), layer.fields().indexFromName(step["field"]), step["value"])
    elif step["do"] == "move":
        f = _feature(layer, step["id"])
        layer.changeGeometry(f.id(), QgsGeometry.fromPointXY(QgsPointXY(step["lon"], step["lat"])))
    else:
        f = QgsFeature(layer.fields())
        for name, value in step["values"].items():
            f.setAttribute(name, value)
        f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(step["lon"], step["lat"])))
        layer.addFeature(f)
    ok = layer.commitChanges()
    errors = list(layer.commitErrors())
    if not ok:
        layer.rollBack()
    return {"committed": ok, "errors": errors}


def main(path: str, steps: list[dict[str, object]]) -> dict[str, object]:
    """Open the project, describe it, run the steps."""
    project = QgsProject.instance()
    read = project.read(path)
    extent = project.viewSettings().defaultViewExtent()
    return {
        "read": read,
        "crs": project.crs().authid(),
        "extent": [extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()],
        "layers": describe(project),
        "steps": [run(project, s) for s in steps],
    }


if __name__ == "__main__":
    app = QgsApplication([], False)
    app.initQgis()
    result = main(sys.argv[1], json.loads(Path(sys.argv[2]).read_text(encoding="utf-8")))
    print(json.dumps(result, default=str), flush=True)
    # QGIS 3.22 crashes on exit in headless scripts; leave at once
    os._exit(0)
