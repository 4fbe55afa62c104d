"""Hostile replies and careless input: whatever arrives, kyro answers with its own clear error or
an errored run, and a job's other verdicts are always collected.

Faults come in through seams: the emulator's and the fake provider's pluggable responders
(what a judge model writes), the files a user hands over, and the process limits of a child
``python -m kyro`` (a real ``RLIMIT_FSIZE`` stands in for a full disk).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kyro.cli
from kyro import (
    BatchJudge,
    BatchRunResult,
    BatchValidationError,
    JobBusyError,
    ProviderError,
    load_config,
    redact,
)
from kyro._files import FileLock
from kyro._plan.planner import plan_requests
from kyro._state.store import StateStore
from kyro._transcripts import iter_transcripts
from kyro._verdicts.vote import MAX_REPLY_CHARS, RAW_KEEP_CHARS, VoteSettings, parse_reply
from kyro.cli import main
from kyro.cli._crash import report_internal_error
from kyro.cli._exit import ExitCode
from kyro.cli._options import configure_logging
from kyro.cli._report import export_csv, export_jsonl
from kyro.eval import evaluate_sync
from kyro.testing import FakeProvider
from kyro_openai import OpenAIBatchProvider
from tests.support.hostile import (
    BAD_INPUTS,
    HOSTILE_REPLIES,
    bad_input_scenario,
    hostile_reply_scenario,
)
from tests.support.scenarios import (
    EmulatorProcess,
    Job,
    batches_by_config,
    child_env,
    duplicate_batches,
    lost_verdicts,
)

DEEP = '{"verdict": ' * 1_000 + '"SUCCESS"' + "}" * 1_000
"""About 12 KB of JSON nested 1,000 levels deep: more than msgspec's recursion allows."""

# -- 1. one reply never blocks a job ---------------------------------------------------------


def test_deep_reply_is_an_errored_run_with_its_text() -> None:
    """A reply nested 1,000 levels deep is an unparseable run keeping its text, not an error."""
    for text in (DEEP, "[" * 5_000 + "]" * 5_000, f"```json\n{DEEP}\n```"):
        run = parse_reply(text, run=2)
        assert run.status == "ERRORED"
        assert run.run == 2
        assert run.error is not None
        assert run.error.code in ("unparseable_reply", "invalid_verdict")
        assert run.raw == text
    assert parse_reply(DEEP).error is not None
    assert "nested too deeply" in parse_reply(DEEP).error.message  # type: ignore[union-attr]


def test_huge_reply_is_refused_unparsed_and_its_raw_text_cut() -> None:
    """A reply over the size limit is ``reply_too_large``; raw keeps a documented prefix."""
    text = '{"status": "SUCCESS", "root_cause": "' + "x" * MAX_REPLY_CHARS + '"}'
    run = parse_reply(text)
    assert run.status == "ERRORED"
    assert run.error is not None
    assert run.error.code == "reply_too_large"
    assert run.raw is not None
    assert run.raw.startswith(text[:RAW_KEEP_CHARS])
    assert run.raw.endswith(f"[cut by kyro: {len(text):,} characters in all]")
    assert len(run.raw) < RAW_KEEP_CHARS + 100


@pytest.mark.slow  # a job over HTTP per hostile reply
@pytest.mark.parametrize("kind", sorted(HOSTILE_REPLIES))
def test_hostile_reply_over_http_never_blocks_the_job(tmp_path: Path, kind: str) -> None:
    """Deep, huge or binary replies are errored runs with their text; the rest is collected."""
    outcome = hostile_reply_scenario(tmp_path / "job", kind)
    assert outcome.recovered, outcome
    assert outcome.lost_verdicts == 0, outcome
    assert outcome.duplicate_batches == 0, outcome


