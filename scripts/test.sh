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
# ogctests (an external OGC API conformance suite) pins older httpx/pytest: own venv
if [ ! -x .venv-ogctests/bin/python ]; then
  "$PYTHON" -m venv .venv-ogctests
fi
.venv-ogctests/bin/python -m pip install --quiet "ogctests==0.1.15" \
  || echo "ogctests could not be installed: its conformance test will skip" >&2
echo "== ruff"
.venv/bin/ruff check geocommuns tests scripts bench
echo "== mypy (strict)"
.venv/bin/mypy geocommuns
echo "== pytest"
.venv/bin/python -m pytest "$@"
