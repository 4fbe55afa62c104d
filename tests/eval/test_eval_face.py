"""kyro.eval's public face, its import boundaries, and the shipped example."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import tests.test_exported_members as exported

ROOT = Path(__file__).resolve().parents[2]


def test_eval_all_is_sorted_and_complete() -> None:
    """kyro.eval's ``__all__`` is sorted and names exactly its public objects."""
    exported.test_all_is_sorted_and_complete("kyro.eval")


@pytest.mark.slow  # the example script in a child process
def test_the_example_runs_against_the_emulator() -> None:
    """examples/eval/run_eval.py scores the support agent with LLM judges on the emulator."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "eval" / "run_eval.py")],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    lines = out.stdout.splitlines()
    assert "partial_failure" in lines[0]
    assert any(line.strip().startswith("helpfulness") for line in lines)
    assert "ERROR unknown-9999: LookupError: order #9999 is not in the order table" in out.stdout
    assert "PASS  status-1234: Your order #1234 is in transit." in out.stdout