replies = st.one_of(
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    st.binary(max_size=300).map(lambda b: b.decode("utf-8", "replace")),
    st.text(max_size=200),
    st.integers(1, 3_000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 3_000).map(lambda n: '{"status":' * n + '"NA"' + "}" * n),
    st.recursive(
        st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=8,
    ).map(json.dumps),
    st.sampled_from(
        ['{"status": "SUCCESS"}', '{"status": 1}', "```json\n{}\n```", "", "null", "\x00"]
    ),
)


@pytest.mark.slow  # hypothesis: 40 generated jobs
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(answers=st.lists(replies, min_size=1, max_size=8))
def test_any_reply_lets_the_job_complete(
    tmp_path_factory: pytest.TempPathFactory, answers: list[str]
) -> None:
    """Arbitrary replies through check(): the job completes, every run is a verdict or errored."""
    folder = tmp_path_factory.mktemp("fuzz-replies")
    config = folder / "judges.yml"
    config.write_text(
        "version: 1\nmodel: m\njudges:\n"
        "  - name: a\n    prompt: 'Judge {{input}} in JSON'\n    output_format: json\n"
        "  - name: b\n    prompt: 'Also judge {{input}} in JSON'\n    output_format: json\n",
        encoding="utf-8",
    )
    by_id: dict[str, str] = {}

    def responder(custom_id: str, body: dict[str, Any]) -> str:
        return by_id.setdefault(custom_id, answers[len(by_id) % len(answers)])

    async def go() -> BatchRunResult | None:
        judge = BatchJudge(FakeProvider(responder=responder), config, state_dir=folder / "s")
        await judge.submit(["user: one\n", "user: two\n"], runs=2)
        result = await judge.check()
        return result if result is not None else await judge.check()

    result = anyio.run(go)
    assert result is not None
    assert result.counts.transcripts == 2
    assert result.counts.requests == 8
    runs = [run for e in result.evaluations for v in e.verdicts.values() for run in v.runs]
    assert len(runs) == 8
    for run in runs:
        if run.status == "ERRORED":
            assert run.error is not None
            assert run.raw is None or len(run.raw) <= RAW_KEEP_CHARS + 100
    assert result.counts.errored_runs == sum(run.status == "ERRORED" for run in runs)


def test_deep_transcript_file_is_a_clear_error(tmp_path: Path) -> None:
    """A transcript file or dataset line nested too deeply names the file (and line)."""
    deep = '{"a": ' * 3_000 + "1" + "}" * 3_000
    (tmp_path / "deep.json").write_text(deep, encoding="utf-8")
    (tmp_path / "deep.jsonl").write_text('{"request": "q"}\n' + deep + "\n", encoding="utf-8")
    with pytest.raises(BatchValidationError) as caught:
        list(iter_transcripts(tmp_path / "deep.json"))
    assert caught.value.path == str(tmp_path / "deep.json")
    assert "nested too deeply" in caught.value.message
    with pytest.raises(BatchValidationError) as caught:
        list(iter_transcripts(tmp_path / "deep.jsonl"))
    assert caught.value.line == 2


# -- 2. exit codes that mean what they say ---------------------------------------------------

CONFIG = (
    "version: 1\nmodel: m\njudges:\n"
    "  - name: a\n    prompt: 'Judge {{input}}; reply in JSON'\n    output_format: json\n"
)


