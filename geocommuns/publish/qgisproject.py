"""geocommuns.publish.qgisproject: a QGIS project per technician, to edit the layers in PostGIS.

The project holds the five layers read from PostGIS (each through its view, which shows
sensitive values only on the rows the user may edit) through a ``pg_service.conf`` service
named after the user (:func:`service_entry`): no password is ever written in it, QGIS asks
for it (or reads ``~/.pgpass``). Layers carry their French names and colours, enum fields
are drop-down value maps, computed fields are read-only (the database computes them
anyway), sensitive fields are hidden for users who may not read them, layers outside the
user's rights are read-only, and the initial view is the user's commune (or EPCI). Each
layer is drawn as on the citizen map: a disc of its ``style.colour`` with its
``style.icon`` in white (the SVG embedded in the project).

The ``.qgz`` is written by QGIS's own Python API (``QgsProject``, ``QgsVectorLayer``) run
headless by Debian's ``/usr/bin/python3`` (``python3-qgis``) in a subprocess, since QGIS's
bindings cannot be installed in the project's virtual environment. While it writes the
project, the service points at the owner's connection (in a temporary service file,
removed afterwards) so that QGIS reads the real fields; only the service name is saved.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import psycopg

from geocommuns.definitions.layerdef import LayerDef
from geocommuns.errors import GeocommunsError
from geocommuns.publish.dbsecurity import view_name
from geocommuns.publish.webmap import icon_svg

SYSTEM_PYTHON = "/usr/bin/python3"
#: Role kinds whose logins write nothing (contrib.auth.READ_ONLY_ROLES).
READ_ONLY_ROLES = ("reader", "partner")
#: The projects' CRS: Lambert-93, the technicians' usual one in metropolitan France.
PROJECT_CRS = "EPSG:2154"


class QgisProjectError(GeocommunsError):
    """The QGIS project could not be written."""


def service_name(user: str) -> str:
    """The ``pg_service.conf`` service of a user's projects."""
    return f"geocommuns-{user}"


def service_entry(database_url: str, user: str) -> str:
    """The ``pg_service.conf`` entry a technician adds to connect QGIS as ``user`` (no password)."""
    info = psycopg.conninfo.conninfo_to_dict(database_url)
    lines = [f"[{service_name(user)}]"]
    for key in ("host", "port", "dbname", "sslmode"):
        if info.get(key):
            lines.append(f"{key}={info[key]}")
    lines.append(f"user={user}")
    return "\n".join(lines) + "\n"


def embedded_icon(name: str) -> str:
    """The layer's icon (``style.icon``, the citizen map's vendored Font Awesome SVG) drawn
    white, as an SVG path embedded in the project (``base64:``): the project needs no file
    beside it on the technician's computer."""
    svg = icon_svg(name).replace('fill="currentColor"', 'fill="#ffffff"')
    return "base64:" + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _label(value: str) -> str:
    """A French label for an enum code (``semi_enterre`` -> ``Semi enterre``)."""
    text = value.replace("_", " ")
    return text[:1].upper() + text[1:]


def project_spec(
    layers: dict[str, LayerDef],
    communes: gpd.GeoDataFrame,
    *,
    user: str,
    role: str,
    commune: str | None = None,
    epci: str | None = None,
    user_layers: Sequence[str] = (),
) -> dict[str, Any]:
    """What the QGIS project holds for a user (layers, field set-up, initial extent).

    Parameters
    ----------
    layers
        The layer definitions.
    communes
        The territory's communes (EPSG:4326), for the initial extent.
    user, role, commune, epci, user_layers
        The user and their rights (as in ``geocommuns_users``).
    """
    def may_edit(layer_id: str) -> bool:
        if role == "admin":
            return True
        return role not in READ_ONLY_ROLES and (not user_layers or layer_id in user_layers)

    specs = []
    for layer in layers.values():
        if layer.access != "public" and role == "reader":
            continue  # a reader's login may not read the restricted layers
        editable = may_edit(layer.id)
        fields = [
            {
                "name": f.name,
                "title": f.title,
                "read_only": f.computed or not editable,
                # The layer's view shows a sensitive value only on the rows the login may
                # edit: a user who may edit no feature of the layer never sees one.
                "hidden": f.sensitive and not editable,
                "value_map": [[_label(v), v] for v in f.constraints.enum]
                if f.constraints.enum and f.type == "string" else None,
            }
            for f in layer.fields
        ]
        specs.append({
            "id": layer.id, "table": view_name(layer), "title": layer.title.fr, "colour": layer.style.colour,
            "icon": embedded_icon(layer.style.icon),
            "editable": editable, "fields": fields,
        })
    if commune:
        area = communes[communes["code_insee"] == commune]
    elif epci:
        area = communes[communes["epci"] == epci]
    else:
        area = communes
    minx, miny, maxx, maxy = (area if len(area) else communes).total_bounds
    return {
        "service": service_name(user), "crs": PROJECT_CRS, "layers": specs,
        "extent": [float(minx), float(miny), float(maxx), float(maxy)],
    }


