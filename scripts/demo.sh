#!/usr/bin/env bash
# Set up a fresh machine and run geocommuns on the embedded default:
# create .venv, install, build the sample territory into geodata/geocommuns.gpkg.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
scripts/debian-packages.sh python3-venv  # Debian's python3 makes no virtualenv without it
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
.venv/bin/geocommuns layers
.venv/bin/geocommuns build
.venv/bin/geocommuns webmap     # citizen map at http://127.0.0.1:5000/map/ (works offline)
.venv/bin/geocommuns indicators # dashboard at http://127.0.0.1:5000/map/indicateurs.html
.venv/bin/geocommuns export     # open-data downloads in geodata/export/<layer>/
.venv/bin/geocommuns config && exec .venv/bin/geocommuns serve  # OGC API - Features at http://127.0.0.1:5000/ (Ctrl-C stops it)
