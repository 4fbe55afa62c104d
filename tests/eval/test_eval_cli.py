"""``python3 -m kyro eval``: live runs, the --fail-under gate, --batch / --check, bad input."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kyro.cli import main
from kyro_openai.testing import Emulator, EmulatorConfig, ScriptedResponder, serve
from tests.eval.eval_helpers import Clock

ROOT = Path(__file__).resolve().parents[2]
AGENT = "examples.eval.support_agent:answer"
DATASET = str(ROOT / "examples" / "eval" / "dataset.jsonl")
SUCCESS = json.dumps({"status": "SUCCESS", "score": 1, "root_cause": "polite"})
ERROR = json.dumps({"status": "ERROR", "score": 0, "root_cause": "rude"})


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the repository root with a fake key and no inherited endpoint or model."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("KYRO_MODEL", raising=False)


@pytest.fixture
def url(clock: Clock) -> Iterator[str]:
    """An emulator on 127.0.0.1 whose batches stay in progress for 60 clock seconds."""
    responder = ScriptedResponder(by_substring={"cancelled": ERROR}, fallback=lambda _: SUCCESS)
    emulator = Emulator(EmulatorConfig(in_progress_seconds=60), responder=responder, clock=clock)
    with serve(emulator) as base_url:
        yield base_url


def test_a_live_run_prints_the_pass_rate_and_writes_the_exports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deterministic scorers run now; the summary, the JSONL and the CSV are written; exit 0."""
    out_csv, out_jsonl = tmp_path / "r.csv", tmp_path / "r.jsonl"
    code = main(
        ["eval", AGENT, DATASET, "--scorer", "contains:ignore_case=true",
         "--scorer", 'length:max=30,unit="words"',
         "--csv", str(out_csv), "--output", str(out_jsonl)]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert "pass rate: 83.3%" in printed
    assert "FAIL #5 unknown-9999: LookupError: order #9999 is not in the order table" in printed
    assert "items: 6 — 5 passed, 0 failed, 1 errored" in printed
    with out_csv.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r["item_id"] for r in rows][:2] == ["status-1234", "status-4321"]
    assert rows[0]["contains.passed"] == "True"
    assert rows[0]["length.score"] == "1.0"
    assert len(out_jsonl.read_text().splitlines()) == 6


def test_fail_under_exits_1_when_the_pass_rate_is_below_the_gate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A pass rate of 5/6 under --fail-under 0.9 exits 1 and says so; 0.8 exits 0."""
    args = ["eval", AGENT, DATASET, "--scorer", "contains:ignore_case=true", "-q"]
    assert main([*args, "--fail-under", "0.9"]) == 1
    assert "below the gate" in capsys.readouterr().out
    assert main([*args, "--fail-under", "0.8"]) == 0


@pytest.mark.slow  # end to end over HTTP
def test_llm_judges_run_live_through_base_url(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """'llm:<criteria>' and a preset go to the endpoint at once; their pass rates print."""
    code = main(
        ["eval", AGENT, DATASET, "--scorer", "llm:Is the reply polite?", "--scorer", "helpfulness",
         "--base-url", url, "--model", "gpt-4o-mini", "--state-dir", str(tmp_path / "ev")]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert "llm_judge" in printed
    assert "helpfulness" in printed
    assert "pass rate: 50.0%" in printed  # two replies saying "cancelled" are judged ERROR


@pytest.mark.slow  # end to end over HTTP
def test_batch_submits_exits_and_check_collects_later(
    url: str, clock: Clock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--batch prints the job id (exit 0); --check is 3 while pending, then the result."""
    state = str(tmp_path / "ev")
    common = ["--base-url", url, "--state-dir", state]
    code = main(
        ["eval", AGENT, DATASET, "--scorer", "exact_match", "--scorer", "llm:Polite?",
         "--batch", "--model", "gpt-4o-mini", "-q", *common]
    )  # fmt: skip
    job_id = capsys.readouterr().out.strip()
    assert code == 0
    assert job_id.startswith("eval-")
    assert main(["eval", "--check", job_id, *common]) == 3
    assert "still pending" in capsys.readouterr().out
    clock.now += 120
    assert main(["eval", "--check", job_id, "--fail-under", "0.5", *common]) == 1
    printed = capsys.readouterr().out
    assert f"eval {job_id}: partial_failure" in printed
    assert "pass rate: 0.0%" in printed
    assert main(["eval", "--check", job_id, "-q", *common]) == 0