def _files(folder: Path) -> tuple[Path, Path]:
    """A config and one transcript file in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "judges.yml"
    config.write_text(CONFIG, encoding="utf-8")
    transcript = folder / "t.txt"
    transcript.write_text("user: hi\nassistant: hello\n", encoding="utf-8")
    return config, transcript


@pytest.mark.parametrize("verbose", [0, 1])
def test_internal_error_exits_70_and_names_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], verbose: int
) -> None:
    """A bug is exit 70, one line naming the private log of the traceback; -v prints it too."""
    try:
        raise ZeroDivisionError("boom at http://me:sk-MARKED-secret1@127.0.0.1/v1")
    except ZeroDivisionError as exc:
        code = report_internal_error(exc, verbose=verbose, folder=tmp_path)
    assert code == ExitCode.INTERNAL
    assert int(code) == 70
    err = capsys.readouterr().err
    last = err.splitlines()[-1]
    assert last.startswith("internal error: ZeroDivisionError")
    assert ("Traceback (most recent call last)" in err) == bool(verbose)
    assert "sk-MARKED-secret1" not in err
    (log,) = tmp_path.glob("kyro-error-*.log")
    assert str(log) in last
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text(encoding="utf-8")
    assert "Traceback" in text
    assert "ZeroDivisionError" in text
    assert "sk-MARKED-secret1" not in text


def test_main_turns_an_unexpected_exception_into_exit_70(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """main() answers a foreign exception from a command with 70, never 1 (the gate code)."""
    parser = argparse.ArgumentParser(prog="kyro")
    parser.set_defaults(func=lambda args: 1 // 0, verbose=0)
    monkeypatch.setattr(kyro.cli, "build_parser", lambda *args, **kwargs: parser)
    assert main([]) == ExitCode.INTERNAL
    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError" in err
    log = Path(err.split("the traceback is in ")[1].split(" (-v")[0])
    assert "ZeroDivisionError" in log.read_text(encoding="utf-8")
    log.unlink()


def test_a_held_lock_is_busy_naming_pid_and_since(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job locked by another kyro process exits 75 naming the holder's pid and start time."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    config, _ = _files(tmp_path)
    store = StateStore(config, tmp_path / "state")
    store.ensure_dirs()
    lock = FileLock(store.lock_path, purpose="check")
    anyio.run(lock.acquire)
    try:
        args = ["check", str(config), "--state-dir", str(tmp_path / "state"), "-q"]
        code = main([*args, "--lock-timeout", "0.2", "--base-url", "http://127.0.0.1:9/v1"])
    finally:
        lock.release()
    err = capsys.readouterr().err
    assert code == ExitCode.BUSY
    assert int(code) == 75
    assert f"pid {os.getpid()} (check) since " in err
    assert err.startswith("busy: ")


async def test_busy_error_carries_pid_and_since(tmp_path: Path) -> None:
    """JobBusyError names the lock file, the holder's pid and when it took the lock."""
    path = tmp_path / "x.lock"
    async with FileLock(path, purpose="submit"):
        with pytest.raises(JobBusyError) as caught:
            await FileLock(path, timeout=0.05).acquire()
    assert caught.value.pid == os.getpid()
    assert caught.value.since is not None
    assert caught.value.since.startswith("20")
    assert caught.value.lock_path == str(path)


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--runs", "0", "not a whole number from 1 to 100"),
        ("--runs", "1000000000", "not a whole number from 1 to 100"),
        ("--runs", "two", "not a whole number from 1 to 100"),
        ("--interval", "-1", "from 0 to 86400"),
        ("--interval", "nan", "from 0 to 86400"),
        ("--interval", "soon", "from 0 to 86400"),
        ("--min-valid-votes", "0", "not a whole number from 1 to 100"),
    ],
)
def test_option_values_out_of_range_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, says: str
) -> None:
    """Out-of-range numbers are refused by the parser, naming the option, before any work."""
    config, transcript = _files(tmp_path)
    command = "run" if option == "--interval" else "submit"
    with pytest.raises(SystemExit) as caught:
        main([command, str(config), str(transcript), option, value])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err
    assert says in err
    assert not (tmp_path / ".kyro").exists()


def test_min_valid_votes_above_runs_is_refused_at_submit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--min-valid-votes 3 --runs 2`` is refused before any state or batch exists."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    config, transcript = _files(tmp_path)
    args = ["submit", str(config), str(transcript), "--runs", "2", "--min-valid-votes", "3"]
    code = main([*args, "--base-url", "http://127.0.0.1:9/v1"])
    assert code == ExitCode.BAD_INPUT
    assert "min_valid_votes is 3 but each judge gets only 2 run(s)" in capsys.readouterr().err
    assert not (tmp_path / ".kyro" / "judges.batch-state.json").exists()


