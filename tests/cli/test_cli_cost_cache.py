"""submit/check on the emulator over HTTP: runs as n samples, the budget gate, the reply cache
across jobs, the actual cost from usage, and check --report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kyro.cli import ExitCode, main
from kyro_openai.testing import Emulator
from tests.cli.cli_helpers import results_file

pytestmark = pytest.mark.slow  # two jobs end to end over HTTP per test


def _submit(config: Path, base_url: str, *extra: str) -> int:
    data = str(config.parent / "data.jsonl")
    return main(["submit", str(config), data, "--base-url", base_url, *extra])


def _mtime(path: Path) -> float:
    return path.stat().st_mtime


def _sent_lines(emulator: Emulator) -> list[dict[str, object]]:
    """Every request line uploaded to the emulator so far."""
    lines = []
    for stored in emulator.store.files.values():
        if stored.obj.purpose != "batch":
            continue
        for raw in stored.path.read_bytes().splitlines():
            lines.append(json.loads(raw))
    return lines


def test_runs_as_samples_voted_and_billed_once(
    job: Path, base_url: str, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """runs=3 goes as one request with n=3 per transcript × judge; three runs are voted and the
    prompt tokens are counted once; submit shows the estimate, check the actual cost."""
    assert _submit(job, base_url, "--runs", "3") == ExitCode.OK
    out = capsys.readouterr().out
    assert "cost (openai, batch prices of 2026-11-30" in out
    assert "runs sent as n samples save $" in out
    assert "cache: 0 of 18 runs answered by" in out
    lines = _sent_lines(emulator)
    assert len(lines) == 6
    assert {line["body"]["n"] for line in lines} == {3}  # type: ignore[index]
    assert main(["check", str(job), "--base-url", base_url]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "requests: 18 (0 errored runs, 0 never came back)" in out
    assert (
        "| tone  | gpt-4o-mini |       67% |          — |       2 |     1 |  0 |       0 |" in out
    )
    results = [json.loads(line) for line in results_file(job.parent).read_text().splitlines()]
    runs = results[0]["verdicts"]["tone"]["runs"]
    assert [run["run"] for run in runs] == [0, 1, 2]
    assert results[0]["verdicts"]["tone"]["votes"]["SUCCESS"] == 3
    # Usage: one prompt per request, shared out over its three runs.
    prompt = sum(run["usage"]["input_tokens"] for run in runs)
    body = lines[0]["body"]
    text = "\n".join(m["content"] for m in body["messages"])  # type: ignore[index]
    assert prompt == len(text) // 4
    assert "cost: $" in out
    assert "at openai batch prices of 2026-11-30" in out


def test_max_cost_refuses_before_any_upload(
    job: Path, base_url: str, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """--max-cost below the ceiling exits 1 with the figures; nothing is uploaded or saved."""
    assert _submit(job, base_url, "--runs", "3", "--max-cost", "0.00001") == ExitCode.GATE
    err = capsys.readouterr().err
    assert "refused: the cost ceiling $" in err
    assert "nothing was uploaded" in err
    assert emulator.stats().files_uploaded == 0
    assert not (job.parent / ".kyro" / "judges.batch-state.json").exists()
    # Within budget, the same job goes through.
    assert _submit(job, base_url, "--runs", "3", "--max-cost", "50", "-q") == ExitCode.OK
    assert emulator.stats().files_uploaded == 1


def test_second_job_is_answered_by_the_cache(
    job: Path, base_url: str, emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A re-run of the same job sends only what changed; cached runs merge into the results
    marked origin=cache and are not billed; check --report writes the page."""
    cache = ["--cache-dir", str(tmp_path / "replies")]
    assert _submit(job, base_url, "--runs", "2", *cache, "-q") == ExitCode.OK
    assert main(["check", str(job), "--base-url", base_url, "-q"]) == ExitCode.OK
    capsys.readouterr()
    sent_first = len(_sent_lines(emulator))
    assert sent_first == 6
    # One transcript more: only its two requests (n=2 each) go out.
    data = job.parent / "data.jsonl"
    data.write_text(data.read_text() + json.dumps("alpha, again") + "\n", encoding="utf-8")
    assert _submit(job, base_url, "--runs", "2", *cache) == ExitCode.OK
    assert "cache: 12 of 16 runs answered by" in capsys.readouterr().out
    assert len(_sent_lines(emulator)) == sent_first + 2
    report = tmp_path / "report.html"
    args = ["check", str(job), "--base-url", base_url, "--report", str(report)]
    assert main(args) == ExitCode.OK
    out = capsys.readouterr().out
    assert "12 runs answered by the cache, not billed" in out
    assert f"report: {report} (4 transcripts" in out
    newest = max((job.parent / ".kyro" / "judges.batch").glob("results-*.jsonl"), key=_mtime)
    results = [json.loads(line) for line in newest.read_text().splitlines()]
    origins = [run.get("origin") for run in results[0]["verdicts"]["tone"]["runs"]]
    assert origins == ["cache", "cache"]
    assert [run.get("origin") for run in results[3]["verdicts"]["tone"]["runs"]] == [None, None]
    page = report.read_text(encoding="utf-8")
    assert 'data-testid="cached"><b>12</b>' in page
    # The same job again: the cache answers every run, nothing is uploaded, check finishes.
    uploads = emulator.stats().files_uploaded
    assert _submit(job, base_url, "--runs", "2", *cache) == ExitCode.OK
    assert "cache: 16 of 16 runs answered by" in capsys.readouterr().out
    assert emulator.stats().files_uploaded == uploads
    assert main(["check", str(job), "--base-url", base_url]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "16 runs answered by the cache, not billed" in out
    assert "transcripts: 4 — 2 SUCCESS, 1 ERROR, 1 PARTIAL, 0 errored" in out
    # --no-cache sends everything again.
    assert _submit(job, base_url, "--runs", "2", "--no-cache", "-q") == ExitCode.OK
    assert len(_sent_lines(emulator)) == sent_first + 2 + 8


def test_batch_answers_feed_a_live_run(
    job: Path, base_url: str, emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A live run (LocalProvider on the chat endpoint) of the config a batch job already
    answered is served from the cache: no chat call, same verdicts, marked origin=cache."""
    cache = ["--cache-dir", str(tmp_path / "replies")]
    assert _submit(job, base_url, *cache, "-q") == ExitCode.OK
    assert main(["check", str(job), "--base-url", base_url, "-q"]) == ExitCode.OK
    capsys.readouterr()
    data = str(job.parent / "data.jsonl")
    live = ["run", str(job), data, "--provider", "local", "--base-url", base_url, *cache]
    assert main([*live, "--state-dir", str(tmp_path / "live")]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "cache: 6 of 6 runs answered by" in out
    assert "transcripts: 3 — 1 SUCCESS, 1 ERROR, 1 PARTIAL, 0 errored" in out
    assert emulator.stats().chat_completions == 0
    # The other way round: a live run's answers serve a later batch of a changed run count.
    assert main([*live, "--runs", "2", "--state-dir", str(tmp_path / "live2")]) == ExitCode.OK
    assert "cache: 6 of 12 runs answered by" in capsys.readouterr().out
    assert emulator.stats().chat_completions == 6
    assert _submit(job, base_url, "--runs", "2", *cache) == ExitCode.OK
    assert "cache: 12 of 12 runs answered by" in capsys.readouterr().out


def test_a_live_run_through_the_local_provider_shows_its_cost_at_live_prices(
    job: Path, base_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run --provider local` prices the usage the endpoint reported at OpenAI's live prices
    (gpt-4o-mini: $0.15 in, $0.075 cached in, $0.60 out per million), to the cent fraction."""
    data = str(job.parent / "data.jsonl")
    command = ["run", str(job), data, "--provider", "local", "--base-url", base_url]
    assert main([*command, "--no-cache", "--state-dir", str(tmp_path / "live")]) == ExitCode.OK
    out = capsys.readouterr().out
    (results,) = (tmp_path / "live").glob("*/results-*.jsonl")
    usage = [0, 0, 0]
    for line in results.read_text().splitlines():
        for verdict in json.loads(line)["verdicts"].values():
            for run in verdict["runs"]:
                usage[0] += run["usage"]["input_tokens"]
                usage[1] += run["usage"].get("cached_input_tokens", 0)
                usage[2] += run["usage"]["output_tokens"]
    assert usage[0] > 0
    expected = ((usage[0] - usage[1]) * 0.15 + usage[1] * 0.075 + usage[2] * 0.60) / 1e6
    assert f"cost: ${expected:,.4f} at openai live prices of 2026-11-30" in out


async def test_a_callable_judge_without_usage_says_its_cost_is_unknown(tmp_path: Path) -> None:
    """A callable LocalProvider returning bare reply text reports no usage: the cost line says
    unknown and why, instead of pricing it at $0."""
    from kyro import BatchJudge
    from kyro._cost.prices import load_prices
    from kyro.cli._costing import actual_cost_line
    from kyro_local import LocalProvider

    config = tmp_path / "judges.yml"
    config.write_text(
        "version: 1\nmodel: gpt-4o-mini\njudges:\n  - name: tone\n    prompt: Judge {{input}}\n"
        "    output_format: json\n",
        encoding="utf-8",
    )
    provider = LocalProvider(
        handler=lambda body: '{"status": "SUCCESS", "root_cause": "fine"}',
        state_dir=tmp_path / "local",
    )
    async with BatchJudge(provider, config, state_dir=tmp_path / "state", cache=False) as judge:
        await judge.submit(["a chat", "another chat"], runs=2)
        result = await judge.check()
    assert result is not None
    line = actual_cost_line(result.results_path, result.models, "local", load_prices())
    assert line.startswith("cost: unknown — 4 run(s) reported no token usage")
    assert "$0.0000" not in line


PIPELINE = """\
version: 1
model: gpt-4o-mini
steps:
  - name: tone
    prompt: "Was the assistant polite? {{input}}"
    output_format: json
    params: {max_tokens: 4000}
  - name: escalate
    depends_on: tone
    prompt: "Should this go to a person? tone said {{steps.tone.status}}. {{input}}"
    output_format: json
    params: {max_tokens: 4000}
"""


def test_a_pipeline_submit_counts_its_later_steps_against_max_cost(
    tmp_path: Path, base_url: str, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """`submit --max-cost` on a pipeline prices the later step for every transcript: a budget
    that only stage 0 fits is refused (exit 1, nothing uploaded); twice that runs to the end."""
    config = tmp_path / "pipeline.yml"
    config.write_text(PIPELINE, encoding="utf-8")
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"chat": f"hello {i}"}) + "\n" for i in range(10)))
    command = ["submit", str(config), str(data), "--base-url", base_url, "--no-cache"]
    # Two steps of the same shape: stage 0 is about half of the ceiling.
    assert main([*command, "--max-cost", "0"]) == ExitCode.GATE
    err = capsys.readouterr().err
    ceiling = float(err.split("the cost ceiling $", 1)[1].split(" ", 1)[0])
    assert main([*command, "--max-cost", f"{ceiling * 0.6:.6f}"]) == ExitCode.GATE
    err = capsys.readouterr().err
    assert "a pipeline: every later step counted for every transcript" in err
    assert emulator.stats().files_uploaded == 0
    assert main([*command, "--max-cost", f"{ceiling * 1.02:.6f}"]) == ExitCode.OK
    assert "note: a pipeline: steps after the first stage are counted" in capsys.readouterr().out
    check = ["check", str(config), "--base-url", base_url, "--wait", "--interval", "0.1"]
    assert main(check) == ExitCode.OK
    out = capsys.readouterr().out
    assert "transcripts: 10" in out
    assert emulator.stats().batches_created == 2  # one per stage


