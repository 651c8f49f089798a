#!/usr/bin/env bash
# Install the test dependencies into .venv and run the whole test suite.
# Usage: scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
echo "== ruff"
.venv/bin/ruff check geocommuns tests scripts
echo "== pytest"
.venv/bin/python -m pytest "$@"
