#!/usr/bin/env bash
# Build the wheel into OUT_DIR and print its path. It is built from a copy of the checkout's
# files (tracked and not ignored: a stale build/ or a local run never leaks into it), offline,
# with the setuptools of the test venv (or of $BUILD_PYTHON).
#   scripts/build_wheel.sh OUT_DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${BUILD_PYTHON:-$root/.venv/bin/python}"
mkdir -p "$1"
out="$(cd "$1" && pwd)"
src="$(mktemp -d)"
trap 'rm -rf "$src"' EXIT
"$root/scripts/copy_checkout.sh" "$src"
"$python" -m pip wheel --quiet --no-deps --no-build-isolation --no-index --wheel-dir "$out" \
    "$src" >&2
ls -t "$out"/dreamclear_studio-*.whl | head -n 1
