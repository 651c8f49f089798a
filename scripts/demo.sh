#!/usr/bin/env bash
# Set up a fresh machine and run geocommuns on the embedded default:
# create .venv, install, build the sample territory (examples/grand-cahors) and serve it.
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
# build, citizen map, open-data downloads, indicators, catalogue and home page, offline
# (exit code 1 means "something to look at": the sample deliveries hold rejected rows on purpose)
.venv/bin/geocommuns refresh --no-osm || [ $? -eq 1 ]
# home page http://127.0.0.1:5000/, map /map/, technician space /espace/, downloads
# /telechargements/, OGC API - Features and Records (Ctrl-C stops it)
.venv/bin/geocommuns config && exec .venv/bin/geocommuns serve
