#!/usr/bin/env bash
# Installs everything argusd needs on Debian 12: system packages, a .venv, and the demo/test assets.
# Idempotent: each step checks before it acts, so a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
    gstreamer1.0-plugins-ugly gstreamer1.0-libav gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
    gir1.2-gst-rtsp-server-1.0 libgirepository1.0-dev libcairo2-dev pkg-config unzip redis-server prometheus
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "setup: installing system packages: ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

python_bin=${PYTHON:-python3.11}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $python_bin"
    "$python_bin" -m venv .venv
fi

deps_stamp=".venv/.deps-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$deps_stamp" ]; then
    echo "setup: installing Python packages into .venv (first run takes a few minutes)"
    # pip warns once per package about the machine's extra file:// index paths it skips; hide that noise
    .venv/bin/pip install -q --upgrade pip 2>&1 | { grep -v "^WARNING: Location" || true; }
    .venv/bin/pip install -q -c constraints.txt -e '.[test]' 2>&1 | { grep -v "^WARNING: Location" || true; }
    rm -f .venv/.deps-*
    touch "$deps_stamp"
fi

scripts/fetch-assets.sh
