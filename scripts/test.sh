#!/usr/bin/env bash
# Install what the test suite needs, then run ruff, mypy and pytest.
# Usage: scripts/test.sh [pytest arguments]
#   scripts/test.sh                  the whole suite (what CI runs, .ci/run)
#   scripts/test.sh -m "not slow"    the quick inner loop: no servers, browser, QGIS, notebooks
#   scripts/test.sh tests/serve -k cql
# Debian packages: installed when missing if run as root, else the apt-get line to run is
# printed and the tests that need them skip (GEOCOMMUNS_REQUIRE_*=1 makes them fail instead).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# python3-venv: the virtualenvs; gdal-bin: ogrinfo/ogr2ogr as OAPIF clients;
# postgresql-15-postgis-3: the PostGIS backend; chromium + fonts-dejavu-core: the map's
# browser tests; qgis + python3-qgis: QGIS reading the service (tests/serve/test_qgis.py)
scripts/debian-packages.sh python3-venv gdal-bin postgresql-15-postgis-3 chromium \
  fonts-dejavu-core qgis python3-qgis
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
# ogctests (an external OGC API conformance suite) pins older httpx/pytest: own venv
if [ ! -x .venv-ogctests/bin/python ]; then
  "$PYTHON" -m venv .venv-ogctests
fi
.venv-ogctests/bin/python -m pip install --quiet "ogctests==0.1.15" \
  || echo "ogctests could not be installed: its conformance test will skip" >&2
echo "== ruff"
.venv/bin/ruff check geocommuns harness tests scripts bench
echo "== mypy (strict)"
.venv/bin/mypy geocommuns harness
echo "== pytest"
.venv/bin/python -m pytest "$@"