def test_a_check_at_higher_prices_ends_a_pipeline_over_budget_with_exit_4(
    tmp_path: Path, base_url: str, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pipeline submitted under --max-cost at a prices file 100 times cheaper than kyro's
    table, then checked without it: the later stage no longer fits, so it is not sent, the job
    ends over_budget (exit 4, like any ended job) and the results show that step NOT_REACHED."""
    config = tmp_path / "pipeline.yml"
    config.write_text(PIPELINE, encoding="utf-8")
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"chat": f"hello {i}"}) + "\n" for i in range(4)))
    prices = tmp_path / "cheap.yml"
    prices.write_text(
        "providers: {openai: {models: {gpt-4o-mini: {input: 0.0015, output: 0.006}}}}\n",
        encoding="utf-8",
    )
    submit = ["submit", str(config), str(data), "--base-url", base_url, "--no-cache"]
    assert main([*submit, "--prices", str(prices), "--max-cost", "0"]) == ExitCode.GATE
    err = capsys.readouterr().err
    ceiling = float(err.split("the cost ceiling $", 1)[1].split(" ", 1)[0])
    budget = f"{ceiling * 1.02:.8f}"
    assert main([*submit, "--prices", str(prices), "--max-cost", budget]) == ExitCode.OK
    capsys.readouterr()
    check = ["check", str(config), "--base-url", base_url, "--wait", "--interval", "0.1"]
    assert main(check) == ExitCode.JOB_FAILED
    captured = capsys.readouterr()
    assert "ended over_budget" in captured.out
    assert "ended over_budget: stage 1 was not sent" in captured.err
    assert f"passes max_cost ${float(budget):,.4f}" in captured.err
    assert emulator.stats().batches_created == 1  # stage 0 only
    (results,) = (tmp_path / ".kyro" / "pipeline.batch").glob("results-*.jsonl")
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(rows) == 4
    for row in rows:
        assert set(row["verdicts"]) == {"tone"}
        assert row["steps"]["escalate"]["state"] == "NOT_REACHED"
        assert row["steps"]["escalate"]["reason"].startswith("over budget: stage 1 was not sent")