async def test_library_refuses_votes_above_runs_and_absurd_runs(tmp_path: Path) -> None:
    """BatchJudge.submit refuses min_valid_votes > runs and runs beyond the cap, sending nothing."""
    config, transcript = _files(tmp_path)
    provider = FakeProvider()
    judge = BatchJudge(provider, config, vote=VoteSettings(min_valid_votes=2))
    with pytest.raises(BatchValidationError, match="min_valid_votes is 2"):
        await judge.submit([transcript], runs=1)
    with pytest.raises(BatchValidationError, match="from 1 to 100"):
        await judge.submit([transcript], runs=10**9)
    assert provider.batches == []


@pytest.mark.parametrize("option", ["--csv", "--output"])
@pytest.mark.parametrize("target", ["folder", "missing folder", "results file", "config"])
def test_export_targets_that_cannot_work_are_refused_before_the_job(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    option: str,
    target: str,
) -> None:
    """--csv/--output naming a folder, a missing folder or kyro's own results exit 2 at once."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    config, _ = _files(tmp_path)
    state = tmp_path / "state"
    results = state / "judges.batch" / "results-kyro-1.jsonl"
    results.parent.mkdir(parents=True)
    results.write_text('{"index": 0}\n', encoding="utf-8")
    path = {
        "folder": tmp_path,
        "missing folder": tmp_path / "nowhere" / "out.csv",
        "results file": results,
        "config": config,
    }[target]
    args = ["check", str(config), "--state-dir", str(state), option, str(path)]
    assert main([*args, "--base-url", "http://127.0.0.1:9/v1"]) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert option in err
    assert "Traceback" not in err
    assert results.read_text(encoding="utf-8") == '{"index": 0}\n'
    assert config.read_text(encoding="utf-8") == CONFIG


def test_variable_and_file_name_that_are_not_utf8_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --var or transcript file name holding non-UTF-8 bytes is named, exit 2."""
    config, _ = _files(tmp_path)
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "ok.txt").write_text("user: hi\n", encoding="utf-8")
    os.rename(folder / "ok.txt", os.fsencode(folder) + b"/\xff.txt")
    assert main(["plan", str(config), str(folder)]) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "\\xff.txt" in err
    assert "file name is not UTF-8" in err
    (tmp_path / "t.txt").write_text("user: hi\n", encoding="utf-8")
    bad_var = os.fsdecode(b"product=\xff")
    assert main(["plan", str(config), str(tmp_path / "t.txt"), "--var", bad_var]) == 2
    assert "variable 'product' holds bytes that are not UTF-8" in capsys.readouterr().err


