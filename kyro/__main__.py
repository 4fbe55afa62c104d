"""``python3 -m kyro``: the command line."""

from __future__ import annotations

import sys

from kyro.cli import main

if __name__ == "__main__":
    sys.exit(main())
