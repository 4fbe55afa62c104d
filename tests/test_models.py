"""Model resolution: judge → config → model=/--model → KYRO_MODEL → the provider's default."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kyro import BatchValidationError, load_config
from kyro._config.judges import resolve_models
from kyro._registry import provider_default_model

ONLY_JUDGES = "version: 1\njudges:\n  - name: a\n    prompt: Is it polite?\n"


def write(folder: Path, text: str) -> Path:
    path = folder / "judges.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_config_of_only_version_and_judges_loads_without_a_model(tmp_path: Path) -> None:
    """A config of only `version` and `judges` loads; its judge has no model yet."""
    (judge,) = load_config(write(tmp_path, ONLY_JUDGES)).judges
    assert (judge.model, judge.model_source) == (None, None)


@pytest.mark.parametrize(
    ("text", "model", "env", "expected"),
    [
        (
            "model: top\njudges:\n  - {name: a, prompt: x, model: own}\n",
            "arg",
            "env",
            ("own", "judge"),
        ),
        ("model: top\njudges:\n  - {name: a, prompt: x}\n", "arg", "env", ("top", "config")),
        (ONLY_JUDGES, "arg", "env", ("arg", "argument")),
        (ONLY_JUDGES, None, "env", ("env", "KYRO_MODEL")),
        (ONLY_JUDGES, None, None, ("gpt-4o-mini", "provider")),
    ],
)
def test_first_source_found_wins(
    tmp_path: Path, text: str, model: str | None, env: str | None, expected: tuple[str, str]
) -> None:
    """Each source is used only when every earlier one is absent, and is recorded."""
    config = load_config(write(tmp_path, text))
    environ = {"KYRO_MODEL": env} if env else {}
    resolved = resolve_models(config, model=model, provider_default="gpt-4o-mini", environ=environ)
    (judge,) = resolved.judges
    assert (judge.model, judge.model_source) == expected
    assert resolved.models == {"a": expected[0]}


def test_no_model_anywhere_names_the_judge_and_every_way(tmp_path: Path) -> None:
    """Without any source, the error names the judge and each way to give a model."""
    config = load_config(write(tmp_path, ONLY_JUDGES))
    with pytest.raises(BatchValidationError) as info:
        resolve_models(config, environ={}, provider="mine")
    assert info.value.path == str(tmp_path / "judges.yml")
    assert info.value.message == (
        "no model for judge 'a': set `model:` on the judge or at the top of the config, pass "
        "model= (--model), or set KYRO_MODEL; the mine provider names no default model"
    )


def test_empty_kyro_model_is_refused(tmp_path: Path) -> None:
    """A KYRO_MODEL set to blanks is an error, not silently skipped."""
    config = load_config(write(tmp_path, ONLY_JUDGES))
    with pytest.raises(BatchValidationError, match="KYRO_MODEL environment variable is empty"):
        resolve_models(config, environ={"KYRO_MODEL": "  "}, provider_default="m")


def test_shipped_providers_document_their_default_model() -> None:
    """The openai and local providers name gpt-4o-mini, read without building them."""
    assert provider_default_model("openai") == "gpt-4o-mini"
    assert provider_default_model("local") == "gpt-4o-mini"