@pytest.mark.parametrize(
    "url", ["not a url", "http://[::1", "ftp://host/v1", "http://127.0.0.1:99999/v1"]
)
def test_a_malformed_base_url_is_bad_input_not_a_network_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """A base URL that cannot be one exits 2 naming the option, before any state is written."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    config, transcript = _files(tmp_path)
    assert main(["submit", str(config), str(transcript), "--base-url", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --base-url ")
    assert "check the network" not in err
    assert not (tmp_path / ".kyro" / "judges.batch-state.json").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
def test_unreadable_transcript_folder_is_named(tmp_path: Path) -> None:
    """A transcripts folder without read permission is a clear error naming it."""
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "t.txt").write_text("user: hi\n", encoding="utf-8")
    folder.chmod(0o300)
    try:
        with pytest.raises(BatchValidationError) as caught:
            list(iter_transcripts(folder))
    finally:
        folder.chmod(0o700)
    assert caught.value.path == str(folder)
    assert "cannot be read" in caught.value.message


@pytest.mark.slow  # python -m kyro in a child process per input
@pytest.mark.parametrize("kind", BAD_INPUTS)
def test_bad_input_through_the_cli_is_refused_cleanly(
    emulator_process: EmulatorProcess, tmp_path: Path, kind: str
) -> None:
    """Each kind of bad input given to ``submit``: exit 2, a short message, no state, no batch."""
    outcome = bad_input_scenario(emulator_process.url, tmp_path / "job", kind)
    assert outcome.recovered, outcome
    assert outcome.duplicate_batches == 0, outcome


# -- 3. bounded reads ------------------------------------------------------------------------


def _config_error(folder: Path, text: str) -> BatchValidationError:
    """The error loading a config of ``text`` raises."""
    config = folder / "config-under-test.yml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(BatchValidationError) as caught:
        load_config(config)
    return caught.value


def test_fifo_and_devices_are_refused_without_reading(tmp_path: Path) -> None:
    """A FIFO config or transcript, and a transcript or prompt on /dev/zero, are refused."""
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(BatchValidationError, match="FIFO"):
        list(iter_transcripts(fifo))
    config_fifo = tmp_path / "judges.yml"
    os.mkfifo(config_fifo)
    with pytest.raises(BatchValidationError, match="config file is a FIFO"):
        load_config(config_fifo)
    zero = tmp_path / "zero.jsonl"
    zero.symlink_to("/dev/zero")
    with pytest.raises(BatchValidationError, match="character device"):
        list(iter_transcripts(zero))
    error = _config_error(
        tmp_path, "version: 1\nmodel: m\njudges:\n  - name: a\n    prompt_file: /dev/zero\n"
    )
    assert (error.line, error.column) == (5, 18)
    assert "character device" in error.message


def test_size_limits_are_documented_defaults_and_settable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transcript, a .jsonl line or a config over its limit is refused; the limit is settable."""
    monkeypatch.setenv("KYRO_MAX_TRANSCRIPT_BYTES", "100")
    big = tmp_path / "big.txt"
    big.write_text("x" * 101, encoding="utf-8")
    with pytest.raises(BatchValidationError, match="KYRO_MAX_TRANSCRIPT_BYTES"):
        list(iter_transcripts(big))
    lines = tmp_path / "set.jsonl"
    lines.write_text('"short"\n"' + "y" * 200 + '"\n', encoding="utf-8")
    with pytest.raises(BatchValidationError) as caught:
        list(iter_transcripts(lines))
    assert caught.value.line == 2
    monkeypatch.setenv("KYRO_MAX_TRANSCRIPT_BYTES", "1000")
    assert [t.value for t in iter_transcripts(big)] == ["x" * 101]
    config, _ = _files(tmp_path / "c")
    monkeypatch.setenv("KYRO_MAX_CONFIG_BYTES", "10")
    with pytest.raises(BatchValidationError, match="larger than 10 bytes"):
        load_config(config)
    monkeypatch.setenv("KYRO_MAX_CONFIG_BYTES", "-3")
    with pytest.raises(BatchValidationError, match="KYRO_MAX_CONFIG_BYTES"):
        load_config(config)


def test_runs_are_capped_before_anything_is_built(tmp_path: Path) -> None:
    """plan_requests refuses a billion runs at once instead of building per-run tuples."""
    config, transcript = _files(tmp_path)
    with pytest.raises(BatchValidationError, match="from 1 to 100"):
        list(plan_requests(load_config(config), iter_transcripts([transcript]), runs=10**9))


# -- 4. a full disk on every path ------------------------------------------------------------


