"""Hand-built configs and transcripts for the planning, builder and index tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kyro import Judge, JudgesConfig
from kyro._config.templates import Template
from kyro._transcripts import Transcript


def make_judge(
    name: str,
    prompt: str = "Reply in JSON. {{input}}",
    *,
    model: str = "gpt-4o-mini",
    system: str | None = None,
    params: dict[str, Any] | None = None,
    variables: dict[str, str] | None = None,
) -> Judge:
    """A judge as load_config would build it from an inline prompt (or an XML role)."""
    return Judge(
        name=name,
        model=model,
        prompt_source="prompt_xml" if system is not None else "prompt",
        user=Template(prompt, judge=name),
        system=Template(system, judge=name) if system is not None else None,
        params=params or {},
        variables=variables or {},
    )


def make_config(*judges: Judge) -> JudgesConfig:
    """A config holding ``judges`` (defaults to one judge called 'relevance')."""
    return JudgesConfig(
        path=Path("judges.yml"),
        version=1,
        shape="judges",
        judges=judges or (make_judge("relevance"),),
        sha256="0" * 64,
    )


def texts(count: int, start: int = 0) -> list[Transcript]:
    """``count`` inline text transcripts with distinct content."""
    return [
        Transcript(index=i, source=f"inline:{i}", value=f"user: question {i}\nassistant: answer")
        for i in range(start, start + count)
    ]
