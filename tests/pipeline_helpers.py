"""A pipeline that exercises every rule, transcripts crafted per step, and the outcomes expected.

The pipeline: two parallel roots (``relevance``, ``safety``), a diamond (``relevance`` →
``accuracy`` and ``style`` → ``quality``, which also needs ``safety``), and an on_failure chain
two deep (``accuracy`` → ``accuracy_review`` → ``accuracy_appeal``). ``safety`` overrides the
run variable ``tone``. Each prompt carries ``STEP=<name>`` and the transcript's ``plan``;
:func:`responder` answers each step as the plan says (``name=STATUS``; ``ERRORED`` is prose,
which is no verdict; a step the plan does not name passes).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from kyro import TranscriptEvaluation

PIPELINE = """\
version: 1
model: judge-model
steps:
  - name: relevance
    prompt: "STEP=relevance v={{variables.tone}} plan: {{input.plan}}. Reply in JSON."
    output_format: json
  - name: safety
    prompt: "STEP=safety v={{variables.tone}} plan: {{input.plan}}. Reply in JSON."
    output_format: json
    variables: {tone: strict}
  - name: accuracy
    depends_on: [relevance]
    on_failure: accuracy_review
    prompt: "STEP=accuracy after={{steps.relevance.status}} plan: {{input.plan}}. JSON."
    output_format: json
  - name: style
    depends_on: relevance
    prompt: "STEP=style plan: {{input.plan}}. Reply in JSON."
    output_format: json
  - name: accuracy_review
    on_failure: accuracy_appeal
    prompt: "STEP=accuracy_review why={{steps.accuracy.root_cause}} plan: {{input.plan}}. JSON."
    output_format: json
  - name: accuracy_appeal
    prompt: "STEP=accuracy_appeal prev={{steps.accuracy_review.status}} plan: {{input.plan}}. JSON."
    output_format: json
  - name: quality
    depends_on: [accuracy, style, safety]
    prompt: "STEP=quality acc={{steps.accuracy.status}} plan: {{input.plan}}. Reply in JSON."
    output_format: json
"""

STEPS = (
    "relevance",
    "safety",
    "accuracy",
    "style",
    "accuracy_review",
    "accuracy_appeal",
    "quality",
)

PLANS = (
    "all-pass",
    "relevance=ERROR",
    "accuracy=ERROR accuracy_review=SUCCESS",
    "accuracy=ERRORED accuracy_review=ERROR accuracy_appeal=SUCCESS",
    "accuracy=ERROR accuracy_review=ERROR accuracy_appeal=ERROR",
    "safety=NA quality=ERROR",
)

_R = "RAN"
_NT = ("NOT_TRIGGERED", None, "NOT_TRIGGERED", None)
# Per transcript, per step: (state, own status, effective, effective_from).
EXPECTED: tuple[tuple[str, dict[str, tuple[str, str | None, str, str | None]]], ...] = (
    (
        "SUCCESS",
        {
            **dict.fromkeys(STEPS, (_R, "SUCCESS", "SUCCESS", None)),
            "accuracy_review": _NT,
            "accuracy_appeal": _NT,
        },
    ),
    (
        "PARTIAL",
        {
            "relevance": (_R, "ERROR", "ERROR", None),
            "safety": (_R, "SUCCESS", "SUCCESS", None),
            "accuracy": ("SKIPPED", None, "SKIPPED", None),
            "style": ("SKIPPED", None, "SKIPPED", None),
            "accuracy_review": _NT,
            "accuracy_appeal": _NT,
            "quality": ("SKIPPED", None, "SKIPPED", None),
        },
    ),
    (
        "SUCCESS",
        {
            **dict.fromkeys(STEPS, (_R, "SUCCESS", "SUCCESS", None)),
            "accuracy": (_R, "ERROR", "SUCCESS", "accuracy_review"),
            "accuracy_appeal": _NT,
        },
    ),
    (
        "SUCCESS",
        {
            **dict.fromkeys(STEPS, (_R, "SUCCESS", "SUCCESS", None)),
            "accuracy": (_R, "ERRORED", "SUCCESS", "accuracy_appeal"),
            "accuracy_review": (_R, "ERROR", "SUCCESS", "accuracy_appeal"),
        },
    ),
    (
        "PARTIAL",
        {
            **dict.fromkeys(STEPS, (_R, "SUCCESS", "SUCCESS", None)),
            "accuracy": (_R, "ERROR", "ERROR", "accuracy_appeal"),
            "accuracy_review": (_R, "ERROR", "ERROR", "accuracy_appeal"),
            "accuracy_appeal": (_R, "ERROR", "ERROR", None),
            "quality": ("SKIPPED", None, "SKIPPED", None),
        },
    ),
    (
        "PARTIAL",
        {
            **dict.fromkeys(STEPS, (_R, "SUCCESS", "SUCCESS", None)),
            "safety": (_R, "NA", "NA", None),
            "quality": (_R, "ERROR", "ERROR", None),
            "accuracy_review": _NT,
            "accuracy_appeal": _NT,
        },
    ),
)

REASONS = {
    (1, "accuracy"): "dependency 'relevance' ended ERROR",
    (1, "quality"): "dependency 'accuracy' was skipped",
    (1, "accuracy_review"): "'accuracy' did not run",
    (0, "accuracy_review"): "'accuracy' ended SUCCESS",
    (4, "quality"): "dependency 'accuracy' ended ERROR (through its fallback 'accuracy_appeal')",
}

_STEP = re.compile(r"STEP=(\w+)")


def responder(body: dict[str, Any]) -> str:
    """The reply the plan in the prompt asks of the step the prompt names."""
    text = "\n".join(str(m.get("content", "")) for m in body["messages"])
    step = _STEP.search(text)
    assert step is not None, text
    name = step.group(1)
    wanted = re.search(rf"\b{name}=(\w+)", text.split("plan:", 1)[1])
    status = wanted.group(1) if wanted else "SUCCESS"
    if status == "ERRORED":
        return "I read it and it seems fine overall."
    seen = re.search(r"\b(?:v|why|prev|after|acc)=(\S*)", text)
    cause = f"{name}: {seen.group(0) if seen else 'plain'}"
    return json.dumps({"status": status, "root_cause": cause, "score": 0.5})


def write_pipeline(folder: Path) -> tuple[Path, Path]:
    """The pipeline config and a .jsonl of the crafted transcripts, written under ``folder``."""
    config = folder / "pipeline.yml"
    config.write_text(PIPELINE, encoding="utf-8")
    data = folder / "transcripts.jsonl"
    data.write_text("".join(json.dumps({"plan": p}) + "\n" for p in PLANS), encoding="utf-8")
    return config, data


def assert_outcomes(evaluations: list[TranscriptEvaluation]) -> None:
    """Every transcript's status and every step's outcome are exactly as EXPECTED."""
    assert [e.index for e in evaluations] == list(range(len(PLANS)))
    for evaluation, (status, steps) in zip(evaluations, EXPECTED, strict=True):
        got = {
            name: (o.state, o.status, o.effective, o.effective_from)
            for name, o in evaluation.steps.items()
        }
        assert got == steps, (evaluation.index, got)
        assert evaluation.status == status, evaluation.index
        assert set(evaluation.verdicts) == {n for n, o in steps.items() if o[0] == _R}
    for (index, step), reason in REASONS.items():
        assert evaluations[index].steps[step].reason == reason
