#!/usr/bin/env bash
# Install the .deb into a clean Debian root and use it as a person would, offline after set-up:
#   installers/linux/test-clean-root.sh [OUT_DIR]
#
#  1. build the packages; gather a wheelhouse (torch and every dependency, + uv) with pip
#  2. mmdebstrap a minimal Debian (bookworm), `apt-get install ./dreamclear-studio.deb` in it
#  3. as a new user: `dreamclear-studio --setup --wheelhouse DIR` (no network for the packages),
#     `dreamclear --help`, a starter restore of a bundled photo, the app opened on a photo the
#     way a file manager's "Open with" does (the desktop entry's Exec) under Xvfb: screenshot
#  4. `apt-get purge`: nothing of the package may remain; the user's files must
#
# Needs root (mounts /proc and /dev in the root), mmdebstrap, a Debian mirror, and a Python with
# pip for the wheelhouse ($BUILD_PYTHON, else the test venv's). The wheelhouse is kept in
# $DREAMCLEAR_WHEELHOUSE (default ~/.cache/dreamclear-wheelhouse) between runs. Screenshots
# and the logs go to OUT_DIR. Prints the time of each step. Fails on any failure.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
python="${BUILD_PYTHON:-$root/.venv/bin/python}"
out="${1:-}"
[ -n "$out" ] || out="$(mktemp -d)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
: >"$out/steps.log"
wheelhouse="${DREAMCLEAR_WHEELHOUSE:-$HOME/.cache/dreamclear-wheelhouse}"
suite="${DEBIAN_SUITE:-bookworm}"
started=$(date +%s)
step() { echo "clean root: $1 ($(( $(date +%s) - started )) s)" | tee -a "$out/steps.log" >&2; }
fail() { echo "clean root: FAILED: $1" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root (it mounts /proc and /dev inside the new root)"
command -v mmdebstrap >/dev/null || fail "mmdebstrap is missing (apt-get install mmdebstrap)"
work="$(mktemp -d)"
R="$work/root"
cleanup() {
    for mount in "$R/wheelhouse" "$R/dev" "$R/sys" "$R/proc"; do
        if mountpoint -q "$mount" 2>/dev/null; then umount -R "$mount" || umount -R -l "$mount"; fi
    done
    # Never delete through a mount that is still there (the wheelhouse, the host's /dev).
    if grep -q " $R/" /proc/mounts; then
        echo "clean root: $R still has mounts; left in place" >&2
    else
        rm -rf --one-file-system "$work"
    fi
}
trap cleanup EXIT

step "building the packages"
mapfile -t built < <("$root/installers/linux/build.sh" "$work/dist")
deb="${built[0]}"

step "gathering the wheelhouse in $wheelhouse"
mkdir -p "$wheelhouse"
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/lib/dreamclear-studio/app/requirements.txt \
    >"$work/requirements.txt"
uv_pin="$("$python" -c "import sys; sys.path.insert(0, '$root'); from setup_env.pins import UV_VERSION; print(UV_VERSION)")"
"$python" -m pip download --quiet --progress-bar off -d "$wheelhouse" -r "$work/requirements.txt" \
    "uv==$uv_pin" >"$out/wheelhouse.log" 2>&1 || { tail -20 "$out/wheelhouse.log"; fail "pip download"; }

step "making a clean $suite root (mmdebstrap)"
mmdebstrap --quiet --mode=root --variant=apt "$suite" "$R"
cp /etc/resolv.conf "$R/etc/resolv.conf"
mount -t proc proc "$R/proc"
mount -t sysfs sys "$R/sys"
mount --rbind /dev "$R/dev"
mkdir -p "$R/wheelhouse"
mount --bind "$wheelhouse" "$R/wheelhouse"
in_root() { chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"; }
as_user() { chroot --userspec=photo:photo "$R" env -i HOME=/home/photo USER=photo \
    PATH=/usr/bin:/bin LANG=C.UTF-8 "$@"; }

step "apt-get install ./$(basename "$deb")"
cp "$deb" "$R/tmp/"
in_root apt-get update -qq
in_root apt-get install -y -qq "/tmp/$(basename "$deb")" >"$out/apt-install.log" 2>&1 \
    || { tail -20 "$out/apt-install.log"; fail "apt could not install the package"; }
# Test tools only (the package does not need them): a display server and a window lister.
in_root apt-get install -y -qq --no-install-recommends xvfb xauth x11-utils >>"$out/apt-install.log" 2>&1
in_root useradd --create-home --shell /bin/bash photo
grep -q "dreamclear-studio.desktop" "$R/usr/share/applications/mimeinfo.cache" \
    || fail "the desktop entry is not in the MIME cache (no \"Open with\" for photos)"
for type in image/jpeg image/png image/tiff image/webp; do
    grep -E "^$type=.*dreamclear-studio.desktop" "$R/usr/share/applications/mimeinfo.cache" >/dev/null \
        || fail "$type does not open with DreamClear Studio"
done

step "the user's own files before set-up (settings, a model, a photo)"
as_user mkdir -p /home/photo/.config/DreamClear /home/photo/Pictures \
    /home/photo/.local/share/dreamclear-studio/models/local/mine
as_user sh -c 'printf "[General]\nkept=1\n" > "/home/photo/.config/DreamClear/DreamClear Studio.conf"'
as_user sh -c 'echo weights > /home/photo/.local/share/dreamclear-studio/models/local/mine/w.safetensors'
as_user cp /usr/lib/dreamclear-studio/app/dreamclear_studio_resources/photos/bridge.jpg \
    /home/photo/Pictures/bridge.jpg
user_files() { (cd "$R/home/photo" && find . -path ./.local/share/dreamclear-studio/runtime -prune \
    -o -path ./.cache -prune -o -type f -print0 | sort -z | xargs -0 sha256sum); }
user_files >"$work/user-before.txt"

step "first-run set-up from the wheelhouse, offline, with its window on a display"
# -fbdir: the screen is also a file (/tmp/Xvfb_screen0), to picture the set-up window before Qt exists.
as_user sh -c 'Xvfb :99 -screen 0 1280x800x24 -fbdir /tmp -nolisten tcp >/tmp/xvfb.log 2>&1 & echo $! > /tmp/xvfb.pid'
sleep 2
as_user env DISPLAY=:99 dreamclear-studio --setup --wheelhouse /wheelhouse >"$out/setup.log" 2>&1 &
setup_pid=$!
window=""
for _ in $(seq 60); do
    window="$(as_user env DISPLAY=:99 xwininfo -root -tree 2>/dev/null | grep -o '"DreamClear Studio: first-run set-up"' || true)"
    [ -n "$window" ] && break
    sleep 1
done
sleep 3  # for it to draw its first progress
cp "$R/tmp/Xvfb_screen0" "$work/setup-window.xwd" || true
wait "$setup_pid" || { cat "$out/setup.log"; fail "the set-up failed"; }
[ -n "$window" ] || fail "the set-up showed no window on the display"
"$python" "$root/installers/linux/xwd_to_png.py" "$work/setup-window.xwd" "$out/setup-window.png"
cat "$out/setup.log" >&2
user_files >"$work/user-after-setup.txt"
diff "$work/user-before.txt" "$work/user-after-setup.txt" >&2 || fail "the set-up changed the user's files"

step "dreamclear --help"
as_user dreamclear --help >"$out/help.txt"
grep -q "restore" "$out/help.txt" || fail "dreamclear --help does not list restore"

step "dreamclear restore (the bundled starter, on the bundled photo shrunk to 320 px)"
# Shrunk with the environment's Pillow, so a CPU restore takes seconds, not minutes.
env_python=/home/photo/.local/share/dreamclear-studio/runtime/env/bin/python
as_user "$env_python" -I -c 'import sys; from PIL import Image
photo = Image.open(sys.argv[1]); photo.thumbnail((320, 320)); photo.save(sys.argv[2])' \
    /home/photo/Pictures/bridge.jpg /home/photo/Pictures/small.jpg
as_user dreamclear restore /home/photo/Pictures/small.jpg -o /home/photo/Pictures/restored \
    --model starter --upscale 2 >"$out/restore.log" 2>&1 || { cat "$out/restore.log"; fail "restore"; }
[ -s "$R/home/photo/Pictures/restored/small_x2.jpg" ] || fail "no restored photo"
tail -1 "$out/restore.log" >&2

step "the app, opened on a photo as the desktop entry's Exec does, under Xvfb"
exec_line="$(sed -n 's/^Exec=//p' "$R/usr/share/applications/dreamclear-studio.desktop")"
app_command="${exec_line/\%F//home/photo/Pictures/bridge.jpg}"
as_user env DISPLAY=:99 sh -c "$app_command >/tmp/app.log 2>&1 & echo \$! > /tmp/app.pid"
cp "$root/installers/linux/grab_screen.py" "$R/tmp/"
as_user env DISPLAY=:99 "$env_python" -I /tmp/grab_screen.py /tmp/app.png 90 \
    || fail "the screen stayed empty"
as_user sh -c 'kill -0 "$(cat /tmp/app.pid)"' || { cat "$R/tmp/app.log"; fail "the app exited"; }
as_user env DISPLAY=:99 xwininfo -root -tree | grep -q '"DreamClear Studio' \
    || fail "no DreamClear Studio window"
cp "$R/tmp/app.png" "$out/app-under-xvfb.png"
as_user sh -c 'kill "$(cat /tmp/app.pid)"; sleep 3; kill "$(cat /tmp/xvfb.pid)"' || true
cp "$R/tmp/app.log" "$out/app.log"
sleep 2
user_files >"$work/user-before-purge.txt"  # the app itself may have written its settings

step "apt-get purge dreamclear-studio"
in_root apt-get purge -y -qq dreamclear-studio >>"$out/apt-install.log" 2>&1
left="$(cd "$R" && find usr etc opt var/lib/dpkg/info -name '*dreamclear*' 2>/dev/null || true)"
[ -z "$left" ] || fail "the package left files behind: $left"
! grep -q dreamclear "$R/usr/share/applications/mimeinfo.cache" 2>/dev/null \
    || fail "the MIME cache still names the package"
user_files >"$work/user-after.txt"
grep -q "restored/small_x2.jpg" "$work/user-after.txt" || fail "the restored photo is gone"
diff "$work/user-before-purge.txt" "$work/user-after.txt" >&2 || fail "the purge changed the user's files"
[ -x "$R$env_python" ] || fail "the user's environment went with the package"
step "passed (screenshots: $out/setup-window.png, $out/app-under-xvfb.png)"