@pytest.mark.slow  # end to end over HTTP
def test_batch_wait_submits_and_polls_until_done(
    url: str, clock: Clock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--batch --wait submits, then polls every --interval until the judges are done."""
    clock.step = 5.0  # every read of the emulator's clock moves it on: the batch finishes
    code = main(
        ["eval", AGENT, DATASET, "--scorer", "llm:Polite?", "--batch", "--wait", "--interval",
         "0.01", "--model", "gpt-4o-mini", "--base-url", url, "--state-dir", str(tmp_path)]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert "submitted eval job eval-" in printed
    assert "collect it later" not in printed
    assert "pass rate: 50.0%" in printed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scorer", "exact"], "unknown scorer 'exact'"),
        (["--scorer", "contains:ignorecase=true"], "has no option ignorecase"),
        (["--scorer", "regex:{bad"], "the options are not JSON"),
        (["--scorer", "correctness"], "pass --base-url"),
        (["--scorer", "correctness"], "or judge through a Batch API with --batch"),
        (["--scorer", "correctness", "--base-url", "http://127.0.0.1:9/v1"], "has no model"),
        ([], "give at least one --scorer"),
        (["--scorer", "exact_match", "--fail-under", "90"], "--fail-under is a pass rate"),
    ],
)
def test_bad_input_exits_2_with_the_fix(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad scorers, a missing endpoint or model, or a bad gate exit 2 naming the problem."""
    assert main(["eval", AGENT, DATASET, *args]) == 2
    assert message in capsys.readouterr().err


def test_bad_component_and_dataset_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unimportable component or a missing dataset is exit 2 with a clear message."""
    assert main(["eval", "no_such_pkg_zz:run", DATASET, "--scorer", "exact_match"]) == 2
    assert "cannot import 'no_such_pkg_zz'" in capsys.readouterr().err
    missing = str(tmp_path / "none.jsonl")
    assert main(["eval", AGENT, missing, "--scorer", "exact_match"]) == 2
    assert f"{missing}: cannot read the dataset: file not found" in capsys.readouterr().err
    assert main(["eval", "--check", "eval-x", "--base-url", "http://127.0.0.1:9/v1",
                 "--state-dir", str(tmp_path)]) == 2  # fmt: skip
    assert "no eval job eval-x here" in capsys.readouterr().err


def test_llm_judges_run_through_a_handler(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--handler`` (the local provider's option) judges live through the callable, no
    endpoint needed; with ``--batch`` (openai) it is refused naming its owner."""
    handler = "tests.cli.test_cli_provider_hooks:polite_judge"
    out = tmp_path / "r.csv"
    args = ["eval", AGENT, DATASET, "--scorer", "llm:Polite?", "--model", "m1",
            "--handler", handler, "--state-dir", str(tmp_path / "ev")]  # fmt: skip
    code = main([*args, "--judge-concurrency", "2", "--csv", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "pass rate: 83.3%" in capsys.readouterr().out  # one component raises
    with out.open(newline="") as file:
        explained = {row["llm_judge.explanation"] for row in csv.DictReader(file)}
    assert explained == {"asked m1", ""}  # the errored item has no judge score
    with pytest.raises(SystemExit) as info:
        main([*args, "--batch"])
    assert info.value.code == 2
    assert "--handler is an option of the local provider" in capsys.readouterr().err
