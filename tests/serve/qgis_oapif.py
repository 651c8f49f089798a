"""Load every collection of an OGC API – Features service in QGIS (OAPIF provider), headless.

Run with Debian's ``/usr/bin/python3`` (``python3-qgis``): ``qgis_oapif.py URL COLLECTION...``.
Prints one JSON document: per collection whether the layer is valid, its feature count,
field names, the names of the features, and the editing capabilities the provider
reports; plus the QGIS version and its authentication methods.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsVectorDataProvider,
    QgsVectorLayer,
)

CAPABILITIES = {
    "AddFeatures": QgsVectorDataProvider.AddFeatures,
    "DeleteFeatures": QgsVectorDataProvider.DeleteFeatures,
    "ChangeAttributeValues": QgsVectorDataProvider.ChangeAttributeValues,
    "ChangeGeometries": QgsVectorDataProvider.ChangeGeometries,
}


def main(url: str, collections: list[str]) -> dict[str, object]:
    """Load the collections and describe them."""
    out: dict[str, object] = {
        "qgis": Qgis.QGIS_VERSION,
        "auth_methods": list(QgsApplication.authManager().authMethodsKeys()),
        "layers": {},
    }
    for name in collections:
        layer = QgsVectorLayer(f"url='{url}' typename='{name}'", name, "OAPIF")
        info: dict[str, object] = {"valid": layer.isValid()}
        if layer.isValid():
            caps = layer.dataProvider().capabilities()
            info.update(
                fields=[f.name() for f in layer.fields()],
                names=sorted(str(f["nom"]) for f in layer.getFeatures()),
                crs=layer.crs().authid(),
                editing={k: bool(caps & v) for k, v in CAPABILITIES.items()},
            )
        out["layers"][name] = info  # type: ignore[index]
    return out


if __name__ == "__main__":
    app = QgsApplication([], False)
    app.initQgis()
    print(json.dumps(main(sys.argv[1], sys.argv[2:])), flush=True)
    # QGIS 3.22 crashes on exit in headless scripts; leave at once
    os._exit(0)
