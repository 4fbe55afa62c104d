"""What a fresh interpreter loads: for the tests that pin which imports stay lazy."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable

__all__ = ["modules_loaded"]


def modules_loaded(statements: str, packages: Iterable[str]) -> list[str]:
    """Run ``statements`` in a new Python process and return, sorted, the modules then loaded
    that are one of ``packages`` or inside one (``"kyro.testing"`` covers its submodules).

    Example::

        assert modules_loaded("import kyro", ["kyro_openai"]) == []
    """
    code = (
        "import json, sys\n"
        f"{statements}\n"
        f"wanted = {sorted(packages)!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules "
        "if any(m == p or m.startswith(p + '.') for p in wanted))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded: list[str] = json.loads(done.stdout)
    return loaded
