# Sourced by scripts/run and scripts/test: make sure .venv exists and holds the project.
# torch and torchvision are pinned to the releases this project is tested with; on the
# development machines they install from local wheels without a download.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
extras="${1:-}"
stamp="$venv/.installed${extras:+-$extras}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    echo "Creating $venv ..." >&2
    "$python" -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ] || [ "$root/setup.py" -nt "$stamp" ]; then
    echo "Installing DreamClear Studio into $venv (first run takes a few minutes) ..." >&2
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
    "$venv/bin/python" -m pip install --quiet -e "$root${extras:+[$extras]}"
    touch "$stamp"
fi
