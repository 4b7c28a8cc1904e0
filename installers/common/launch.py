"""The installed app's starter: `python3 launch.py dreamclear-studio|dreamclear [ARGS...]`.

The installers put this file beside the app's packages and run it with the system's Python
(-I, so nothing of the user's Python setup leaks in). It needs only the standard library: on
the first run no dependency exists yet. setup_env.launch sets up the private environment when
it is missing or outdated, then runs the command inside it.
"""

import sys
from pathlib import Path

if sys.version_info < (3, 11):  # noqa: UP036  (runs under whatever python3 the system has)
    sys.exit(
        f"DreamClear Studio needs Python 3.11 or newer; {sys.executable} is "
        f"{sys.version.split()[0]}. Install a newer python3 and start it again."
    )

APP_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(APP_DIR))

from setup_env.launch import main  # noqa: E402  (needs APP_DIR on sys.path)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], app_dir=APP_DIR))
