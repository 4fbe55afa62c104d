"""One judge of a judges config: its user-written schema and how it becomes a :class:`Judge`.

Per judge (``judges:`` entry or pipeline ``steps:`` entry):

* ``name`` — required, unique, non-empty text.
* exactly one prompt source: ``prompt`` (inline text), ``prompt_file`` (a UTF-8 file, relative
  to the config file's folder unless absolute) or ``prompt_xml`` (a mapping section → text).
  A single-line ``prompt`` that names an existing file (relative to the config's folder) is
  read as that file, as the seeds allow; one that looks like a path — starting ``./``,
  ``../`` or ``/``, or ending ``.txt``, ``.md`` or ``.prompt`` — but names no file is an
  error at its line:column. Anything else is the prompt text itself.
  ``prompt_xml`` renders as ``<section>\\ntext\\n</section>`` blocks joined by a blank line in
  the order written; its ``role`` section, if any, is not a block but the system message.
* ``output_format`` — optional, and ``json`` is the only value (kyro parses replies as JSON).
* ``model`` — optional: else the config's ``model:``, else resolved when a provider is known
  (``kyro._config.judges.resolve_models``).
* ``params`` — a mapping passed to the provider as is (temperature, max_tokens, …); ``model``
  and ``messages`` are refused there because kyro sets them, and so are values that cannot be
  sent as JSON, ``n`` other than 1 and ``stream: true`` (see :mod:`kyro._config.params`).
* ``variables`` — defaults for ``{{variables.name}}``: text, numbers or true/false, all stored
  as text (``true``/``false`` as written in YAML).
* ``depends_on`` — a step name or a list of them; ``on_failure`` — one step name.
* ``pass_threshold`` — a number from 0 to 1 (default 0.5): a reply with a ``score`` and no
  ``status`` passes (SUCCESS) at or above it, else it is an ERROR.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from kyro._config.judges import Judge, ModelSource, PromptSource
from kyro._config.params import check_model_name, check_params
from kyro._config.templates import _FIELD, _PLACEHOLDER, Template, variable_text
from kyro._config.yaml_doc import Segment, YamlDocument, read_text
from kyro._config.yaml_struct import convert_struct
from kyro._exceptions import BatchValidationError

__all__ = ["JUDGE_KEYS", "JudgeSpec", "PromptFiles", "build_judge"]

_SECTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_RESERVED_PARAMS = ("model", "messages")
_PATH_PREFIXES = ("./", "../", "/", ".\\", "..\\")
_PATH_SUFFIXES = (".txt", ".md", ".prompt")
_SOURCES: tuple[PromptSource, ...] = ("prompt", "prompt_file", "prompt_xml")


class JudgeSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One judge exactly as written in YAML, before prompts and models are resolved."""

    name: str
    prompt: str | None = None
    prompt_file: str | None = None
    prompt_xml: dict[str, Any] | None = None
    output_format: str = "json"
    model: str | None = None
    params: dict[str, Any] = {}
    variables: dict[str, Any] = {}
    depends_on: str | list[str] = []
    on_failure: str | None = None
    pass_threshold: float = 0.5


JUDGE_KEYS: tuple[str, ...] = JudgeSpec.__struct_fields__


class PromptFiles:
    """Reads prompt files relative to the config's folder, each once, feeding the config hash."""

    def __init__(self, folder: Path, hasher: hashlib._Hash) -> None:
        self.folder = folder
        self.hasher = hasher
        self._texts: dict[Path, str] = {}

    def read(self, doc: YamlDocument, name: str, segments: Sequence[Segment]) -> tuple[Path, str]:
        """The file's path (as it should be shown) and its text; errors point at the config."""
        path = self.folder / name
        key = path.resolve()
        if key not in self._texts:
            try:
                data, text = read_text(path, "prompt file")
            except BatchValidationError as exc:
                raise doc.error(
                    f"prompt file {name!r} ({path}): {exc.message}; prompt_file paths are "
                    "relative to the config file's folder",
                    segments,
                ) from exc
            self.hasher.update(len(data).to_bytes(8, "big"))
            self.hasher.update(data)
            self._texts[key] = text
        return path, self._texts[key]