def _limited_kyro(args: list[str], url: str, max_file_bytes: int | None) -> Any:
    """``python -m kyro ARGS`` whose files may not grow past ``max_file_bytes`` (a full disk)."""

    def limit() -> None:
        if max_file_bytes is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write fails with EFBIG instead
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, resource.RLIM_INFINITY))

    # No bytecode from this child: under the size limit the interpreter would leave a cut
    # .pyc behind (its one write comes back short), and every later import would fail on it.
    return subprocess.run(
        [sys.executable, "-m", "kyro", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(OPENAI_BASE_URL=url, PYTHONDONTWRITEBYTECODE="1"),
        preexec_fn=limit,
        check=False,
    )


@pytest.mark.slow  # child processes with a file size limit
def test_submit_on_a_full_disk_is_clear_and_a_rerun_completes(
    emulator_process: EmulatorProcess, tmp_path: Path
) -> None:
    """The shard writer on a full disk: exit 2 naming the folder, no batch; a rerun finishes."""
    url = emulator_process.url
    job = Job(tmp_path / "job", "hostile-full-disk")
    failed = _limited_kyro(job.submit_args(), url, max_file_bytes=200)
    assert failed.returncode == 2, failed.stderr
    assert "Traceback" not in failed.stderr
    assert "cannot write kyro's state here (File too large)" in failed.stderr
    assert str(job.state_dir) in failed.stderr
    assert batches_by_config(url, job.config_hash()) == []
    assert _limited_kyro(job.submit_args(), url, None).returncode == 0
    done = _limited_kyro(job.check_args(), url, None)
    assert done.returncode == 0, done.stderr
    finished = job.finished()
    assert finished is not None
    assert lost_verdicts(job, Path(finished["results_path"])) == 0
    assert duplicate_batches(batches_by_config(url, job.config_hash()), finished["job_id"]) == 0


@pytest.mark.slow  # a child process with a file size limit
def test_plan_write_on_a_full_disk_names_the_folder(tmp_path: Path) -> None:
    """``plan --write DIR`` on a full disk exits 2 naming DIR, without a traceback."""
    config, transcript = _files(tmp_path)
    out = tmp_path / "out"
    proc = _limited_kyro(["plan", str(config), str(transcript), "--write", str(out)], "", 50)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"{out}: cannot write the plan here")
    assert "Traceback" not in proc.stderr


# -- 5. exports as private as the state ------------------------------------------------------

HOSTILE_CAUSES = ['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)", "\tTab", "\rCR", "fine"]


def _result(folder: Path) -> BatchRunResult:
    """A finished job whose root causes are the hostile cells above, one per transcript."""
    config, _ = _files(folder)

    def responder(custom_id: str, body: dict[str, Any]) -> str:
        cause = HOSTILE_CAUSES[int(custom_id.split("-")[0][1:])]
        return json.dumps({"status": "SUCCESS", "root_cause": cause})

    async def go() -> BatchRunResult | None:
        judge = BatchJudge(FakeProvider(responder=responder), config, state_dir=folder / "s")
        await judge.submit([f"user: {i}\n" for i in range(len(HOSTILE_CAUSES))])
        return await judge.check() or await judge.check()

    result = anyio.run(go)
    assert result is not None
    return result


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o600), (0o077, 0o600), (0o277, 0o400)])
def test_exports_are_private_whatever_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    """--output and --csv files get 0600, or the umask's mode when that is stricter."""
    result = _result(tmp_path)
    previous = os.umask(umask)
    try:
        export_csv(result, tmp_path / "out.csv")
        export_jsonl(result, tmp_path / "out.jsonl")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out.csv").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "out.jsonl").stat().st_mode) == mode


def test_csv_cells_that_look_like_formulas_are_neutralised(tmp_path: Path) -> None:
    """Root causes starting with = + - @ tab or CR are written with a leading quote."""
    result = _result(tmp_path)
    export_csv(result, tmp_path / "out.csv")
    with (tmp_path / "out.csv").open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    causes = [row["root_cause"] for row in rows]
    assert causes == ["'" + c for c in HOSTILE_CAUSES[:-1]] + ["fine"]


