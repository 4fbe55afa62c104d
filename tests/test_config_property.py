"""Property: any YAML text or template either loads or raises BatchValidationError."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from kyro import BatchValidationError, JudgesConfig, load_config

pytestmark = pytest.mark.slow  # hypothesis: hundreds of generated configs and templates

JUDGE_KEYS = [
    "name",
    "prompt",
    "prompt_file",
    "prompt_xml",
    "output_format",
    "model",
    "params",
    "variables",
    "depends_on",
    "on_failure",
]
TOP_KEYS = ["version", "model", "judges", "steps", "name", "description"]

words = st.text(max_size=12)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    words,
    st.sampled_from(["json", "1", "a", "b"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.one_of(words, st.sampled_from(JUDGE_KEYS)), inner, max_size=4)
    ),
    max_leaves=12,
)
judges = st.lists(
    st.dictionaries(st.sampled_from([*JUDGE_KEYS, "promt"]), values, max_size=6), max_size=3
)
documents = st.dictionaries(
    st.sampled_from([*TOP_KEYS, "extra"]),
    st.one_of(values, judges),
    max_size=5,
)
template_text = st.text(alphabet=st.sampled_from(list("{} .inputvarblesx_0\n'\"")), max_size=40)


def dump(data: Any) -> str:
    stream = io.StringIO()
    YAML(typ="safe").dump(data, stream)
    return stream.getvalue()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder reused by every generated example."""
    path = tmp_path_factory.mktemp("property")
    (path / "p.txt").write_text("From a file {{input}}", encoding="utf-8")
    return path


def check(folder: Path, text: str) -> None:
    path = folder / "judges.yml"
    path.write_text(text, encoding="utf-8")
    error: BatchValidationError | None = None
    try:
        config = load_config(path)
    except BatchValidationError as exc:
        error = exc
    if error is not None:
        assert error.path == str(path)
        assert error.message
        assert error.line is None or error.line >= 1
        assert error.column is None or error.column >= 1
        return
    assert isinstance(config, JudgesConfig)
    assert config.judges
    assert len({j.name for j in config.judges}) == len(config.judges)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(documents)
def test_generated_documents_load_or_refuse(folder: Path, data: dict[str, Any]) -> None:
    """YAML dumped from random nested structures loads or raises BatchValidationError."""
    check(folder, dump(data))


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.text(alphabet=st.sampled_from(list("abjudgesnm:-[]{}&*!|>'\"#\n\t ,?1%@`")), max_size=80))
def test_arbitrary_yaml_text_loads_or_refuses(folder: Path, text: str) -> None:
    """Arbitrary YAML-ish text loads or raises BatchValidationError, never anything else."""
    check(folder, text)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(template_text, min_size=1, max_size=3), st.sampled_from(["prompt", "prompt_xml"]))
def test_arbitrary_templates_load_or_refuse(folder: Path, texts: list[str], source: str) -> None:
    """Judges with arbitrary template text load or raise BatchValidationError."""
    if source == "prompt":
        judge: dict[str, Any] = {"name": "j", "prompt": texts[0]}
    else:
        judge = {"name": "j", "prompt_xml": {f"s{i}": t for i, t in enumerate(texts)}}
    check(folder, dump({"version": 1, "model": "m", "judges": [judge]}))