def build_judge(
    doc: YamlDocument,
    entry: dict[str, Any],
    at: tuple[Segment, ...],
    default_model: str | None,
    prompts: PromptFiles,
) -> Judge:
    """Validate one ``judges``/``steps`` entry and resolve it into a :class:`Judge`."""
    spec = convert_struct(doc, entry, JudgeSpec, at)
    name = spec.name
    if not name.strip():
        raise doc.error("a judge's name must not be empty", (*at, "name"))
    label = f"judge {name!r}"
    sources = [key for key in _SOURCES if getattr(spec, key) is not None]
    if len(sources) != 1:
        what = "has no prompt" if not sources else "has more than one prompt source"
        raise doc.error(
            f"{label} {what}; give exactly one of `prompt` (inline text), `prompt_file` "
            "(a file next to the config) or `prompt_xml` (sections)",
            (*at, sources[1]) if len(sources) > 1 else at,
            key=len(sources) > 1,
        )
    if spec.output_format != "json":
        raise doc.error(
            f"{label}: output_format {spec.output_format!r} is not supported; use "
            "`output_format: json` (judges reply with a JSON verdict)",
            (*at, "output_format"),
        )
    model = spec.model if spec.model is not None else default_model
    if model is not None and not model.strip():
        raise doc.error(f"{label}: model must not be empty", (*at, "model"))
    model_source: ModelSource | None = (
        "judge" if spec.model is not None else "config" if model else None
    )
    if not 0.0 <= spec.pass_threshold <= 1.0:
        raise doc.error(
            f"{label}: pass_threshold {spec.pass_threshold!r} must lie between 0 and 1 (a "
            "reply's score passes at or above it)",
            (*at, "pass_threshold"),
        )
    for key in _RESERVED_PARAMS:
        if key in spec.params:
            raise doc.error(
                f"{label}: params may not set {key!r}; kyro sets it (use the judge's `model:` "
                "key, and the prompt for messages)",
                (*at, "params", key),
                key=True,
            )
    check_params(doc, spec.params, label, at)
    if model is not None:
        check_model_name(
            doc, model, label, (*at, "model") if spec.model is not None else ("model",)
        )
    system: Template | None = None
    prompt_file: str | None = None
    named = _prompt_path(doc, spec.prompt, prompts.folder, (*at, "prompt"), label)
    if named is not None:
        prompt_file = named
        path, text = prompts.read(doc, named, (*at, "prompt"))
        user = _compile(doc, text, name, (*at, "prompt"), file=path)
    elif spec.prompt is not None:
        user = _compile(doc, spec.prompt, name, (*at, "prompt"))
    elif spec.prompt_file is not None:
        prompt_file = spec.prompt_file
        path, text = prompts.read(doc, spec.prompt_file, (*at, "prompt_file"))
        user = _compile(doc, text, name, (*at, "prompt_file"), file=path)
    else:
        system, user = _xml(doc, spec.prompt_xml or {}, name, (*at, "prompt_xml"))
    return Judge(
        name=name,
        model=model,
        prompt_source=sources[0],
        user=user,
        system=system,
        prompt_file=prompt_file,
        params=dict(spec.params),
        variables=_variables(doc, spec.variables, label, (*at, "variables")),
        depends_on=tuple(dict.fromkeys(_names(spec.depends_on))),
        on_failure=spec.on_failure,
        model_source=model_source,
        pass_threshold=float(spec.pass_threshold),
    )


def _prompt_path(
    doc: YamlDocument,
    prompt: str | None,
    folder: Path,
    at: tuple[Segment, ...],
    label: str,
) -> str | None:
    """The file a ``prompt:`` names, or None when it is inline text (see the module rule)."""
    if prompt is None:
        return None
    line = prompt.strip()
    if not line or "\n" in line or "\r" in line or "{{" in line:
        return None
    try:
        exists = (folder / line).is_file()
    except (OSError, ValueError):
        exists = False
    if exists:
        return line
    if line.startswith(_PATH_PREFIXES) or line.lower().endswith(_PATH_SUFFIXES):
        raise doc.error(
            f"{label}: prompt {line!r} looks like a file path, but {folder / line} does not "
            "exist; fix the path (relative to the config file's folder), or write the prompt "
            "text itself",
            at,
        )
    return None


def _names(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def _xml(
    doc: YamlDocument, sections: dict[str, Any], judge: str, at: tuple[Segment, ...]
) -> tuple[Template | None, Template]:
    system: Template | None = None
    blocks: list[str] = []
    for section, text in sections.items():
        where = (*at, section)
        if not _SECTION.match(section):
            raise doc.error(
                f"judge {judge!r}: prompt_xml section {section!r} cannot be an XML tag; use "
                "letters, digits, '_', '-' and '.', starting with a letter",
                where,
                key=True,
            )
        if not isinstance(text, str):
            raise doc.error(f"judge {judge!r}: prompt_xml section {section!r} must be text", where)
        body = text.strip("\n")
        if section == "role":
            system = _compile(doc, body, judge, where)
        else:
            _compile(doc, body, judge, where)
            blocks.append(f"<{section}>\n{body}\n</{section}>")
    if not blocks:
        raise doc.error(
            f"judge {judge!r}: prompt_xml needs at least one section besides `role` "
            "(for example `task:`)",
            at,
        )
    return system, _compile(doc, "\n\n".join(blocks), judge, at)


def _compile(
    doc: YamlDocument,
    text: str,
    judge: str,
    at: tuple[Segment, ...],
    *,
    file: Path | None = None,
) -> Template:
    if not text.strip():
        what = f"prompt file {str(file)!r}" if file else "the prompt"
        raise doc.error(f"judge {judge!r}: {what} is empty; write the judge's instructions", at)
    try:
        return Template(text, judge=judge)
    except BatchValidationError as exc:
        if file is None:
            raise doc.error(exc.message, at) from None
        line, column = _bad_placeholder(text)
        raise BatchValidationError(exc.message, path=file, line=line, column=column) from None


def _bad_placeholder(text: str) -> tuple[int, int]:
    """1-based line:column of the first placeholder that is not a known template field."""
    for match in _PLACEHOLDER.finditer(text):
        if not _FIELD.match(match.group(1).strip()):
            start = match.start()
            return text.count("\n", 0, start) + 1, start - (text.rfind("\n", 0, start) + 1) + 1
    return 1, 1


def _variables(
    doc: YamlDocument, values: dict[str, Any], label: str, at: tuple[Segment, ...]
) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in values.items():
        text = variable_text(value)
        if text is not None:
            out[key] = text
        else:
            raise doc.error(
                f"{label}: variable {key!r} must be text, a number or true/false",
                (*at, key),
            )
    return out
