#!/usr/bin/env bash
# Installs everything argusd needs on Debian 12: system packages, a .venv, and the demo/test assets.
# Idempotent: each step checks before it acts, so a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/apt.sh
# The runtime packages, plus the RTSP server and unzip (test cameras and assets), Redis and Prometheus (the
# tests run both), systemd-analyze (the unit's tests), zsh (the completion's tests), nginx with its RTMP module (the
# RTMP camera's test server), etcd (the fleet's tests) and
# Chromium with its driver (the console's browser tests).
ensure_apt_packages "${RUNTIME_APT_PACKAGES[@]}" gir1.2-gst-rtsp-server-1.0 unzip redis-server prometheus systemd zsh \
    nginx libnginx-mod-rtmp etcd-server etcd-client chromium chromium-driver

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
