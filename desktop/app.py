"""`dreamclear-studio`: the desktop app's entry point.

The window itself arrives with the desktop issue; until then this entry point says so and
points at the command line, which already restores images.
"""

from __future__ import annotations

import sys

NOT_YET = (
    "The DreamClear Studio window is not built yet.\n"
    "Restore photos from the command line meanwhile:\n"
    "    scripts/run restore PHOTO.jpg -o restored/\n"
)


def main() -> int:
    sys.stderr.write(NOT_YET)
    return 2


if __name__ == "__main__":
    sys.exit(main())
