"""The public face of each package matches its ``__all__``."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "kyro",
    "kyro.testing",
    "kyro_openai",
    "kyro_local",
    "kyro_openai.testing",
    "kyro_anthropic",
    "kyro_anthropic.testing",
]


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_sorted_and_complete(package: str) -> None:
    """``__all__`` is sorted and names exactly the public objects the package defines."""
    module = importlib.import_module(package)
    exported = list(module.__all__)
    assert exported == sorted(exported)
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not getattr(value, "__name__", "").startswith(package + ".")
        and not isinstance(value, type(importlib))
    }
    public.discard("annotations")
    assert public <= set(exported), f"public but not in __all__: {sorted(public - set(exported))}"
    for name in exported:
        assert hasattr(module, name), f"{package}.__all__ names missing {name}"


def test_import_kyro_imports_no_provider() -> None:
    """``import kyro`` loads neither bundled provider (they are found by name, lazily)."""
    import subprocess
    import sys

    code = (
        "import sys, kyro\n"
        "names = ('kyro_openai', 'kyro_local', 'kyro_anthropic')\n"
        "print(any(m.startswith(names) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
