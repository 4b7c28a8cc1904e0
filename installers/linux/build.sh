#!/usr/bin/env bash
# Build the Linux packages into OUT_DIR and print their paths:
#   dreamclear-studio_VERSION_all.deb     (apt install ./that.deb)
#   dreamclear-studio-VERSION-linux.tar.gz (portable: unpack anywhere, run bin/dreamclear-studio)
#   installers/linux/build.sh OUT_DIR
# Needs dpkg-deb, and a Python with Pillow for the icon sizes ($BUILD_PYTHON, else the test
# venv's). Built from a copy of the checkout's files (tracked and not ignored), as the wheel is.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/installers/linux"
python="${BUILD_PYTHON:-$root/.venv/bin/python}"
mkdir -p "$1"
out="$(cd "$1" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$root/scripts/copy_checkout.sh" "$work/src"
"$python" "$root/installers/common/stage.py" "$work/src" "$work/stage"
version="$(cat "$work/stage/VERSION")"

# launcher TARGET PYTHON LAUNCH_PY COMMAND WHAT
launcher() {
    sed -e "s|@PYTHON@|$2|" -e "s|@LAUNCH@|$3|" -e "s|@COMMAND@|$4|g" -e "s|@WHAT@|$5|" \
        "$here/launcher.in" >"$1"
    chmod 755 "$1"
}

# 1. The .deb: the app under /usr/lib/dreamclear-studio, launchers in /usr/bin.
deb="$work/deb"
lib="$deb/usr/lib/dreamclear-studio"
mkdir -p "$lib" "$deb/usr/bin" "$deb/usr/share/applications" "$deb/usr/share/icons" \
    "$deb/usr/share/doc/dreamclear-studio" "$deb/DEBIAN"
cp -a "$work/stage/app" "$lib/app"
for command in dreamclear-studio dreamclear; do
    what="desktop app"; [ "$command" = dreamclear ] && what="command line"
    launcher "$deb/usr/bin/$command" /usr/bin/python3 /usr/lib/dreamclear-studio/app/launch.py \
        "$command" "$what"
done
cp "$here/dreamclear-studio.desktop" "$deb/usr/share/applications/"
cp -a "$work/stage/icons/hicolor" "$deb/usr/share/icons/"
cp "$here/copyright" "$deb/usr/share/doc/dreamclear-studio/copyright"
for script in postinst prerm; do
    install -m 755 "$here/$script" "$deb/DEBIAN/$script"
done
size_kb="$(du -sk --exclude=DEBIAN "$deb" | cut -f1)"
sed -e "s|@VERSION@|$version|" -e "s|@SIZE_KB@|$size_kb|" "$here/control.in" >"$deb/DEBIAN/control"
find "$deb" -type d -exec chmod 755 {} +
find "$deb/usr" -type f ! -perm -u+x -exec chmod 644 {} +
dpkg-deb --root-owner-group -Zxz --build "$deb" "$out/dreamclear-studio_${version}_all.deb" >/dev/null

# 2. The portable tarball: the same app, launchers that find it relative to themselves.
name="dreamclear-studio-$version"
tree="$work/tar/$name"
mkdir -p "$tree/bin" "$tree/share/applications" "$tree/share/icons"
cp -a "$work/stage/app" "$tree/app"
for command in dreamclear-studio dreamclear; do
    what="desktop app"; [ "$command" = dreamclear ] && what="command line"
    launcher "$tree/bin/$command" python3 '$(dirname "$(readlink -f "$0")")/../app/launch.py' \
        "$command" "$what"
done
cp "$here/dreamclear-studio.desktop" "$tree/share/applications/"
cp -a "$work/stage/icons/hicolor" "$tree/share/icons/"
cp "$here/README-portable.txt" "$tree/README.txt"
tar -C "$work/tar" --owner=0 --group=0 --sort=name -czf "$out/$name-linux.tar.gz" "$name"

echo "$out/dreamclear-studio_${version}_all.deb"
echo "$out/$name-linux.tar.gz"
