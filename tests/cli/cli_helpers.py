"""Shared pieces of the CLI tests: a scripted emulator, job files, and running kyro."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec

from kyro_openai.testing import Emulator, EmulatorConfig, ScriptedResponder

ROOT = Path(__file__).resolve().parents[2]
CLOCK = 1_000_000.0

SUCCESS = '{"status": "SUCCESS", "root_cause": "fine"}'
ERROR = '{"status": "ERROR", "root_cause": "wrong"}'

# Verdicts by prompt text: "alpha" passes both judges, "mixed" fails only `facts`,
# "bad" fails both, "garbled" gets a reply that is not a verdict (an errored run).
RESPONDER = ScriptedResponder(
    by_substring={
        "Facts: mixed": ERROR,
        "mixed": SUCCESS,
        "alpha": SUCCESS,
        "bad": ERROR,
        "garbled": "I would rather not say.",
    }
)

CONFIG = """\
version: 1
model: gpt-4o-mini
judges:
  - name: tone
    prompt: "Reply in JSON. Tone: {{ input }}"
  - name: facts
    prompt: "Reply in JSON. Facts: {{input}}"
"""


def make_emulator(config: EmulatorConfig) -> Emulator:
    """An emulator with the scripted responder on a frozen clock."""
    return Emulator(config, responder=RESPONDER, clock=lambda: CLOCK)


def write_job(folder: Path, texts: Sequence[str]) -> Path:
    """Write judges.yml and data.jsonl (one transcript per text) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "judges.yml").write_text(CONFIG, encoding="utf-8")
    lines = "".join(msgspec.json.encode(text).decode() + "\n" for text in texts)
    (folder / "data.jsonl").write_text(lines, encoding="utf-8")
    return folder / "judges.yml"


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def kyro_env(base_url: str | None = None) -> dict[str, str]:
    """The environment for a kyro subprocess: a fake key, the emulator's URL, a wide terminal."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["OPENAI_API_KEY"] = "sk-test"
    if base_url is not None:
        env["OPENAI_BASE_URL"] = base_url
    return env


def run_kyro(
    args: Sequence[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m kyro ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "kyro", *args],
        env=env,
        cwd=cwd,
        text=True,
        capture_output=True,
        timeout=timeout,
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV export as dicts."""
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def results_file(folder: Path) -> Path:
    """The one results file under ``folder/.kyro``."""
    (path,) = (folder / ".kyro" / "judges.batch").glob("results-*.jsonl")
    return path
