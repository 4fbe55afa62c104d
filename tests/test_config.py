"""Loading valid judges configs of both shapes into the resolved model."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

import kyro
from kyro import load_config, verdict_message
from kyro._transcripts import Transcript

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def write(folder: Path, text: str, name: str = "judges.yml") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


JUDGES = """\
    version: 1
    model: small-model
    judges:
      - name: relevance
        prompt: "Q: {{input.question}} A: {{ input.answer }}"
        output_format: json
        params: {temperature: 0, max_tokens: 300}
      - name: safety
        prompt_file: prompts/safety.txt
        model: big-model
      - name: quality
        prompt_xml:
          role: You grade {{variables.product}} replies.
          task: Grade the reply.
          input_format: |
            {{input}}
        variables: {product: Acme, seats: 3, strict: true, ratio: 0.5}
    """


@pytest.fixture
def judges_config(tmp_path: Path) -> Path:
    """A valid `judges:` config with one judge per prompt source."""
    write(tmp_path, "Is this safe?\n{{input}}\n", "prompts/safety.txt")
    return write(tmp_path, JUDGES)


def test_judges_shape_loads_every_prompt_source(judges_config: Path) -> None:
    """The `judges:` shape resolves inline, file and XML prompts, and the default model."""
    config = load_config(judges_config)
    assert config.shape == "judges"
    assert config.version == 1
    assert config.model == "small-model"
    assert [j.name for j in config.judges] == ["relevance", "safety", "quality"]
    assert [j.model for j in config.judges] == ["small-model", "big-model", "small-model"]
    assert [j.prompt_source for j in config.judges] == ["prompt", "prompt_file", "prompt_xml"]
    relevance, safety, quality = config.judges
    assert relevance.fields == ("input.question", "input.answer")
    assert relevance.params == {"temperature": 0, "max_tokens": 300}
    assert relevance.output_format == "json"
    assert safety.prompt_file == "prompts/safety.txt"
    assert safety.user.text == "Is this safe?\n{{input}}\n"
    assert quality.fields == ("variables.product", "input")


def test_prompt_xml_renders_sections_in_order_with_role_as_system(judges_config: Path) -> None:
    """XML sections become tagged blocks in order; `role` becomes the system message."""
    quality = load_config(judges_config).judge("quality")
    assert quality.system is not None
    assert quality.system.text == "You grade {{variables.product}} replies."
    assert (
        quality.user.text
        == "<task>\nGrade the reply.\n</task>\n\n<input_format>\n{{input}}\n</input_format>"
    )
    transcript = Transcript(index=0, source="inline:0", value="hi")
    messages = quality.messages(transcript, quality.merged_variables({"product": "Other"}))
    assert [m.role for m in messages] == ["system", "system", "user"]
    assert messages[0] == verdict_message()
    assert messages[1].content == "You grade Acme replies."
    assert "<input_format>\nhi\n</input_format>" in messages[2].content


def test_variables_are_stored_as_text(judges_config: Path) -> None:
    """Judge variables of any scalar type are kept as text, booleans spelled as in YAML."""
    quality = load_config(judges_config).judge("quality")
    assert quality.variables == {"product": "Acme", "seats": "3", "strict": "true", "ratio": "0.5"}


def test_steps_shape_loads_pipeline_links(tmp_path: Path) -> None:
    """The pipeline `steps:` shape loads into the same model, with depends_on and on_failure."""
    path = write(
        tmp_path,
        """\
        steps:
          - name: first
            prompt: Check {{input.response}}
            model: m1
            output_format: json
            on_failure: rescue
          - name: second
            depends_on: first
            prompt: Again {{input}}
            model: m2
            output_format: json
          - name: third
            depends_on: [first, second, first]
            prompt: Last {{input}}
            model: m1
          - name: rescue
            prompt: Fallback {{input}}
            model: m1
        """,
    )
    config = load_config(path)
    assert config.shape == "steps"
    assert config.version == 1
    assert config.model is None
    assert config.judge("first").on_failure == "rescue"
    assert config.judge("second").depends_on == ("first",)
    assert config.judge("third").depends_on == ("first", "second")
    assert config.uses_pipeline is True


def test_version_may_be_text_and_documentation_keys_are_kept(tmp_path: Path) -> None:
    """`version: "1"` is accepted and the optional name/description keys are kept."""
    path = write(
        tmp_path,
        """\
        version: "1"
        name: evals
        description: Support checks.
        judges:
          - {name: a, prompt: "x", model: m}
        """,
    )
    config = load_config(path)
    assert (config.version, config.name, config.description) == (1, "evals", "Support checks.")
    assert config.uses_pipeline is False


def test_prompt_file_is_relative_to_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prompt_file resolves against the config's folder, whatever the working directory."""
    write(tmp_path, "From the file: {{input}}", "cfg/p/prompt.txt")
    path = write(
        tmp_path, "judges:\n  - {name: a, prompt_file: p/prompt.txt, model: m}\n", "cfg/j.yml"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_config(path).judges[0].user.text == "From the file: {{input}}"


def test_sha256_covers_config_and_prompt_files(judges_config: Path) -> None:
    """The config hash is over the config bytes and each prompt file, and changes with either."""
    prompt = judges_config.parent / "prompts" / "safety.txt"
    data = prompt.read_bytes()
    expected = hashlib.sha256(judges_config.read_bytes())
    expected.update(len(data).to_bytes(8, "big") + data)
    first = load_config(judges_config).sha256
    assert first == expected.hexdigest()
    prompt.write_text("Changed {{input}}", encoding="utf-8")
    assert load_config(judges_config).sha256 != first


def test_example_configs_load() -> None:
    """The bundled examples are valid configs of both shapes."""
    judges = load_config(EXAMPLES / "judges.yml")
    assert judges.shape == "judges"
    assert [j.model for j in judges.judges] == ["gpt-4o-mini", "gpt-4o", "gpt-4o-mini"]
    assert judges.judge("support_quality").system is not None
    pipeline = load_config(EXAMPLES / "pipeline.yml")
    assert pipeline.shape == "steps"
    assert pipeline.judge("resolution").depends_on == ("grounded", "tone")


def test_load_config_is_exported() -> None:
    """`kyro.load_config` is the public entry point."""
    assert kyro.load_config is load_config


def test_single_line_prompt_naming_a_file_reads_that_file(tmp_path: Path) -> None:
    """`prompt: ./prompts/safety.txt` is read as that file, relative to the config."""
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "safety.txt").write_text("Is it safe? {{input}}", encoding="utf-8")
    config = load_config(
        write(tmp_path, "judges:\n  - name: safety\n    prompt: ./prompts/safety.txt\n")
    )
    (judge,) = config.judges
    assert judge.user.text == "Is it safe? {{input}}"
    assert (judge.prompt_source, judge.prompt_file) == ("prompt", "./prompts/safety.txt")
    plain = load_config(write(tmp_path, "judges:\n  - name: a\n    prompt: Is it safe?\n"))
    assert plain.judges[0].user.text == "Is it safe?"


@pytest.mark.parametrize(
    "prompt", ["./missing.txt", "../p", "/nowhere/at/all", "rules.md", "x.prompt"]
)
def test_prompt_that_looks_like_a_missing_path_is_an_error(tmp_path: Path, prompt: str) -> None:
    """A path-like single-line prompt naming no file is an error at its line:column."""
    path = write(tmp_path, f"judges:\n  - name: a\n    prompt: {prompt}\n")
    with pytest.raises(kyro.BatchValidationError) as info:
        load_config(path)
    assert (info.value.line, info.value.column) == (3, 13)
    assert f"judge 'a': prompt {prompt!r} looks like a file path, but" in info.value.message
    assert "does not exist" in info.value.message
