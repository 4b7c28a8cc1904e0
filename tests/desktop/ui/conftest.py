"""The shared desktop fixtures (tests/desktop/state/app_fixtures.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "state"))

from app_fixtures import *  # noqa: F403
