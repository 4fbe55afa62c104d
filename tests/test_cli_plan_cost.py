"""``kyro plan`` with cost, the budget gate, the reply cache and runs as samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kyro import load_config
from kyro._cost.prices import estimate_tokens
from kyro._plan.planner import plan_requests
from kyro._transcripts import iter_transcripts
from kyro._types import ResultLine
from kyro._verdicts.reply_cache import ReplyCache, RequestKeys
from kyro.cli import ExitCode, main

CONFIG = """\
version: 1
model: gpt-4o-mini
judges:
  - name: relevance
    prompt: "Reply in JSON. Is this relevant?\\n{{input}}"
    params: {max_tokens: 200}
"""
VERDICT = json.dumps({"status": "SUCCESS", "root_cause": "fine"})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A one-judge config (max_tokens 200) and four text transcripts."""
    (tmp_path / "judges.yml").write_text(CONFIG, encoding="utf-8")
    folder = tmp_path / "chats"
    folder.mkdir()
    for i in range(4):
        (folder / f"c{i}.txt").write_text(f"user: question {i}\nassistant: answer {i}\n")
    return tmp_path


def _plan(project: Path, *extra: str) -> int:
    return main(["plan", str(project / "judges.yml"), str(project / "chats"), *extra])


def _input_tokens(project: Path) -> int:
    config = load_config(project / "judges.yml")
    transcripts = iter_transcripts([project / "chats"])
    return sum(estimate_tokens(r.messages) for r in plan_requests(config, transcripts))


def test_plan_shows_cost_per_judge_and_the_n_saving(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The plan prices each judge and model at batch rates and shows what n saves."""
    assert _plan(project, "--runs", "3") == ExitCode.OK
    out = capsys.readouterr().out
    tokens = _input_tokens(project)  # one prompt per transcript, billed once with n=3
    typical = (tokens * 0.075 + 12 * 150 * 0.30) / 1e6
    ceiling = (tokens * 0.075 + 12 * 200 * 0.30) / 1e6
    assert "4 transcripts × 1 judges × 3 runs = 12 runs in 4 requests (runs as n" in out
    assert f"total: typical ${typical:,.4f}, ceiling ${ceiling:,.4f}" in out
    assert f"save ${2 * tokens * 0.075 / 1e6:,.4f} of input" in out
    assert "cache: 0 of 12 runs answered by" in out
    assert _plan(project, "--runs", "3", "--no-samples") == ExitCode.OK
    apart = capsys.readouterr().out
    assert "× 3 runs = 12 requests\n" in apart
    assert "save" not in apart


def test_max_cost_refuses_with_figures_and_exit_1(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ceiling above --max-cost exits 1 naming both figures; one below passes."""
    assert _plan(project, "--runs", "3", "--max-cost", "0.0001") == ExitCode.GATE
    err = capsys.readouterr().err
    assert "refused: the cost ceiling $" in err
    assert "passes max_cost $0.0001" in err
    assert "nothing was uploaded" in err
    assert _plan(project, "--runs", "3", "--max-cost", "5") == ExitCode.OK
    assert _plan(project, "--max-cost", "-1") == ExitCode.BAD_INPUT


def test_unknown_model_says_so_and_blocks_a_budget(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model without a price shows 'unknown' and a note; with --max-cost it is refused."""
    config = project / "judges.yml"
    config.write_text(CONFIG.replace("gpt-4o-mini", "house-model"), encoding="utf-8")
    assert _plan(project) == ExitCode.OK
    out = capsys.readouterr().out
    assert "total: typical unknown, ceiling unknown" in out
    assert "no price known for openai model 'house-model'" in out
    assert _plan(project, "--max-cost", "100") == ExitCode.GATE
    assert "no price is known for house-model" in capsys.readouterr().err
    prices = project / "prices.yml"
    prices.write_text("providers: {openai: {models: {house-model: {input: 1, output: 2}}}}\n")
    assert _plan(project, "--max-cost", "100", "--prices", str(prices)) == ExitCode.OK


def test_plan_counts_cache_hits_and_writes_only_the_rest(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs in the cache are shown as answered, and --write leaves only the others."""
    config = load_config(project / "judges.yml")
    first = next(iter(plan_requests(config, iter_transcripts([project / "chats"]))))
    cache_dir = project / "cache"
    with ReplyCache(cache_dir) as cache:
        keys = RequestKeys("openai-chat")  # the scope plan uses for openai
        for run in range(3):
            cache.put(keys.key(first, run=run), ResultLine(custom_id="x", ok=True, content=VERDICT))
    out_dir = project / "out"
    args = ("--runs", "3", "--cache-dir", str(cache_dir), "--write", str(out_dir))
    assert _plan(project, *args) == ExitCode.OK
    out = capsys.readouterr().out
    assert f"cache: 3 of 12 runs answered by {cache_dir}" in out
    lines = [
        json.loads(line)
        for shard in out_dir.glob("shard-*.jsonl")
        for line in shard.read_text().splitlines()
    ]
    assert sorted(line["custom_id"] for line in lines) == ["t1-j0-r0", "t2-j0-r0", "t3-j0-r0"]
    assert _plan(project, "--runs", "3", "--cache-dir", str(cache_dir), "--no-cache") == 0
    assert "cache: off" in capsys.readouterr().out


def test_cache_stats_and_clear(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`kyro cache stats` counts the replies of the folder; `clear` empties it; a folder
    without a cache is a clear error."""
    folder = project / ".kyro" / "cache"
    keys = RequestKeys("openai")
    config = load_config(project / "judges.yml")
    requests = list(plan_requests(config, iter_transcripts([project / "chats"])))
    with ReplyCache(folder) as cache:
        for request in requests:
            cache.put(keys.key(request, run=0), ResultLine(custom_id="x", ok=True, content=VERDICT))
    assert main(["cache", "stats", "--config", str(project / "judges.yml")]) == ExitCode.OK
    out = capsys.readouterr().out
    assert f"cache: {folder / 'replies.sqlite3'}" in out
    assert "replies: 4 (" in out
    assert "stored: 4" in out
    assert main(["cache", "clear", "--cache-dir", str(folder)]) == ExitCode.OK
    assert "cleared 4 replies" in capsys.readouterr().out
    assert main(["cache", "stats", "--cache-dir", str(folder)]) == ExitCode.OK
    assert "replies: 0 (0 bytes" in capsys.readouterr().out
    assert main(["cache", "stats", "--cache-dir", str(project / "nowhere")]) == 2
    assert "no reply cache in" in capsys.readouterr().err
