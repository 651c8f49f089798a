"""Make the technicians' guide's QGIS screenshot (docs/img/qgis-projet-technicien.png).

The sample territory is built and published into a throwaway PostGIS cluster
(harness/postgres.py), a Cahors contributor is added and their project written by the
command line (``users add``, ``pg-service``, ``qgis-project``), then Debian's QGIS 3.22
opens that project under Xvfb, as the technician would, through their service entry and
password, puts the containers layer in edit mode, opens the form of a Cahors container and the
screen is captured. The capture is
reduced to 256 colours to stay small.

Run from the repository root: ``.venv/bin/python scripts/qgis_screenshot.py [OUT.png]``.
Needs PostgreSQL + PostGIS, QGIS (``qgis``, ``python3-qgis``) and ``xvfb``; no network.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geocommuns.definitions.layerdef import layers_from_dir  # noqa: E402
from geocommuns.definitions.territory import territory_from_spec  # noqa: E402
from geocommuns.ingest.build import build  # noqa: E402
from geocommuns.publish.postgis import publish  # noqa: E402
from geocommuns.settings import Settings  # noqa: E402
from harness.postgres import cluster  # noqa: E402

USER = "cahors-sig"
OUT = ROOT / "docs" / "img" / "qgis-projet-technicien.png"
#: Seconds QGIS is given to open the project and draw it before the capture.
SETTLE_S = 25
SIZE = (1280, 800)

#: Run inside QGIS (``qgis --code``): edit mode on the wifi layer, capture, quit.
_GRAB = r"""
import os
from qgis.core import QgsFeatureRequest, QgsProject
from qgis.gui import QgsAttributeDialog
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtGui import QGuiApplication
from qgis.utils import iface

window = iface.mainWindow()
window.move(0, 0)
window.resize(int(os.environ["GEOCOMMUNS_WIDTH"]), int(os.environ["GEOCOMMUNS_HEIGHT"]))
opened = []

def _edit():
    try:
        _open_form()
    except Exception as error:  # the capture still shows the project
        with open(os.environ["GEOCOMMUNS_CAPTURE"] + ".log", "w") as log:
            log.write(repr(error))

def _open_form():
    layers = [l for l in QgsProject.instance().mapLayers().values()
              if l.dataProvider().uri().table() == "conteneurs_qgis"]
    if not layers:
        return
    layer = layers[0]
    iface.setActiveLayer(layer)
    layer.startEditing()
    request = QgsFeatureRequest().setFilterExpression("\"code_insee\" = '46042'")
    for feature in layer.getFeatures(request):
        dialog = QgsAttributeDialog(layer, feature, False, window, True)
        dialog.resize(430, 560)
        dialog.move(window.width() - 450, 150)
        dialog.show()
        opened.append(dialog)
        break

def _grab():
    QGuiApplication.primaryScreen().grabWindow(0).save(os.environ["GEOCOMMUNS_CAPTURE"])
    os._exit(0)

QTimer.singleShot(int(os.environ["GEOCOMMUNS_SETTLE_MS"]) // 2, _edit)
QTimer.singleShot(int(os.environ["GEOCOMMUNS_SETTLE_MS"]), _grab)
"""


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "geocommuns"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return done.stdout


def main(out: Path) -> None:
    """Build, publish, make the contributor's project, open it in QGIS and capture it."""
    with tempfile.TemporaryDirectory(prefix="geocommuns-capture-") as tmp_name, cluster() as pg:
        tmp = Path(tmp_name)
        url = pg.create_database("capture")
        settings = Settings(
            root=ROOT, output=tmp / "geocommuns.gpkg", report_dir=tmp / "report", database_url=url
        )
        build(settings)
        layers = layers_from_dir(settings.path(settings.layers_dir))
        publish(
            url,
            settings.path(settings.output),
            layers,
            communes=territory_from_spec(settings.territory).communes,
        )
        env = {**os.environ, "GEOCOMMUNS_DATABASE_URL": url, "COLUMNS": "200"}
        lines = _cli(
            env, "users", "add", USER, "--role", "contributor", "--commune", "46042"
        ).splitlines()
        password = lines[
            lines.index(next(x for x in lines if x.startswith("database login"))) + 1
        ].strip()
        (tmp / "pg_service.conf").write_text(
            _cli(env, "pg-service", "--user", USER), encoding="utf-8"
        )
        project = tmp / f"{USER}.qgz"
        _cli(env, "qgis-project", "--user", USER, "--out", str(project))
        pgpass = tmp / "pgpass"
        pgpass.write_text(f"127.0.0.1:{pg.port}:*:{USER}:{password}\n", encoding="utf-8")
        pgpass.chmod(0o600)
        grab = tmp / "grab.py"
        grab.write_text(_GRAB, encoding="utf-8")
        capture = tmp / "capture.png"
        display = f":{70 + os.getpid() % 20}"
        xvfb = subprocess.Popen(
            ["Xvfb", display, "-screen", "0", f"{SIZE[0]}x{SIZE[1]}x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            qgis_env = {
                k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))
            } | {
                "DISPLAY": display,
                "HOME": str(tmp),
                "LANG": "fr_FR.UTF-8",
                "PGSERVICEFILE": str(tmp / "pg_service.conf"),
                "PGPASSFILE": str(pgpass),
                "GEOCOMMUNS_CAPTURE": str(capture),
                "GEOCOMMUNS_SETTLE_MS": str(SETTLE_S * 1000),
                "GEOCOMMUNS_WIDTH": str(SIZE[0]),
                "GEOCOMMUNS_HEIGHT": str(SIZE[1]),
            }
            subprocess.run(
                [
                    "qgis",
                    "--nologo",
                    "--noversioncheck",
                    "--noplugins",
                    "--profiles-path",
                    str(tmp / "profiles"),
                    "--code",
                    str(grab),
                    str(project),
                ],
                env=qgis_env,
                timeout=SETTLE_S + 120,
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        finally:
            xvfb.terminate()
            xvfb.wait(timeout=10)
        if (tmp / "capture.png.log").is_file():
            print((tmp / "capture.png.log").read_text())
        if not capture.is_file():
            msg = "QGIS did not write the capture (is the qgis package installed?)"
            raise SystemExit(msg)
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.open(capture).convert("RGB").quantize(colors=256).save(out, optimize=True)
    print(f"wrote {out} ({out.stat().st_size // 1024} kB)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
