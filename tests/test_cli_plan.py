"""``kyro plan``: the printed plan, --write, limits overrides and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kyro._transcript_index import iter_index
from kyro.cli import main

CONFIG = """\
version: 1
model: gpt-4o-mini
judges:
  - name: relevance
    prompt: "Is this about {{variables.product}}? Reply in JSON.\\n{{input}}"
  - name: tone
    model: gpt-4o
    prompt_xml:
      role: You are a strict evaluator. Answer in JSON.
      task: "Rate the tone of {{input}}"
    params: {temperature: 0}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A config and a three-line .jsonl dataset."""
    (tmp_path / "judges.yml").write_text(CONFIG, encoding="utf-8")
    lines = [json.dumps({"q": f"question {i} ✓"}) for i in range(3)]
    (tmp_path / "data.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


def plan(project: Path, *extra: str) -> int:
    config, data = str(project / "judges.yml"), str(project / "data.jsonl")
    return main(["plan", config, data, "--var", "product=Acme", *extra])


def test_plan_prints_requests_shards_bytes_and_tokens(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The plan lists requests per judge and model, shards with sizes, and the token estimate."""
    assert plan(project, "--runs", "2") == 0
    out = capsys.readouterr().out
    # Runs travel as n samples: 12 runs in 6 requests.
    assert "3 transcripts × 2 judges × 2 runs = 12 runs in 6 requests (runs as n samples" in out
    assert "relevance  gpt-4o-mini     6" in out
    assert "shard-0000-gpt-4o-mini.jsonl" in out
    assert "shard-0001-gpt-4o.jsonl" in out
    assert "estimated input tokens:" in out
    assert "characters of message text ÷ 4" in out
    assert "nothing written" in out
    assert sorted(p.name for p in project.iterdir()) == ["data.jsonl", "judges.yml"]


def test_plan_write_creates_shards_and_index(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--write DIR leaves the shard files and the transcript index in DIR."""
    out_dir = project / "out"
    assert plan(project, "--write", str(out_dir), "--max-requests", "2") == 0
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == [
        "shard-0000-gpt-4o-mini.jsonl",
        "shard-0001-gpt-4o.jsonl",
        "shard-0002-gpt-4o-mini.jsonl",
        "shard-0003-gpt-4o.jsonl",
        "transcripts.index.jsonl",
    ]
    assert [e.source for e in iter_index(out_dir / "transcripts.index.jsonl")] == [
        f"{project / 'data.jsonl'}:{n}" for n in (1, 2, 3)
    ]
    first = json.loads((out_dir / names[0]).read_bytes().splitlines()[0])
    assert first["custom_id"] == "t0-j0-r0"
    assert "written to" in capsys.readouterr().out


def test_max_bytes_override_splits_shards(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--max-bytes small enough for one line per shard gives one shard per request."""
    assert plan(project, "--max-bytes", "2000") == 0
    out = capsys.readouterr().out
    assert "6 requests in 6 shards" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--var", "novalue"], "is not KEY=VALUE"),
        (["--var", "=x"], "is not KEY=VALUE"),
        (["--runs", "0"], "argument --runs: '0' is not a whole number from 1 to 100"),
        (["--max-bytes", "0"], "--max-bytes must be at least 1"),
    ],
)
def test_bad_arguments_exit_2(
    project: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    """Malformed --var, --runs or limits exit with 2 and say what is wrong."""
    code: int | str | None
    try:
        code = plan(project, *args)
    except SystemExit as exc:  # refused by the argument parser itself
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_missing_variable_exits_2_and_writes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unresolved template field is reported per transcript and no file is left behind."""
    out_dir = project / "out"
    code = main(["plan", str(project / "judges.yml"), str(project / "data.jsonl"),
                 "--write", str(out_dir)])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "3 problems found before upload" in err
    assert "variables.product" in err
    assert list(out_dir.iterdir()) == []


def test_oversized_line_is_reported(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A single line above --max-bytes is a pre-flight error naming the request."""
    assert plan(project, "--max-bytes", "100") == 2
    err = capsys.readouterr().err
    assert "[line_too_large]" in err
    assert "custom_id t0-j0-r0" in err


def test_plan_of_a_pipeline_counts_every_step_as_an_upper_bound(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A pipeline's plan renders upstream placeholders with stand-ins and says what is sent."""
    examples = Path(__file__).resolve().parents[1] / "examples"
    data = examples / "transcripts" / "dataset.jsonl"
    assert main(["plan", str(examples / "pipeline.yml"), str(data)]) == 0
    out = capsys.readouterr().out
    transcripts = len(data.read_text(encoding="utf-8").splitlines())
    assert f"{transcripts} transcripts × 4 judges × 1 runs = {transcripts * 4} requests" in out
    assert "pipeline of 3 stages: these counts assume every step runs" in out
    assert "a batch job sends stage 0 (grounded, tone) first" in out


class _Closing:
    """A provider's ``aclose`` alone, recording how often it ran and under which event loop."""

    def __init__(self, waits: str) -> None:
        self.waits = waits
        self.runs: list[bool] = []  # per run: whether an event loop was running at its end
        self.closed = False

    async def aclose(self) -> None:
        import asyncio

        import anyio.lowlevel

        if self.waits == "loop":  # needs a running loop from its first line
            await anyio.lowlevel.checkpoint()
        elif self.waits == "yield":  # gives way first (needs no loop for that), then needs one
            await asyncio.sleep(0)
            await anyio.sleep(0.001)
        try:
            asyncio.get_running_loop()
            self.runs.append(True)
        except RuntimeError:
            self.runs.append(False)
        self.closed = True


@pytest.mark.parametrize(
    ("waits", "runs"), [("nothing", [False]), ("loop", [True]), ("yield", [True])]
)
def test_a_plan_closes_its_provider_on_an_event_loop_only_when_closing_waits(
    waits: str, runs: list[bool]
) -> None:
    """A provider whose close awaits nothing is closed without an event loop; one that waits
    is closed on one — resumed where it gave way, or run again when it could not start."""
    from kyro.cli._plan import _close_unused

    provider = _Closing(waits)
    _close_unused(provider)  # type: ignore[arg-type]
    assert provider.closed
    assert provider.runs == runs
