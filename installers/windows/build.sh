#!/usr/bin/env bash
# Build the Windows installer (NSIS, per-user) into OUT_DIR and print its path:
#   installers/windows/build.sh OUT_DIR [UV_EXE]
# UV_EXE: the pinned uv.exe for Windows x64 to bundle; without it the uv wheel for win_amd64 is
# fetched with pip and checked against the sha256 in setup_env/pins.py. Needs makensis (apt
# install nsis) and a Python with Pillow and pip ($BUILD_PYTHON, else the test venv's).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/installers/windows"
python="${BUILD_PYTHON:-$root/.venv/bin/python}"
mkdir -p "$1"
out="$(cd "$1" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$root/scripts/copy_checkout.sh" "$work/src"
stage="$work/stage"
"$python" "$root/installers/common/stage.py" "$work/src" "$stage"
version="$(cat "$stage/VERSION")"

if [ -n "${2:-}" ]; then
    cp "$2" "$stage/uv.exe"
else
    pin="$(cd "$root" && "$python" -c 'from setup_env.pins import UV_VERSION; print(UV_VERSION)')"
    "$python" -m pip download --quiet --no-deps --only-binary=:all: --platform win_amd64 \
        --python-version 3.12 "uv==$pin" -d "$work/uv" >&2
    (cd "$root" && "$python" - "$work/uv" "$stage/uv.exe") <<'PY'
import hashlib, sys, zipfile
from pathlib import Path
from setup_env.pins import UV_VERSION, UV_WHEELS
url, sha256 = UV_WHEELS[("win32", "amd64")]
wheel = Path(sys.argv[1]) / url.rsplit("/", 1)[1]
if hashlib.sha256(wheel.read_bytes()).hexdigest() != sha256:
    sys.exit(f"{wheel.name} is not the uv wheel pinned in setup_env/pins.py")
with zipfile.ZipFile(wheel) as archive:
    Path(sys.argv[2]).write_bytes(archive.read(f"uv-{UV_VERSION}.data/scripts/uv.exe"))
PY
fi

for command in dreamclear-studio dreamclear; do
    what="desktop app"; [ "$command" = dreamclear ] && what="command line"
    # Windows' cmd.exe reads batch files with CRLF line ends.
    sed -e "s|@COMMAND@|$command|g" -e "s|@WHAT@|$what|" -e 's/$/\r/' "$here/launcher.cmd.in" \
        >"$stage/$command.cmd"
done
exe="$out/DreamClear-Studio-$version-setup.exe"
fast=()
[ -n "${NSIS_FAST:-}" ] && fast=(-DFAST_COMPRESSION)  # tests: zlib, seconds instead of minutes
makensis -V2 "${fast[@]}" -DVERSION="$version" -DSTAGE="$stage" -DOUTFILE="$exe" \
    "$here/dreamclear-studio.nsi" >&2
echo "$exe"
