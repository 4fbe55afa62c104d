"""A pipeline job's report: per-step pass rates in the data and as a person sees them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from kyro import KyroJudge
from kyro._cost.prices import load_prices
from kyro._live.live_judge import run_to_file
from kyro._report.data import summarize_results
from kyro._report.html import write_report
from kyro_local import LocalProvider
from tests.pipeline_helpers import responder, write_pipeline
from tests.report.report_browser import Browser, Page, chromium_path
from tests.report.report_helpers import write_results

# Hand-counted from the crafted plans (one run each): (ran, own pass rate, effective pass
# rate, skipped, not triggered). accuracy: SUCCESS ×2, ERROR ×2, ERRORED ×1 where it ran,
# skipped once; its fallbacks turn two failures into SUCCESS, so 4 of 5 effective passes.
STEPS = {
    "relevance": (6, "83.3%", "83.3%", 0, 0),
    "safety": (6, "100.0%", "100.0%", 0, 0),
    "accuracy": (5, "50.0%", "80.0%", 1, 0),
    "style": (5, "100.0%", "100.0%", 1, 0),
    "accuracy_review": (3, "33.3%", "66.7%", 0, 3),
    "accuracy_appeal": (2, "50.0%", "50.0%", 0, 4),
    "quality": (4, "75.0%", "75.0%", 2, 0),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The results file of the crafted pipeline walked live through a callable."""
    folder = tmp_path_factory.mktemp("pipeline")
    config, data = write_pipeline(folder)

    async def walk() -> Path:
        provider = LocalProvider(handler=lambda body: responder(body), state_dir=folder / "local")
        async with KyroJudge(config, provider=provider, cache=False) as judge:
            result = await run_to_file(
                judge, [data], folder / "results.jsonl", variables={"tone": "x"}
            )
        return result.results_path

    return anyio.run(walk)


def test_step_figures_are_counted_from_each_line(results: Path) -> None:
    """Every step's ran / skipped / not triggered counts and its own and effective pass
    rates are the hand-counted ones."""
    data = summarize_results(results, prices=load_prices())
    assert list(data.steps) == list(STEPS)
    for name, (ran, own, effective, skipped, untriggered) in STEPS.items():
        step = data.steps[name]
        assert step.ran == ran, name
        assert f"{step.pass_rate:.1%}" == own, name
        assert f"{step.effective_pass_rate:.1%}" == effective, name
        assert step.states.get("SKIPPED", 0) == skipped, name
        assert step.states.get("NOT_TRIGGERED", 0) == untriggered, name
    assert data.steps["accuracy"].own == {"SUCCESS": 2, "ERROR": 2, "ERRORED": 1}


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """A fresh headless Chromium for this module."""
    with Browser.launch(chromium_path(), tmp_path_factory.mktemp("profile")) as opened:
        yield opened


@pytest.mark.slow  # headless Chromium, like the other browser tests
def test_the_pipeline_section_shows_each_step_rate(
    results: Path, browser: Browser, tmp_path: Path
) -> None:
    """The report of a pipeline job shows a steps table with each step's pass rates and
    counts as rendered text."""
    report = tmp_path / "report.html"
    write_report(results, report, prices=load_prices())
    page: Page = browser.open(report.as_uri())
    assert page.text("#steps thead").split("\t")[:3] == ["step", "ran", "pass rate"]
    rows = page.evaluate(
        "[...document.querySelectorAll('#steps tbody tr')]"
        ".map(r => [...r.cells].map(c => c.innerText.trim()))"
    )
    shown = {row[0]: row for row in rows}
    for name, (ran, own, effective, skipped, untriggered) in STEPS.items():
        assert page.text(f"[data-testid=step-rate-{name}]") == own
        assert page.text(f"[data-testid=step-effective-{name}]") == effective
        # step, ran, pass rate, its bar, effective, skipped, not triggered, not reached
        assert shown[name] == [
            name,
            str(ran),
            own,
            "",
            effective,
            str(skipped),
            str(untriggered),
            "0",
        ]


def test_a_plain_job_has_no_steps_section(browser: Browser, tmp_path: Path) -> None:
    """Results without pipeline steps show no steps table."""
    results = write_results(tmp_path / "results.jsonl")
    report = tmp_path / "report.html"
    write_report(results, report, prices=load_prices())
    page = browser.open(report.as_uri())
    assert page.evaluate("document.getElementById('steps') === null") is True
    assert "Pipeline steps" not in page.text("main")
