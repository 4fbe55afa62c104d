"""BatchJudge's config: a path, a mapping or a JudgesConfig; its models; one job per config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kyro import BatchJudge, BatchValidationError, load_config
from kyro.testing import FakeProvider

ONLY_JUDGES = {"version": 1, "judges": [{"name": "polite", "prompt": "Is it polite? {{input}}"}]}


async def test_config_of_only_version_and_judges_runs_with_the_provider_default(
    tmp_path: Path,
) -> None:
    """A mapping of only version + judges submits; the provider's default model is recorded."""
    provider = FakeProvider()
    judge = BatchJudge(provider, ONLY_JUDGES, state_dir=tmp_path / "state")
    await judge.submit(["hello there"])
    state = json.loads(judge._runner.store.state_path.read_text())
    assert state["models"] == {"polite": "fake-judge"}
    assert state["config_path"] == judge.owner
    result = await judge.check()
    assert result is not None
    assert result.models == {"polite": "fake-judge"}
    assert [e.verdicts["polite"].status for e in result.evaluations] == ["SUCCESS"]
    again = await BatchJudge(provider, ONLY_JUDGES, state_dir=tmp_path / "state").check()
    assert again is not None
    assert judge.owner.endswith("judges.yml")
    assert again.models == {"polite": "fake-judge"}  # from the finished-job summary


async def test_model_argument_and_a_loaded_config(tmp_path: Path) -> None:
    """model= fills judges without one; a JudgesConfig is used as given."""
    path = tmp_path / "judges.yml"
    path.write_text("judges:\n  - {name: a, prompt: 'x {{input}}'}\n", encoding="utf-8")
    judge = BatchJudge(FakeProvider(), load_config(path), model="gpt-4.1-mini")
    assert judge.load().judges[0].model == "gpt-4.1-mini"
    assert judge.load().judges[0].model_source == "argument"
    assert judge._runner.store.state_dir == tmp_path / ".kyro"


def test_config_of_another_type_is_a_clear_error() -> None:
    """Anything but a path, a mapping or a JudgesConfig is refused by name, not a TypeError."""
    with pytest.raises(BatchValidationError, match="not list"):
        BatchJudge(FakeProvider(), [1, 2])  # type: ignore[arg-type]


async def test_mapping_errors_name_the_key_without_positions() -> None:
    """A bad key in a mapping config names the key; there is no line:column to give."""
    bad = {"judges": [{"name": "a", "promt": "x"}]}
    judge = BatchJudge(FakeProvider(), ONLY_JUDGES)
    with pytest.raises(BatchValidationError) as info:
        BatchJudge(FakeProvider(), bad)
    assert (info.value.line, info.value.column) == (None, None)
    assert "unknown key 'promt' in `judges[0]`" in info.value.message
    assert judge.config_path == Path("judges.yml")


async def test_two_configs_sharing_a_state_file_are_refused(tmp_path: Path) -> None:
    """judges.yml and judges.yaml in one folder: the second is refused, naming both files."""
    provider = FakeProvider(polls_until_done=5)
    text = "judges:\n  - {name: a, prompt: 'x {{input}}'}\n"
    (tmp_path / "judges.yml").write_text(text, encoding="utf-8")
    (tmp_path / "judges.yaml").write_text(text, encoding="utf-8")
    await BatchJudge(provider, tmp_path / "judges.yml").submit(["one"])
    other = BatchJudge(provider, tmp_path / "judges.yaml")
    for call in (other.check, other.status, other.cancel, lambda: other.submit(["two"])):
        with pytest.raises(BatchValidationError) as info:
            await call()
        message = info.value.message
        assert f"belongs to another config, {(tmp_path / 'judges.yml').resolve()}" in message
        assert f"not {(tmp_path / 'judges.yaml').resolve()}" in message
        assert "--state-dir DIR" in message
    assert len(provider.batches) == 1  # nothing was sent for the other config