def test_eval_exports_are_private_and_neutralised(tmp_path: Path) -> None:
    """An eval's CSV and JSONL exports are 0600 and its formula-like outputs start with '."""

    def echo(text: str) -> str:
        return text

    result = evaluate_sync(
        echo,
        ["=SUM(A1)", "-1", "fine"],
        scorers=["exact_match"],
        expected=["=SUM(A1)", "-1", "fine"],
        results_path=tmp_path / "r.jsonl",
    )
    previous = os.umask(0o022)
    try:
        result.to_csv(tmp_path / "out.csv")
        result.to_jsonl(tmp_path / "out.jsonl")
    finally:
        os.umask(previous)
    for name in ("out.csv", "out.jsonl"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    with (tmp_path / "out.csv").open(encoding="utf-8", newline="") as file:
        outputs = [row["output"] for row in csv.DictReader(file)]
    assert outputs == ["'=SUM(A1)", "'-1", "fine"]


# -- 6. no secret in any message -------------------------------------------------------------


def test_credentials_in_urls_and_headers_are_masked() -> None:
    """redact() masks URL userinfo, authorization values and sk- keys; other text is kept."""
    assert redact("GET http://me:sk-MARKED-1234567@h:1/v1 ok") == "GET http://***@h:1/v1 ok"
    assert (
        redact("[(b'authorization', b'Bearer abc.def')]") == "[(b'authorization', b'Bearer ***')]"
    )
    assert redact("api-key: zzz9") == "api-key: ***"
    assert (
        redact("mail me@example.com at http://host/v1") == "mail me@example.com at http://host/v1"
    )


def test_provider_errors_never_show_credentials_from_the_url() -> None:
    """A connection error for a base URL holding a key prints the URL without it."""
    error = ProviderError("no answer from http://user:sk-MARKED-abcdef@127.0.0.1:9/v1")
    assert "sk-MARKED" not in str(error)
    assert "http://***@127.0.0.1:9/v1" in str(error)
    provider = OpenAIBatchProvider(api_key="k", base_url="http://u:sk-MARKED-abcdef@127.0.0.1:9/v1")
    assert "sk-MARKED" not in repr(provider)


def test_logging_keeps_redaction_on_for_third_party_loggers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """At -vv, a raw header line httpcore could log reaches stderr masked."""
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = []
    try:
        configure_logging(2)
        logging.getLogger("httpcore.http11").debug(
            "send_request_headers.complete headers=%s",
            [(b"authorization", b"Bearer sk-MARKED-zz9")],
        )
        logging.getLogger("httpx").debug("HTTP Request: POST http://u:pw-123@h/v1/files")
    finally:
        for handler in root.handlers:
            root.removeHandler(handler)
        root.handlers = saved
    err = capsys.readouterr().err
    assert "send_request_headers.complete" in err
    assert "HTTP Request: POST" in err
    assert "sk-MARKED" not in err
    assert "pw-123" not in err


# -- 7. state read back is state checked -----------------------------------------------------


async def _pending_job(folder: Path) -> tuple[BatchJudge, Path]:
    config, transcript = _files(folder)
    judge = BatchJudge(FakeProvider(polls_until_done=100), config, state_dir=folder / "state")
    await judge.submit([transcript, "user: two\n"], runs=2)
    return judge, judge._runner.store.state_path


def _edit(path: Path, change: Any) -> bytes:
    data = json.loads(path.read_bytes())
    change(data)
    edited = json.dumps(data).encode()
    path.write_bytes(edited)
    return edited


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            lambda s: s["shards"][0].update(name="../../../../etc/passwd"),
            "outside the job's folder",
        ),
        (lambda s: s["shards"][0].update(name="/etc/passwd"), "outside the job's folder"),
        (
            lambda s: s["shards"][0]["attempts"][0].update(file="shards/../../../x"),
            "outside the job's folder",
        ),
        (lambda s: s.update(judges=[]), "names no judge"),
        (lambda s: s.update(transcripts=1), "make 2"),
        (lambda s: s.update(runs=1), "make 2"),
        (lambda s: s.update(runs=0), "runs is 0"),
        (lambda s: s.update(transcripts=-5), "-5 transcripts"),
        (lambda s: s.update(judges=["a", "a"]), "repeat"),
        (lambda s: s["shards"][0].update(index=3), "shard indices"),
        (lambda s: s.update(config_sha256="x"), "SHA-256"),
    ],
)
async def test_an_edited_state_is_refused_and_left_untouched(
    tmp_path: Path, change: Any, says: str
) -> None:
    """Names escaping the job's folder or counts that disagree are a clear error; no upload."""
    judge, path = await _pending_job(tmp_path)
    edited = _edit(path, change)
    uploads = len(judge.provider.batches)  # type: ignore[attr-defined]
    with pytest.raises(BatchValidationError) as caught:
        await judge.check()
    assert says in str(caught.value)
    assert caught.value.path == str(path)
    assert path.read_bytes() == edited
    assert len(judge.provider.batches) == uploads  # type: ignore[attr-defined]


