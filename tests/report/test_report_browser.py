"""The HTML report as a person sees it, in headless Debian Chromium."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kyro._cost.prices import load_prices
from kyro._report.html import write_report
from tests.report.report_browser import Browser, Page, chromium_path
from tests.report.report_helpers import write_results

pytestmark = pytest.mark.slow  # headless Chromium

ROWS = "#rows tbody tr"


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    """The report of the hand-countable results, open in a fresh headless Chromium."""
    folder = tmp_path_factory.mktemp("report")
    results = write_results(folder / "results.jsonl")
    report = folder / "report.html"
    write_report(results, report, prices=load_prices(), model="gpt-4o")
    with Browser.launch(chromium_path(), folder / "profile") as browser:
        yield browser.open(report.as_uri())


def test_summary_shows_the_numbers(page: Page) -> None:
    """The summary cards and the judges table show the hand-counted figures."""
    assert page.text("[data-testid=transcripts] b") == "5"
    assert page.text("[data-testid=pass-rate] b") == "50.0%"
    assert page.text("[data-testid=count-SUCCESS] b") == "2"
    assert page.text("[data-testid=count-PARTIAL] b") == "1"
    assert page.text("[data-testid=runs] b") == "30 (2)"
    assert page.text("[data-testid=cached] b") == "1"
    assert page.text("[data-testid=tokens] b") == "2,900 / 1,160 / 580"
    assert page.text("[data-testid=cost] b") == "$0.0030"
    assert page.text("[data-testid=rate-tone]") == "75.0%"
    assert page.text("[data-testid=rate-facts]") == "60.0%"
    assert "2 of 5 (40.0%)" in page.text("section:nth-of-type(2) table")
    assert page.evaluate("document.querySelectorAll('figure.hist').length") == 2


def test_filters_hide_rows(page: Page) -> None:
    """Choosing a status, then a judge, hides the rows that do not match; 'all' shows them."""
    assert page.visible_rows(ROWS) == ["0", "1", "2", "3", "4"]
    page.select("#f-status", "ERROR")
    # Transcript 1 is ERROR; transcript 2 is PARTIAL with facts ERROR.
    assert page.visible_rows(ROWS) == ["1", "2"]
    assert page.text("#shown") == "2"
    page.select("#f-judge", "tone")
    assert page.visible_rows(ROWS) == ["1"]
    page.select("#f-status", "all")
    page.select("#f-judge", "escalate")
    assert page.visible_rows(ROWS) == ["1"]
    assert "skipped: tone failed" in page.text("#rows tbody tr:nth-child(2)")
    page.select("#f-judge", "all")
    assert page.visible_rows(ROWS) == ["0", "1", "2", "3", "4"]
    assert page.text("#shown") == "5"


def test_escaped_text_shows_as_text_and_screenshot(page: Page, tmp_path: Path) -> None:
    """Markup from results shows as literal text, no script ran, and a screenshot is saved."""
    row = page.text("#rows tbody tr:nth-child(4)")
    assert "<script>alert(1)</script>" in row
    assert "runs 0–1: ERRORED — unparseable_reply: the reply is not JSON" in row
    assert page.evaluate("document.querySelectorAll('#rows b').length") == 0
    target = Path(os.environ.get("KYRO_REPORT_SCREENSHOT", tmp_path / "report.png"))
    png = page.screenshot(target)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 10_000
