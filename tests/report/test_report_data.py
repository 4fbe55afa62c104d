"""The report's figures from one pass over a results file, the sampled table, and the CLI."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kyro import BatchValidationError
from kyro._cost.prices import load_prices
from kyro._report.data import ReportData, summarize_cost, summarize_results
from kyro._report.html import render_html
from kyro.cli import ExitCode, main
from tests.report.report_helpers import evaluations, write_results


def test_summary_figures_match_hand_counts(tmp_path: Path) -> None:
    """Counts, pass rates, agreement, histogram, tokens and cost are the hand-counted ones."""
    path = write_results(tmp_path / "results.jsonl")
    data = summarize_results(path, prices=load_prices(), model="gpt-4o")
    assert data.transcripts == 5
    assert data.statuses == {"SUCCESS": 2, "ERROR": 1, "PARTIAL": 1, "ERRORED": 1}
    assert data.pass_rate == pytest.approx(0.5)
    tone, facts, escalate = data.judges["tone"], data.judges["facts"], data.judges["escalate"]
    assert tone.counts == {"SUCCESS": 2, "ERROR": 1, "ERRORED": 1, "NA": 1}
    assert tone.pass_rate == pytest.approx(0.75)
    assert facts.pass_rate == pytest.approx(0.6)
    assert escalate.counts == {"SKIPPED": 1}
    assert escalate.pass_rate is None
    assert (tone.multi_run, tone.disagreed) == (4, 0)
    assert (facts.multi_run, facts.disagreed) == (5, 2)
    assert tone.histogram == [0, 2, 1, 0, 0, 0, 0, 0, 1, 2]
    assert tone.score_sum / tone.scores == pytest.approx(3.05 / 6)
    assert tone.models == {"gpt-4o-mini": 5}
    assert (data.runs, data.errored_runs, data.cached_runs) == (30, 2, 1)
    assert (data.input_tokens, data.cached_input_tokens, data.output_tokens) == (2900, 1160, 580)
    # tone (gpt-4o-mini batch): 900 × 0.075 + 600 × 0.0375 + 300 × 0.30 = 180 micro-dollars;
    # facts (gpt-4o batch, 14 billed runs): 840 × 1.25 + 560 × 0.625 + 280 × 5 = 2,800.
    assert data.cost_usd == pytest.approx(0.00298)
    assert data.cost_note is None


def test_cost_unknown_without_a_model(tmp_path: Path) -> None:
    """Results that record no model and no --model leave the cost unknown, saying why."""
    path = write_results(tmp_path / "results.jsonl")
    data = summarize_results(path, prices=load_prices())
    assert data.cost_usd is None
    assert data.cost_note is not None
    assert "(no model recorded)" in data.cost_note
    assert "--model" in data.cost_note


def test_table_is_a_bounded_sample_weighted_to_problems(tmp_path: Path) -> None:
    """A large file yields exactly max_rows rows, sorted, over-representing problems, while
    the counts still cover every line."""
    base = evaluations()
    rows = []
    for index in range(5_000):
        row = dict(base[0] if index % 10 else base[1])
        row["index"] = index
        rows.append(row)
    path = write_results(tmp_path / "big.jsonl", rows)
    data = summarize_results(path, max_rows=200)
    assert data.transcripts == 5_000
    assert data.statuses == {"SUCCESS": 4_500, "ERROR": 500}
    assert len(data.rows) == 200
    indexes = [row.index for row in data.rows]
    assert indexes == sorted(indexes)
    errors = sum(1 for row in data.rows if row.status == "ERROR")
    # 10 % of lines, weighted ×4, give about 30 % of the sample; far above 10 %.
    assert errors > 40
    assert summarize_results(path, max_rows=200).rows == data.rows  # seeded: stable


def test_html_escapes_and_is_self_contained(tmp_path: Path) -> None:
    """Text from the results is escaped, and the page loads nothing from anywhere."""
    data = summarize_results(write_results(tmp_path / "r.jsonl"), prices=load_prices())
    page = render_html(data, title="<t>", generated="now")
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;success&lt;/b&gt; in run 0" in page
    assert "<title>&lt;t&gt;</title>" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "default-src 'none'" in page
    assert page.count("<tr data-status=") == 5


@pytest.mark.parametrize(
    ("summarize", "bad"),
    [(summarize_results, '{"index": "x"}'), (summarize_cost, '{"verdicts": 3}')],
    ids=["summary", "cost"],
)
def test_bad_results_line_names_file_and_line(
    tmp_path: Path, summarize: Callable[[Path], ReportData], bad: str
) -> None:
    """A line that is not an evaluation (for the full summary and for the cost pass alike)
    is refused with the file and line number; a missing file is named, not a traceback."""
    path = write_results(tmp_path / "r.jsonl")
    with path.open("a", encoding="utf-8") as file:
        file.write(bad + "\n")
    with pytest.raises(BatchValidationError) as info:
        summarize(path)
    assert info.value.path == str(path)
    assert info.value.line == 6
    assert "not a kyro results line" in str(info.value)
    with pytest.raises(BatchValidationError, match="cannot read the results file"):
        summarize(tmp_path / "missing.jsonl")


def test_cli_report_writes_the_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`kyro report RESULTS -o FILE` writes the page and says where; bad input exits 2."""
    results = write_results(tmp_path / "results.jsonl")
    out = tmp_path / "site" / "report.html"
    out.parent.mkdir()
    code = main(["report", str(results), "-o", str(out), "--model", "gpt-4o", "--rows", "3"])
    assert code == ExitCode.OK
    assert f"report: {out} (5 transcripts, 3 in the table)" in capsys.readouterr().out
    page = out.read_text(encoding="utf-8")
    assert page.count("<tr data-status=") == 3
    assert "$0.0030" in page
    # --config prices each judge at its model: `facts` (no model recorded) as gpt-4o.
    config = tmp_path / "judges.yml"
    config.write_text(
        "version: 1\nmodel: gpt-4o\njudges:\n"
        "  - {name: tone, prompt: 'Reply in JSON. {{input}}'}\n"
        "  - {name: facts, prompt: 'Reply in JSON. {{input}}'}\n",
        encoding="utf-8",
    )
    assert main(["report", str(results), "-o", str(out), "--config", str(config)]) == 0
    assert "$0.0030" in out.read_text(encoding="utf-8")
    # Default output: the results file's name with .html.
    assert main(["report", str(results)]) == ExitCode.OK
    assert (tmp_path / "results.html").exists()
    assert main(["report", str(tmp_path / "missing.jsonl")]) == ExitCode.BAD_INPUT
    assert "cannot read the results file" in capsys.readouterr().err
    assert main(["report", str(results), "-o", str(results)]) == ExitCode.BAD_INPUT
    assert "would overwrite the results file" in capsys.readouterr().err


