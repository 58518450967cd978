#!/usr/bin/env bash
# Installs the Debian packages Kiln needs to build, run and test, skipping those already present.
# Usage: scripts/install-deps.sh [build|test]
set -euo pipefail
mode="${1:-build}"

packages=(ca-certificates libcurl4 git libsnappy-dev libzstd-dev zlib1g-dev libxgboost-dev)
if [ "$mode" = "test" ]; then
  packages+=(python3 sqlite3)
  command -v pip3 >/dev/null 2>&1 || python3 -m pip --version >/dev/null 2>&1 || packages+=(python3-pip)
  # Serving Python-flavored models creates virtual environments (Debian ships ensurepip separately).
  python3 -c "import ensurepip" >/dev/null 2>&1 || packages+=(python3-venv)
  # spark_submit_task is tested with PyPI pyspark in local mode, which needs a Java 17+ runtime.
  command -v java >/dev/null 2>&1 || packages+=(default-jre-headless)
  # The web UI's browser tests drive Debian's headless Chromium through its chromedriver (selenium from PyPI).
  packages+=(chromium chromium-driver)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

if ! command -v swift >/dev/null 2>&1; then
  echo "Swift 6.x is not on PATH. Install the Swift toolchain (https://www.swift.org/install/) and try again." >&2
  exit 1
fi
