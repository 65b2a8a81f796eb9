#!/usr/bin/env bash
# Installs argusd as a system service: a virtual environment with argusd and its runtime packages only (no
# test extras, no Redis, no Prometheus, no demo assets), the systemd unit, the `argusd` system user, and
# /etc/argusd and /var/lib/argusd with their owners and modes. Idempotent: run it again to upgrade.
#
#   sudo scripts/install.sh [--prefix DIR] [--root DIR] [--python PATH] [--without-ml]
#
#   --prefix DIR    where the code goes (DIR/.venv, DIR/docs, DIR/config); default /opt/argusd or $PREFIX
#   --root DIR      where /etc, /var/lib and the unit go, as DESTDIR does for packaging (and tests); the user
#                   is added to DIR/etc/passwd. With a root other than /, neither apt nor systemctl is run.
#   --python PATH   the interpreter of the venv; default Debian's /usr/bin/python3.11 (the unit's
#                   ProtectHome= would hide one under /root or /home, such as pyenv's)
#   --without-ml    TEST ONLY: leave out torch, torchvision and ultralytics (several GB); argusd cannot
#                   load a model then. tests/service/test_install.py uses it to check everything else.
set -euo pipefail
SOURCE=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/apt.sh
. "$SOURCE/scripts/lib/apt.sh"

prefix=${PREFIX:-/opt/argusd}
root=${ROOT:-/}
python_bin=/usr/bin/python3.11
with_ml=1
usage() { echo "usage: $0 [--prefix DIR] [--root DIR] [--python PATH] [--without-ml]" >&2; exit 2; }
while (($#)); do
    case $1 in
        --prefix) (($# > 1)) || usage; prefix=$2; shift 2 ;;
        --root) (($# > 1)) || usage; root=$2; shift 2 ;;
        --python) (($# > 1)) || usage; python_bin=$2; shift 2 ;;
        --without-ml) with_ml=0; shift ;;
        *) echo "install: unknown option $1" >&2; usage ;;
    esac
done
[[ $prefix == /* && $root == /* ]] || { echo "install: --prefix and --root must be absolute paths" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "install: run as root (it creates a system user and /etc/argusd)" >&2; exit 1; }
root=${root%/}  # "" for /, so "$root/etc" is /etc
venv=$prefix/.venv

if [ -z "$root" ]; then
    ensure_apt_packages "${RUNTIME_APT_PACKAGES[@]}"
fi
[ -x "$python_bin" ] || { echo "install: no Python at $python_bin (apt-get install python3.11-venv, or --python)" >&2; exit 1; }

# -- the code: a non-editable install, so the source tree can be moved or deleted afterwards -------------------
install -d -m 0755 "$prefix"
[ -x "$venv/bin/python" ] || "$python_bin" -m venv "$venv"
pip=("$venv/bin/pip" install -q --disable-pip-version-check -c "$SOURCE/constraints.txt")
if ((with_ml)); then
    "${pip[@]}" "$SOURCE"
else
    # The runtime dependencies from pyproject.toml except the ML stack; argusd itself without its deps.
    mapfile -t light < <("$venv/bin/python" - "$SOURCE/pyproject.toml" <<'PY'
import re, sys, tomllib
for requirement in tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]:
    if re.split(r"[<>=!~ \[]", requirement)[0] not in {"torch", "torchvision", "ultralytics"}:
        print(requirement)
PY
)
    "${pip[@]}" "${light[@]}"
    "${pip[@]}" --no-deps "$SOURCE"
fi
rm -rf "$prefix/docs" "$prefix/config"
cp -r "$SOURCE/docs" "$SOURCE/config" "$prefix/"  # the unit's Documentation=, the example, alerts, dashboard

# -- the user: in the groups that own camera (video) and GPU render (render) nodes, where those exist -----------
account_root=()
[ -z "$root" ] || account_root=(--prefix "$root")
group_exists() { grep -q "^$1:" "$root/etc/group"; }
user_field() { awk -F: -v name="$1" -v field="$2" '$1 == name { print $field }' "$root/etc/passwd"; }
if [ -z "$(user_field argusd 1)" ]; then
    useradd "${account_root[@]}" --system --user-group --home-dir /var/lib/argusd --no-create-home \
        --shell /usr/sbin/nologin argusd
fi
device_groups=()
for group in video render; do
    # A missing group is not created: without the udev rules that give it the device nodes it grants nothing.
    if group_exists "$group"; then device_groups+=("$group"); else echo "install: no $group group; skipped"; fi
done
((${#device_groups[@]} == 0)) || usermod "${account_root[@]}" -aG "$(IFS=,; echo "${device_groups[*]}")" argusd
uid=$(user_field argusd 3)
gid=$(user_field argusd 4)

# -- state and configuration --------------------------------------------------------------------------------
install -d -m 0750 -o "$uid" -g "$gid" "$root/var/lib/argusd" "$root/var/lib/argusd/models"
install -d -m 0750 -o 0 -g "$gid" "$root/etc/argusd"
config=$root/etc/argusd/argusd.yaml
if [ -e "$config" ]; then
    echo "install: keeping the existing $config"
else
    install -m 0640 -o 0 -g "$gid" "$SOURCE/config/argusd.example.yaml" "$config"
fi
# The config may hold credentials (camera URLs): readable by the service, not by other users.
chown 0:"$gid" "$config"
chmod 0640 "$config"

# -- the unit (paths under the prefix; systemd refuses to start a unit naming a group that does not exist), completion
install -d -m 0755 "$root/etc/systemd/system"
unit=$root/etc/systemd/system/argusd.service
sed -e "s#/opt/argusd#$prefix#g" \
    -e "s#^SupplementaryGroups=.*#SupplementaryGroups=${device_groups[*]}#" \
    "$SOURCE/systemd/argusd.service" > "$unit.new"
chmod 0644 "$unit.new"
mv "$unit.new" "$unit"
install -d -m 0755 "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions"
"$venv/bin/argusd" completion bash > "$root/usr/share/bash-completion/completions/argusd"
"$venv/bin/argusd" completion zsh > "$root/usr/share/zsh/vendor-completions/_argusd"
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi

cat <<EOF
install: argusd $("$venv/bin/argusd" --version | cut -d' ' -f2) in $venv, unit $unit
Next steps:
  1. Put the detector model where detector.model in $config points (the example says
     /var/lib/argusd/models/detector.pt): argusd never downloads weights. Owner root, group argusd, mode 0640.
  2. Edit the cameras in $config, then check it:  $venv/bin/argusd check-config /etc/argusd/argusd.yaml
  3. Start it:  systemctl enable --now argusd && journalctl -u argusd -f
EOF
