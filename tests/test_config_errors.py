"""Every way a judges config can be wrong gives a BatchValidationError at file:line:column."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kyro import BatchValidationError, load_config


def fail(folder: Path, text: str, files: dict[str, bytes] | None = None) -> BatchValidationError:
    for name, data in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    path = folder / "judges.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(BatchValidationError) as info:
        load_config(path)
    assert info.value.path == str(path)
    return info.value


CASES = {
    "yaml syntax": (
        "judges:\n  - name: a\n    prompt: [x\n    model: m\n",
        (4, 10),
        "fix the syntax at this position",
    ),
    "duplicate YAML key": (
        "model: m\njudges: []\nmodel: n\n",
        (3, 1),
        "fix the syntax at this position",
    ),
    "alias bomb": (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e]\n",
        (1, 14),
        "the config expands to more than 200,000 values",
    ),
    "unknown top-level key": (
        "version: 1\nmodle: m\njudges:\n  - {name: a, prompt: x}\n",
        (2, 1),
        "unknown key 'modle' in the config; allowed keys are: version, name, description, model",
    ),
    "unknown judge key": (
        "judges:\n  - name: a\n    model: m\n    promt: x\n",
        (4, 5),
        "unknown key 'promt' in `judges[0]`; allowed keys are: name, prompt, prompt_file",
    ),
    "wrong type for name": (
        "judges:\n  - name: 3\n    prompt: x\n    model: m\n",
        (2, 11),
        "`judges[0].name` must be text, got a whole number; quote it",
    ),
    "wrong type for params": (
        "judges:\n  - name: a\n    prompt: x\n    model: m\n    params: [1]\n",
        (5, 13),
        "`judges[0].params` must be a mapping, got a list",
    ),
    "missing name": (
        "judges:\n  - prompt: x\n    model: m\n",
        (2, 5),
        "`judges[0]` is missing the required key 'name'",
    ),
    "no prompt": (
        "model: m\njudges:\n  - name: a\n    prompt: x\n  - name: b\n",
        (5, 5),
        "judge 'b' has no prompt; give exactly one of `prompt`",
    ),
    "two prompt sources": (
        "model: m\njudges:\n  - name: a\n    prompt: x\n    prompt_xml: {task: y}\n",
        (5, 5),
        "judge 'a' has more than one prompt source",
    ),
    "duplicate names": (
        "model: m\njudges:\n  - {name: a, prompt: x}\n  - name: b\n    prompt: y\n"
        "  - name: a\n    prompt: z\n",
        (6, 11),
        "duplicate judge name 'a' (first used on line 3); give every judge a unique name",
    ),
    "unknown dependency": (
        "model: m\nsteps:\n  - {name: relevance, prompt: x}\n  - name: b\n    prompt: y\n"
        "    depends_on:\n      - relevance\n      - relevanse\n",
        (8, 9),
        "judge 'b' depends on 'relevanse', which is not a step of this config; "
        "did you mean 'relevance'? known steps: relevance, b",
    ),
    "unknown on_failure": (
        "model: m\nsteps:\n  - name: a\n    prompt: y\n    on_failure: nowhere\n",
        (5, 17),
        "judge 'a' falls back to 'nowhere', which is not a step",
    ),
    "dependency cycle": (
        "model: m\nsteps:\n  - {name: a, prompt: x, depends_on: c}\n"
        "  - {name: b, prompt: x, depends_on: a}\n  - {name: c, prompt: x, depends_on: b}\n",
        (3, 12),
        "dependency cycle: a -> c -> b -> a",
    ),
    "cycle through on_failure": (
        "model: m\nsteps:\n  - {name: a, prompt: x, depends_on: b, on_failure: b}\n"
        "  - {name: b, prompt: x}\n",
        (3, 12),
        "dependency cycle: a -> b -> a",
    ),
    "self dependency": (
        "model: m\nsteps:\n  - {name: a, prompt: x}\n  - {name: b, prompt: x, depends_on: [b]}\n",
        (4, 12),
        "dependency cycle: b -> b",
    ),
    "output format other than json": (
        "model: m\njudges:\n  - name: a\n    prompt: x\n    output_format: text\n",
        (5, 20),
        "output_format 'text' is not supported; use `output_format: json`",
    ),
    "pass threshold out of range": (
        "model: m\njudges:\n  - name: a\n    prompt: x\n    pass_threshold: 1.5\n",
        (5, 21),
        "judge 'a': pass_threshold 1.5 must lie between 0 and 1",
    ),
    "empty judges list": ("version: 1\njudges: []\n", (2, 9), "`judges:` is empty"),
    "no judges at all": ("version: 1\nmodel: m\n", (1, 1), "the config has no judges"),
    "both shapes": (
        "judges: [{name: a, prompt: x}]\nsteps: [{name: b, prompt: x}]\n",
        (2, 1),
        "the config has both `judges:` and `steps:`",
    ),
    "unsupported version": (
        "version: 2\njudges:\n  - {name: a, prompt: x, model: m}\n",
        (1, 10),
        "unsupported version 2; this kyro reads `version: 1`",
    ),
    "boolean version": (
        "version: true\njudges:\n  - {name: a, prompt: x, model: m}\n",
        (1, 10),
        "unsupported version True",
    ),
    "inline template field": (
        "model: m\njudges:\n  - name: a\n    prompt: |\n      Hi {{inptu.x}}\n",
        (4, 13),
        "unknown template field {{inptu.x}}",
    ),
    "xml template field": (
        "model: m\njudges:\n  - name: a\n    prompt_xml:\n"
        "      task: t\n      context: '{{ctx}}'\n",
        (6, 16),
        "unknown template field {{ctx}}",
    ),
    "xml with only a role": (
        "model: m\njudges:\n  - name: a\n    prompt_xml:\n      role: r\n",
        (5, 7),
        "prompt_xml needs at least one section besides `role`",
    ),
    "xml section that is no tag": (
        "model: m\njudges:\n  - name: a\n    prompt_xml:\n      the task: t\n",
        (5, 7),
        "prompt_xml section 'the task' cannot be an XML tag",
    ),
    "xml section that is no text": (
        "model: m\njudges:\n  - name: a\n    prompt_xml:\n      task: [1]\n",
        (5, 13),
        "prompt_xml section 'task' must be text",
    ),
    "empty prompt": (
        "model: m\njudges:\n  - {name: a, prompt: ''}\n",
        (3, 23),
        "the prompt is empty",
    ),
    "variable that is a list": (
        "model: m\njudges:\n  - name: a\n    prompt: x\n    variables:\n      tags: [a]\n",
        (6, 13),
        "variable 'tags' must be text, a number or true/false",
    ),
    "reserved param": (
        "model: m\njudges:\n  - name: a\n    prompt: x\n    params:\n      model: other\n",
        (6, 7),
        "params may not set 'model'",
    ),
    "entry that is not a mapping": (
        "model: m\njudges:\n  - just text\n",
        (3, 5),
        "must be a mapping",
    ),
    "top level that is a list": ("- a\n- b\n", (1, 1), "the config must be a mapping"),
    "non-text key": (
        "model: m\n1: x\njudges: [{name: a, prompt: x}]\n",
        (2, 1),
        "keys must be text",
    ),
    "custom tag": ("model: !secret m\njudges: [{name: a, prompt: x}]\n", (1, 8), "(!secret)"),
    "recursive alias": ("&top {judges: *top}\n", (1, 1), "an alias refers to itself"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_config_error_position_and_message(tmp_path: Path, case: str) -> None:
    """Each config mistake is reported at its line:column with a message saying how to fix it."""
    text, position, message = CASES[case]
    error = fail(tmp_path, text)
    assert (error.line, error.column) == position, error
    assert message in error.message
    if case.startswith(("yaml syntax", "duplicate YAML")):
        assert error.message.startswith("invalid YAML: ")
    assert str(error).startswith(f"{tmp_path / 'judges.yml'}:{position[0]}:{position[1]}: ")


def test_missing_prompt_file_points_at_the_config(tmp_path: Path) -> None:
    """A prompt file that does not exist is reported at its `prompt_file` value."""
    error = fail(tmp_path, "model: m\njudges:\n  - name: a\n    prompt_file: nope.txt\n")
    assert (error.line, error.column) == (4, 18)
    assert "prompt file 'nope.txt'" in error.message
    assert "not found" in error.message
    assert "relative to the config file's folder" in error.message


def test_unreadable_prompt_file(tmp_path: Path) -> None:
    """A prompt_file naming a directory cannot be read and says so."""
    (tmp_path / "prompts").mkdir()
    error = fail(tmp_path, "model: m\njudges:\n  - {name: a, prompt_file: prompts}\n")
    assert (error.line, error.column) == (3, 28)
    assert "is a directory" in error.message


def test_non_utf8_prompt_file(tmp_path: Path) -> None:
    """A prompt file that is not UTF-8 is refused at its `prompt_file` value."""
    files = {"p.txt": b"caf\xe9 {{input}}"}
    error = fail(tmp_path, "model: m\njudges:\n  - name: a\n    prompt_file: p.txt\n", files)
    assert (error.line, error.column) == (4, 18)
    assert "is not UTF-8 text (byte 0xe9)" in error.message


def test_template_error_in_prompt_file_points_into_that_file(tmp_path: Path) -> None:
    """An unknown field inside a prompt file is reported at its line:column in that file."""
    files = {"p.txt": b"Line one\nSee {{input}} and {{ inputs.x }}\n"}
    (tmp_path / "judges.yml").write_text("model: m\njudges:\n  - {name: a, prompt_file: p.txt}\n")
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    with pytest.raises(BatchValidationError) as info:
        load_config(tmp_path / "judges.yml")
    assert (info.value.path, info.value.line, info.value.column) == (str(tmp_path / "p.txt"), 2, 19)
    assert "judge 'a': unknown template field {{ inputs.x }}" in info.value.message


def test_missing_config_file(tmp_path: Path) -> None:
    """A config path that does not exist is a clear error naming it."""
    with pytest.raises(BatchValidationError) as info:
        load_config(tmp_path / "absent.yml")
    assert str(info.value) == f"{tmp_path / 'absent.yml'}: config file not found; check the path"


def test_config_that_is_a_directory(tmp_path: Path) -> None:
    """A directory given as the config is refused by name."""
    with pytest.raises(BatchValidationError) as info:
        load_config(tmp_path)
    assert info.value.message == "config file is a directory; name a file"


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_config(tmp_path: Path, text: str) -> None:
    """An empty config says what to start it with."""
    error = fail(tmp_path, text)
    assert error.message.startswith("config file is empty; start it with `version: 1`")


def test_non_utf8_config(tmp_path: Path) -> None:
    """A config with bytes that are not UTF-8 is refused at the offending byte."""
    path = tmp_path / "judges.yml"
    path.write_bytes(b"model: m\njudges:\n  - {name: caf\xff, prompt: x}\n")
    with pytest.raises(BatchValidationError) as info:
        load_config(path)
    assert (info.value.line, info.value.column) == (3, 15)
    assert "not UTF-8 text (byte 0xff)" in info.value.message


def test_a_scalar_the_yaml_library_cannot_convert_is_a_clear_error(tmp_path: Path) -> None:
    """``._`` (resolved as a float the YAML library then cannot read) names the file, no crash."""
    config = tmp_path / "judges.yml"
    config.write_text("._", encoding="utf-8")
    with pytest.raises(BatchValidationError) as info:
        load_config(config)
    assert info.value.path == str(config)
    assert info.value.message.startswith("invalid YAML: a value cannot be read")
    assert "quote it" in info.value.message