def _cost_figures(data: ReportData) -> tuple[object, ...]:
    return (
        data.cost_usd,
        data.cost_note,
        data.input_tokens,
        data.cached_input_tokens,
        data.output_tokens,
        data.cached_runs,
        data.unmetered_runs,
    )


@pytest.mark.parametrize("model", ["gpt-4o", None])
def test_cost_pass_gives_the_full_summarys_cost_figures(tmp_path: Path, model: str | None) -> None:
    """summarize_cost (what check prints) gives exactly summarize_results' cost, tokens,
    cached and unmetered runs: models from the verdicts, the judges, or --model."""
    path = write_results(tmp_path / "results.jsonl")
    kwargs: dict[str, Any] = {"prices": load_prices(), "model": model}
    full = summarize_results(path, **kwargs)
    cost = summarize_cost(path, **kwargs)
    assert _cost_figures(cost) == _cost_figures(full)
    assert cost.transcripts == 5
    if model is not None:
        assert cost.cost_usd == pytest.approx(0.00298)
    judged = summarize_cost(path, prices=load_prices(), judge_models={"facts": "gpt-4o"})
    assert judged.cost_usd == pytest.approx(0.00298)


def test_cost_pass_counts_unmetered_replies_like_the_full_summary(tmp_path: Path) -> None:
    """A reply that reported no usage leaves the cost unknown in both passes, saying why."""
    rows = evaluations()
    del rows[0]["verdicts"]["facts"]["runs"][0]["usage"]
    path = write_results(tmp_path / "results.jsonl", rows)
    full = summarize_results(path, prices=load_prices(), model="gpt-4o")
    cost = summarize_cost(path, prices=load_prices(), model="gpt-4o")
    assert _cost_figures(cost) == _cost_figures(full)
    assert cost.unmetered_runs == 1
    assert cost.cost_usd is None
    assert cost.cost_note is not None
    assert "reported no token usage" in cost.cost_note
