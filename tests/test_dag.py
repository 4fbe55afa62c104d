"""The pipeline DAG: stages, gating, effective verdicts, and the checks made when a config loads."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kyro import BatchValidationError, load_config
from kyro._config.dag import StepGraph
from kyro._contract import VERDICT_RESPONSE_SCHEMA, verdict_message
from kyro._plan.planner import Planner
from kyro._transcripts import Transcript
from kyro.cli import main

# Two roots (a, b), a diamond (a → c, a → d, c + d → e) and an on_failure chain two deep
# (c → f1 → f2).
DIAMOND = """\
model: m
steps:
  - {name: a, prompt: "A {{input}}. Reply in JSON."}
  - {name: b, prompt: "B {{input}}. Reply in JSON."}
  - {name: c, prompt: "C after {{steps.a.status}}/{{steps.b.root_cause}}. JSON.",
     depends_on: [a, b], on_failure: f1}
  - {name: d, prompt: "D {{steps.a.score}} JSON.", depends_on: a}
  - {name: e, prompt: "E {{steps.c.status}} {{steps.f1.status}} {{steps.f2.root_cause}} JSON.",
     depends_on: [c, d]}
  - {name: f1, prompt: "F1 because {{steps.c.root_cause}}. JSON.", on_failure: f2}
  - {name: f2, prompt: "F2 after {{steps.f1.status}}. JSON."}
"""


def write(folder: Path, text: str) -> Path:
    path = folder / "pipeline.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def refused(folder: Path, text: str) -> BatchValidationError:
    with pytest.raises(BatchValidationError) as info:
        load_config(write(folder, text))
    return info.value


@pytest.fixture
def graph(tmp_path: Path) -> StepGraph:
    return load_config(write(tmp_path, DIAMOND)).graph()


def test_stages_follow_dependencies_and_fallback_chains(graph: StepGraph) -> None:
    """Roots share stage 0, a fallback follows its primary, and a dependent waits for the chain."""
    assert graph.stages == (("a", "b"), ("c", "d"), ("f1",), ("f2",), ("e",))
    assert (graph.stage["d"], graph.done["c"], graph.done["a"]) == (1, 3, 0)
    assert graph.rolled_up == ("a", "b", "c", "d", "e")
    assert graph.trigger == {"f1": "c", "f2": "f1"}
    assert graph.is_pipeline


def test_fallback_only_step_is_not_a_root(tmp_path: Path) -> None:
    """A step named only as an on_failure, with no depends_on, runs after its primary."""
    config = load_config(
        write(
            tmp_path,
            "model: m\nsteps:\n  - {name: p, prompt: x, on_failure: q}\n  - {name: q, prompt: y}\n",
        )
    )
    assert config.graph().stages == (("p",), ("q",))


def test_plain_judges_are_one_stage(tmp_path: Path) -> None:
    """A config without links is a single stage of every judge and is not a pipeline."""
    config = load_config(
        write(tmp_path, "model: m\njudges:\n  - {name: a, prompt: x}\n  - {name: b, prompt: y}\n")
    )
    graph = config.graph()
    assert graph.stages == (("a", "b"),)
    assert not graph.is_pipeline


def test_ancestors_are_dependencies_their_chains_and_primaries(graph: StepGraph) -> None:
    """What a step may read: its dependencies, their fallbacks, its primary, and theirs."""
    assert graph.ancestors("a") == frozenset()
    assert graph.ancestors("c") == {"a", "b"}
    assert graph.ancestors("e") == {"a", "b", "c", "d", "f1", "f2"}
    assert graph.ancestors("f2") == {"a", "b", "c", "f1"}


def test_gating_uses_effective_verdicts(graph: StepGraph) -> None:
    """A failed step whose fallback passes lets its dependents run; a failing chain skips them."""
    rescued = {
        "a": "SUCCESS",
        "b": "NA",
        "c": "ERROR",
        "d": "SUCCESS",
        "f1": "ERRORED",
        "f2": "SUCCESS",
    }
    assert graph.decide("e", rescued) == ("RUN", None)
    assert graph.effective("c", rescued) == ("SUCCESS", "f2")
    failed = {**rescued, "f1": "ERROR", "f2": "ERROR"}
    assert graph.decide("e", failed) == (
        "SKIPPED",
        "dependency 'c' ended ERROR (through its fallback 'f2')",
    )
    assert graph.decide("c", {"a": "ERROR", "b": "SUCCESS"}) == (
        "SKIPPED",
        "dependency 'a' ended ERROR",
    )


def test_fallbacks_trigger_only_on_a_failure_that_ran(graph: StepGraph) -> None:
    """ERROR and ERRORED trigger a fallback; a pass or a skipped primary does not."""
    assert graph.decide("f1", {"a": "SUCCESS", "b": "SUCCESS", "c": "ERRORED"}) == ("RUN", None)
    assert graph.decide("f1", {"a": "SUCCESS", "b": "SUCCESS", "c": "NA"}) == (
        "NOT_TRIGGERED",
        "'c' ended NA",
    )
    assert graph.decide("f1", {"a": "ERROR", "b": "SUCCESS"}) == (
        "NOT_TRIGGERED",
        "'c' did not run",
    )
    # A skipped step is skipped for its dependents too, named as such.
    own = {"a": "ERROR", "b": "SUCCESS", "d": "SUCCESS"}
    assert graph.effective("c", own) == ("SKIPPED", "c")
    assert graph.decide("e", own) == ("SKIPPED", "dependency 'c' was skipped")


def test_failed_fallback_that_did_not_run_keeps_the_primary_verdict(graph: StepGraph) -> None:
    """When the fallback is itself skipped, the primary's own failure stays effective."""
    own = {"a": "SUCCESS", "b": "SUCCESS", "c": "ERROR", "f1": "SUCCESS"}
    assert graph.effective("c", own) == ("SUCCESS", "f1")
    assert graph.effective("c", {"a": "SUCCESS", "b": "SUCCESS", "c": "ERROR"}) == ("ERROR", "c")


