#!/usr/bin/env bash
# Copy the checkout's files (tracked and not ignored) into DEST: what the wheel and the
# installers are built from, so a stale build/ or a local run never leaks into them.
#   scripts/copy_checkout.sh DEST
# --ignore-failed-read: a tracked file deleted in the working tree is left out, as it will be.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$1"
git -C "$root" ls-files -z --cached --others --exclude-standard \
    | tar -C "$root" --null --files-from=- --ignore-failed-read -cf - \
    | tar -C "$1" -xf -
