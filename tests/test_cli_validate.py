"""`kyro validate`: describe a valid config, or print file:line:column and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kyro.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_validate_judges_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A valid `judges:` config exits 0 and lists each judge's source, model and fields."""
    (tmp_path / "p.txt").write_text("Safe? {{input}}", encoding="utf-8")
    path = tmp_path / "judges.yml"
    path.write_text(
        "version: 1\nmodel: m-small\njudges:\n"
        "  - {name: relevance, prompt: 'Q {{input.q}} {{variables.product}}'}\n"
        "  - {name: safety, prompt_file: p.txt, model: m-big}\n",
        encoding="utf-8",
    )
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: valid, 2 judges in the `judges:` shape, version 1\n")
    assert (
        "- relevance\n    prompt:  inline\n"
        "    model:   m-small  (from the config's top-level `model:`)\n"
    ) in out
    assert "    fields:  {{input.q}}, {{variables.product}}\n" in out
    assert (
        "- safety\n    prompt:  file p.txt\n    model:   m-big  (from the judge's `model:`)\n"
        "    fields:  {{input}}\n"
    ) in out
    assert "config sha256: " in out


def test_validate_steps_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A valid `steps:` config exits 0, lists its links and its stages."""
    path = tmp_path / "pipeline.yml"
    path.write_text(
        "model: m\nsteps:\n  - {name: a, prompt: 'x {{input}}'}\n"
        "  - {name: b, prompt: 'y', depends_on: [a], on_failure: c}\n  - {name: c, prompt: z}\n",
        encoding="utf-8",
    )
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "3 judges in the `steps:` shape" in out
    assert (
        "- b\n    prompt:  inline\n"
        "    model:   m  (from the config's top-level `model:`)\n"
        "    fields:  (none)\n"
    ) in out
    assert "    depends on: a\n    on failure: c\n" in out
    assert (
        "  stage 0: a  (roots: run side by side)\n  stage 1: b\n  stage 2: c (on_failure of b)"
        in out
    )


@pytest.mark.slow  # python -m kyro in a child process
def test_validate_shows_where_each_model_comes_from(tmp_path: Path) -> None:
    """--model wins over KYRO_MODEL, which wins over the provider default; each is named."""
    path = tmp_path / "judges.yml"
    path.write_text("version: 1\njudges:\n  - {name: a, prompt: x}\n", encoding="utf-8")

    def validate(*extra: str) -> str:
        env = {**os.environ, "KYRO_MODEL": "from-env"}
        done = subprocess.run(
            [sys.executable, "-m", "kyro", "validate", str(path), *extra],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "model:   from-flag  (from model= / --model)\n" in validate("--model", "from-flag")
    assert "model:   from-env  (from the KYRO_MODEL environment variable)\n" in validate()


def test_validate_unknown_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown key prints exactly `file:line:column: message` to stderr and exits 2."""
    path = tmp_path / "judges.yml"
    path.write_text("model: m\njudges:\n  - name: a\n    promt: x\n", encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"{path}:4:5: unknown key 'promt' in `judges[0]`; allowed keys")


def test_validate_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    """`validate --help` shows an example invocation."""
    with pytest.raises(SystemExit) as info:
        main(["validate", "--help"])
    assert info.value.code == 0
    assert "python3 -m kyro validate examples/judges.yml" in capsys.readouterr().out


@pytest.mark.slow  # python -m kyro in a child process
def test_validate_example_in_a_subprocess() -> None:
    """`python -m kyro validate examples/judges.yml` runs as a real process and exits 0."""
    done = subprocess.run(
        [sys.executable, "-m", "kyro", "validate", "examples/judges.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("examples/judges.yml: valid, 3 judges in the `judges:` shape")
    for name in ("answers_the_question", "safety", "support_quality"):
        assert f"- {name}\n" in done.stdout
    assert (
        "    prompt:  file prompts/safety.txt\n    model:   gpt-4o  (from the judge" in done.stdout
    )
