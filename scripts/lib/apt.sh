# Debian packages argusd needs, and a function that installs the missing ones. Sourced by setup.sh (the
# development machine: these plus Redis, Prometheus, systemd's tools) and install.sh (production: these only).
# shellcheck shell=bash

# GStreamer and its plugins (the sources), their introspection data, and what PyGObject builds against.
RUNTIME_APT_PACKAGES=(
    gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
    gstreamer1.0-plugins-ugly gstreamer1.0-libav gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
    libgirepository1.0-dev libcairo2-dev pkg-config python3.11-venv
)

ensure_apt_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    echo "installing system packages: ${missing[*]}"
    local sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
