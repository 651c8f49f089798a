#!/usr/bin/env bash
# Make sure Debian packages are installed: scripts/debian-packages.sh [--required] PACKAGE...
# Installs the missing ones (apt-get update + install --no-install-recommends, quietly) when
# run as root on a Debian/Ubuntu machine; otherwise prints the one apt-get line to run and
# goes on (exit 0), or stops (exit 2) with --required; the same when apt-get fails (offline).
# Nothing happens when all are there.
set -euo pipefail
required=0
if [ "${1:-}" = "--required" ]; then
  required=1
  shift
fi
if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "not a Debian-like system: make sure these are installed: $*" >&2
  exit 0
fi
missing=()
for package in "$@"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q " installed$"; then
    missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    exit 0
  fi
  echo "apt-get could not install ${missing[*]}" >&2
else
  echo "missing Debian packages; run: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
fi
[ "$required" -eq 1 ] && exit 2
exit 0
