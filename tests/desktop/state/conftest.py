"""The shared desktop fixtures (app_fixtures.py)."""

from app_fixtures import *  # noqa: F403
from genir_fixtures import *  # noqa: F403
