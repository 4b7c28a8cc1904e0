#!/usr/bin/env bash
# CI, after the tests: build the wheel, install it into a fresh virtual environment and run it
# from outside the checkout: `dreamclear models list` must show the bundled starter installed,
# and a starter restore of a bundled photo must write its result. Fails on any failure.
#
# The fresh venv installs only the wheel (--no-deps, --no-index) and borrows its dependencies
# (torch, diffusers...) from the test venv through a .pth line, instead of installing 2 GB
# again; that adds the test venv's packages, not their .pth files, so the checkout's editable
# install stays out, and the check below makes sure the code and resources come from the wheel.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/_venv.sh" dev  # the test venv ($venv), whose packages the fresh one borrows
started=$(date +%s)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
step() { echo "wheel check: $1 ($(( $(date +%s) - started )) s)" >&2; }

step "building the wheel"
wheel="$("$here/build_wheel.sh" "$work/dist")"
step "installing $(basename "$wheel") into a fresh venv"
"$venv/bin/python" -m venv "$work/venv"
fresh="$work/venv/bin"
"$fresh/python" -m pip install --quiet --no-deps --no-index "$wheel"
borrowed="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
own="$("$fresh/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$borrowed" >"$own/borrow-test-venv.pth"

cd "$work"  # the checkout must not be on sys.path
export HOME="$work/home" DREAMCLEAR_MODEL_STORE="$work/store" HF_HUB_OFFLINE=1
"$fresh/python" - "$own" <<'PY'
import sys
from pathlib import Path

import dreamclear.cli, engine, trainer
from dreamclear_studio_resources import resource_path

own = Path(sys.argv[1])
for where in (dreamclear.cli.__file__, engine.__file__, trainer.__file__, resource_path()):
    assert own in Path(where).parents, f"{where} does not come from the wheel ({own})"
PY

step "dreamclear models list"
"$fresh/dreamclear" models list | tee "$work/list.txt"
grep -E "^starter +installed \(bundled\) .*$own/dreamclear_studio_resources/models/starter$" \
    "$work/list.txt" >/dev/null || { echo "wheel check: the starter is not listed as installed" >&2; exit 1; }

step "dreamclear restore --model starter"
photo="$("$fresh/python" -c 'from dreamclear_studio_resources import resource_path
print(resource_path("photos", "bridge.jpg"))')"
"$fresh/dreamclear" restore "$photo" -o "$work/out" --model starter --upscale 2
test -s "$work/out/bridge_x2.jpg" || { echo "wheel check: no restored photo in $work/out" >&2; exit 1; }
step "passed"