STEP_ERRORS = {
    "not an ancestor": (
        "model: m\nsteps:\n  - {name: a, prompt: x}\n"
        "  - {name: b, prompt: 'y {{steps.a.status}}'}\n",
        (4, 15),
        "step 'b' reads {{steps.a.…}}, but 'a' is not decided before 'b' runs; a prompt may "
        "only read the steps it depends on, their fallbacks and their ancestors (here: none",
    ),
    "unknown step": (
        "model: m\nsteps:\n  - {name: a, prompt: x}\n"
        "  - {name: b, prompt: 'y {{steps.zz.score}}', depends_on: a}\n",
        (4, 15),
        "there is no step 'zz'",
    ),
    "own result": (
        "model: m\nsteps:\n  - {name: a, prompt: 'x {{steps.a.status}}'}\n",
        (3, 15),
        "a step cannot read its own result",
    ),
    "two primaries share a fallback": (
        "model: m\nsteps:\n  - {name: a, prompt: x, on_failure: f}\n"
        "  - {name: b, prompt: x, on_failure: f}\n  - {name: f, prompt: x}\n",
        (4, 38),
        "step 'f' is already the on_failure of 'a'; a fallback serves one step",
    ),
    "depends on a fallback": (
        "model: m\nsteps:\n  - {name: a, prompt: x, on_failure: f}\n"
        "  - {name: f, prompt: x}\n  - {name: g, prompt: x, depends_on: f}\n",
        (5, 38),
        "step 'g' depends on 'f', which runs only as the on_failure of 'a'; depend on 'a'",
    ),
    "fallback waits for its primary's dependent": (
        "model: m\nsteps:\n  - {name: p, prompt: x, on_failure: f}\n"
        "  - {name: q, prompt: x, depends_on: p}\n  - {name: f, prompt: x, depends_on: q}\n",
        (4, 12),
        "dependency cycle: q -> f -> q",
    ),
    "unknown template attribute": (
        "model: m\nsteps:\n  - {name: a, prompt: x}\n"
        "  - {name: b, prompt: 'y {{steps.a.verdict}}', depends_on: a}\n",
        (4, 23),
        "{{steps.<step>.status}} (also .score, .root_cause)",
    ),
}


@pytest.mark.parametrize("case", list(STEP_ERRORS))
def test_pipeline_config_errors(tmp_path: Path, case: str) -> None:
    """Each pipeline mistake is refused at load with its line:column and how to fix it."""
    text, position, message = STEP_ERRORS[case]
    error = refused(tmp_path, text)
    assert message in error.message, error
    assert (error.line, error.column) == position, error


def test_steps_placeholders_render_upstream_results(tmp_path: Path) -> None:
    """{{steps.x.…}} fills in the given upstream values and only the chosen judges are planned."""
    config = load_config(write(tmp_path, DIAMOND))
    planner = Planner(config, 1, {}, 2, None)
    transcript = Transcript(index=7, source="inline:7", value="hi")
    upstream = {"c": {"status": "ERROR", "score": "", "root_cause": "off {{topic}}"}}
    (request,) = planner.requests_for(transcript, [5], upstream)
    assert request.custom_id == "s2-t7-j5-r0"
    assert request.messages[-1].content == "F1 because off {{topic}}. JSON."
    # A later stage's request carries the verdict contract like any other: head and schema.
    assert request.messages[0] == verdict_message()
    assert [m.role for m in request.messages] == ["system", "user"]
    assert request.response_schema == VERDICT_RESPONSE_SCHEMA
    assert request.model == "m"
    with pytest.raises(BatchValidationError, match="step 'c' has no result here"):
        planner.requests_for(transcript, [5], {})


def test_validate_prints_the_stages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`kyro validate` lists each stage's steps and marks fallbacks with their primary."""
    assert main(["validate", str(write(tmp_path, DIAMOND))]) == 0
    out = capsys.readouterr().out
    assert (
        "stages (5; a stage runs once the stages before it are decided; a batch job submits "
        "one stage at a time):\n"
        "  stage 0: a, b  (roots: run side by side)\n"
        "  stage 1: c, d\n"
        "  stage 2: f1 (on_failure of c)\n"
        "  stage 3: f2 (on_failure of f1)\n"
        "  stage 4: e\n"
    ) in out
