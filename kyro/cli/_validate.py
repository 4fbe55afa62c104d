"""``kyro validate CONFIG``: load a judges config and describe what kyro understood.

Prints one header line (path, shape, version, number of judges, config hash) and, per judge,
its prompt source, model (and where that model comes from), template fields and pipeline links;
for a pipeline, its stages. Exit status 0 when the config is valid; an invalid one prints
``file:line:column: message`` to stderr and exits 2. Whatever ``plan`` or ``submit`` would
refuse in the config itself (a judge without a model), ``validate`` refuses first, in the same
words.
"""

from __future__ import annotations

import argparse
from typing import Any

from kyro._config.judges import MODEL_SOURCES, Judge, JudgesConfig, resolve_models
from kyro._config.loader import load_config
from kyro._registry import provider_default_model
from kyro.cli._commands import add_command
from kyro.cli._exit import ExitCode

__all__ = ["describe", "register", "run", "stage_lines"]

_EPILOG = """\
examples:
  python3 -m kyro validate examples/judges.yml
  python3 -m kyro validate judges.yml --model gpt-4.1-mini

exit status: 0 when the config is valid, 2 when it is not (the error is printed as
file:line:column: message)."""


def register(subparsers: Any) -> None:
    """Add the ``validate`` sub-command to the CLI's sub-parsers."""
    parser = add_command(
        subparsers,
        "validate",
        description="Load a judges config (judges: or steps: shape), resolve its prompts and "
        "models, and list every judge with the template fields it uses.",
        epilog=_EPILOG,
    )
    parser.add_argument("config", metavar="CONFIG", help="the judges YAML file")
    add_model_options(parser)
    parser.set_defaults(func=run)


def add_model_options(parser: argparse.ArgumentParser, *, provider: bool = True) -> None:
    """``--model`` (and ``--provider``, whose default model is the last resort)."""
    parser.add_argument(
        "--model",
        help="model of judges that name none (else KYRO_MODEL, else the provider's default)",
    )
    if provider:
        parser.add_argument(
            "--provider", default="openai", help="whose default model applies (default openai)"
        )


def run(args: argparse.Namespace) -> int:
    """Validate ``args.config`` and print its description; errors propagate to ``main``.

    Example::

        run(argparse.Namespace(config="examples/judges.yml", model=None, provider="openai"))
    """
    config = load_config(args.config)
    provider = getattr(args, "provider", "openai")
    config = resolve_models(
        config,
        model=getattr(args, "model", None),
        provider_default=provider_default_model(provider),
        provider=provider,
    )
    print(describe(config, provider=provider))
    return ExitCode.OK


def describe(config: JudgesConfig, *, provider: str | None = None) -> str:
    """A human-readable summary of a loaded config, as ``kyro validate`` prints it.

    Example::

        print(describe(kyro.load_config("examples/judges.yml")))
    """
    count = len(config.judges)
    noun = "judge" if count == 1 else "judges"
    title = f" ({config.name})" if config.name else ""
    lines = [
        f"{config.path}{title}: valid, {count} {noun} in the `{config.shape}:` shape, "
        f"version {config.version}",
        f"config sha256: {config.sha256}",
    ]
    if config.model:
        lines.append(f"default model: {config.model}")
    for judge in config.judges:
        lines.append("")
        lines.extend(_judge_lines(judge, provider))
    if config.uses_pipeline:
        lines.append("")
        lines.extend(stage_lines(config))
    return "\n".join(lines)


def stage_lines(config: JudgesConfig) -> list[str]:
    """The pipeline's stages, one line each: which steps are decided together, and why later.

    Example::

        stage_lines(kyro.load_config("examples/pipeline.yml"))[1]
        # '  stage 0: grounded, tone  (roots: run side by side)'
    """
    graph = config.graph()
    lines = [
        f"stages ({len(graph.stages)}; a stage runs once the stages before it are decided; "
        "a batch job submits one stage at a time):"
    ]
    for k, names in enumerate(graph.stages):
        described = []
        for name in names:
            primary = graph.trigger.get(name)
            described.append(f"{name} (on_failure of {primary})" if primary else name)
        note = "  (roots: run side by side)" if k == 0 else ""
        lines.append(f"  stage {k}: {', '.join(described)}{note}")
    return lines


def _judge_lines(judge: Judge, provider: str | None) -> list[str]:
    if judge.prompt_source == "prompt_file":
        source = f"file {judge.prompt_file}"
    elif judge.prompt_file is not None:
        source = f"file {judge.prompt_file} (named by `prompt:`)"
    elif judge.prompt_source == "prompt_xml":
        source = "xml sections" + (" (role as the system message)" if judge.system else "")
    else:
        source = "inline"
    fields = ", ".join("{{" + field + "}}" for field in judge.fields) or "(none)"
    lines = [
        f"- {judge.name}",
        f"    prompt:  {source}",
        f"    model:   {judge.model or '(none yet)'}{_model_source(judge, provider)}",
        f"    fields:  {fields}",
    ]
    if judge.variables:
        defaults = ", ".join(f"{k}={v!r}" for k, v in judge.variables.items())
        lines.append(f"    defaults: {defaults}")
    if judge.params:
        lines.append(f"    params:  {', '.join(f'{k}={v!r}' for k, v in judge.params.items())}")
    if judge.depends_on:
        lines.append(f"    depends on: {', '.join(judge.depends_on)}")
    if judge.on_failure:
        lines.append(f"    on failure: {judge.on_failure}")
    return lines


def _model_source(judge: Judge, provider: str | None) -> str:
    if judge.model_source is None:
        return ""
    where = MODEL_SOURCES[judge.model_source]
    if judge.model_source == "provider" and provider:
        where = f"the {provider} provider's default model"
    return f"  (from {where})"