#: Run by Debian's python3 with python3-qgis: ``-c SCRIPT spec.json out.qgz``.
_SCRIPT = r'''
import json, os, sys
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from qgis.core import (QgsApplication, QgsCoordinateReferenceSystem, QgsCoordinateTransform,
    QgsEditorWidgetSetup, QgsMarkerSymbol, QgsProject, QgsRectangle, QgsReferencedRectangle,
    QgsSingleSymbolRenderer, QgsSvgMarkerSymbolLayer, QgsVectorLayer)
app = QgsApplication([], False)
app.initQgis()
spec = json.load(open(sys.argv[1], encoding="utf-8"))
project = QgsProject.instance()
crs = QgsCoordinateReferenceSystem(spec["crs"])
project.setCrs(crs)
project.setTitle("geocommuns")
problems = []
for L in spec["layers"]:
    uri = (f"service='{spec['service']}' key='fid' srid=4326 type=Point "
           f"checkPrimaryKeyUnicity='0' table=\"public\".\"{L['table']}\" (geom)")
    layer = QgsVectorLayer(uri, L["title"], "postgres")
    if not layer.isValid():
        problems.append(f"{L['id']}: {layer.error().summary()}")
        continue
    symbol = QgsMarkerSymbol.createSimple({"name": "circle", "color": L["colour"], "size": "5.5",
                                           "outline_color": "white"})
    symbol.appendSymbolLayer(QgsSvgMarkerSymbolLayer(L["icon"], 3.2))
    layer.setRenderer(QgsSingleSymbolRenderer(symbol))
    form = layer.editFormConfig()
    for f in L["fields"]:
        i = layer.fields().indexFromName(f["name"])
        if i < 0:
            continue
        layer.setFieldAlias(i, f["title"])
        if f["hidden"]:
            layer.setEditorWidgetSetup(i, QgsEditorWidgetSetup("Hidden", {}))
        elif f["value_map"]:
            layer.setEditorWidgetSetup(i, QgsEditorWidgetSetup(
                "ValueMap", {"map": [{label: value} for label, value in f["value_map"]]}))
        form.setReadOnly(i, bool(f["read_only"]))
    layer.setEditFormConfig(form)
    layer.setReadOnly(not L["editable"])
    project.addMapLayer(layer)
wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
box = QgsCoordinateTransform(wgs84, crs, project).transformBoundingBox(QgsRectangle(*spec["extent"]))
box.scale(1.1)
project.viewSettings().setDefaultViewExtent(QgsReferencedRectangle(box, crs))
ok = project.write(sys.argv[2])
print(json.dumps({"written": ok, "problems": problems}), flush=True)
os._exit(0)
'''


def write_project(database_url: str, spec: dict[str, Any], out: Path, *, timeout: float = 120) -> Path:
    """Write the QGIS project of ``spec`` to ``out`` (``.qgz`` or ``.qgs``) with QGIS itself.

    Parameters
    ----------
    database_url
        The owner's connection (used while writing only, through a temporary service file).
    spec
        :func:`project_spec`.
    out
        The project file.

    Raises
    ------
    QgisProjectError
        When QGIS's Python bindings are missing or a layer cannot be read.
    """
    if not Path(SYSTEM_PYTHON).exists():
        msg = f"{SYSTEM_PYTHON} not found; install QGIS (apt-get install qgis python3-qgis)"
        raise QgisProjectError(msg)
    info = psycopg.conninfo.conninfo_to_dict(database_url)
    with tempfile.TemporaryDirectory(prefix="geocommuns-qgis-") as tmp:
        services = Path(tmp) / "pg_service.conf"
        services.write_text(
            f"[{spec['service']}]\n" + "".join(f"{k}={v}\n" for k, v in info.items() if v), encoding="utf-8"
        )
        services.chmod(0o600)
        spec_file = Path(tmp) / "spec.json"
        spec_file.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
        env = {**os.environ, "PGSERVICEFILE": str(services), "QT_QPA_PLATFORM": "offscreen",
               "HOME": tmp}
        try:
            done = subprocess.run(
                [SYSTEM_PYTHON, "-c", _SCRIPT, str(spec_file), str(out)],
                env=env, capture_output=True, text=True, timeout=timeout, check=False,
            )
        except subprocess.TimeoutExpired:
            msg = f"QGIS did not write {out} within {timeout:.0f} s"
            raise QgisProjectError(msg) from None
    result = _last_json(done.stdout)
    if result is None:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        msg = f"QGIS could not write the project ({tail}); is python3-qgis installed?"
        raise QgisProjectError(msg)
    if result["problems"] or not result["written"]:
        msg = f"QGIS could not write {out}: {'; '.join(result['problems']) or 'write failed'}"
        raise QgisProjectError(msg)
    return out


def _last_json(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None