async def test_a_pending_state_loads_as_it_was_saved(tmp_path: Path) -> None:
    """The cross-check accepts what kyro itself writes, at every step of a job."""
    judge, _ = await _pending_job(tmp_path)
    state = judge._runner.store.load()
    assert state is not None
    assert state.transcripts == 2
    assert state.runs == 2
    await judge.cancel()
    assert judge._runner.store.load() is not None


# -- 8. params checked before they cost money ------------------------------------------------


@pytest.mark.parametrize(
    ("params", "says", "where"),
    [
        ("temperature: .nan", "params.temperature is nan", (7, 20)),
        ("temperature: .inf", "params.temperature is inf", (7, 20)),
        ("n: 2", "params.n is 2", (7, 10)),
        ("stream: true", "params.stream is True", (7, 15)),
        ('logit_bias: {"5": [1, -.inf]}', "params.logit_bias.5.1 is -inf", (7, 29)),
        ("seed: 99999999999999999999", "too large to send as a JSON number", (7, 13)),
    ],
)
def test_params_that_cannot_be_sent_are_refused_at_validate(
    tmp_path: Path, params: str, says: str, where: tuple[int, int]
) -> None:
    """NaN, infinity, n > 1 and stream: true in params fail validation at line:column."""
    error = _config_error(
        tmp_path,
        "version: 1\nmodel: m\njudges:\n  - name: a\n    prompt: 'JSON {{input}}'\n"
        f"    params:\n      {params}\n",
    )
    assert says in error.message
    assert (error.line, error.column) == where


def test_a_model_name_with_control_characters_is_refused(tmp_path: Path) -> None:
    """A model name holding a carriage return is refused where it is written."""
    error = _config_error(
        tmp_path,
        "version: 1\nmodel: \"gpt-4o\\r\"\njudges:\n  - name: a\n    prompt: 'JSON {{input}}'\n",
    )
    assert "control character U+000D" in error.message
    assert (error.line, error.column) == (2, 8)


# -- 9. messages that point at the cause -----------------------------------------------------


async def test_a_deleted_shards_folder_is_named_as_gone(tmp_path: Path) -> None:
    """Deleting the shards folder is reported as a missing file of the job, not a write error."""
    config, transcript = _files(tmp_path)
    judge = BatchJudge(FakeProvider(), config, state_dir=tmp_path / "state")
    job_id = await judge.submit([transcript])
    shutil.rmtree(judge._runner.store.shards_dir)
    with pytest.raises(BatchValidationError) as caught:
        await judge.check()
    message = str(caught.value)
    assert "is gone from its state folder" in message
    assert "cannot write" not in message
    assert "transcripts.index.jsonl" in message
    state = judge._runner.store.load()  # the job is kept, its progress saved
    assert state is not None
    assert state.job_id == job_id


def test_a_file_where_the_state_folder_should_be_is_named_as_such(tmp_path: Path) -> None:
    """--state-dir naming a regular file says a file stands there, not "make it writable"."""
    blocker = tmp_path / "state"
    blocker.write_text("mine", encoding="utf-8")
    config, _ = _files(tmp_path)
    with pytest.raises(BatchValidationError) as caught:
        StateStore(config, blocker).ensure_dirs()
    assert "a file stands where a folder should be" in str(caught.value)
    assert "make the folder writable" not in str(caught.value)
    assert blocker.read_text(encoding="utf-8") == "mine"
