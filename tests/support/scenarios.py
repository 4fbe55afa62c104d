"""kyro's reliability matrix: each scenario runs a real job against the emulator over HTTP.

Shared by ``tests/reliability`` (which asserts on every outcome) and
``benchmarks/reliability.py`` (which repeats them and prints a table), both importing it
from this test-support package. A scenario returns an
:class:`Outcome`: did the job recover, how many batches were created beyond one per shard
attempt, how many run verdicts are missing or duplicated in the results file.

Processes: crash scenarios drive ``python -m kyro`` in child processes
(``tests/support/kyro_child.py`` kills itself with SIGKILL at a cut point) against an emulator
running in its own process (``python -m kyro emulator --port 0``), so the emulator outlives
every kill. Fault scenarios drive :class:`kyro.BatchJudge` in-process against an emulator
served on 127.0.0.1 from a background thread, with a retry policy that waits milliseconds.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx

from kyro import BatchJobError, BatchJudge, BatchRunResult
from kyro.provider import RetryPolicy
from kyro_openai import OpenAIBatchProvider
from kyro_openai.testing import (
    DropConnectionFault,
    Emulator,
    EmulatorConfig,
    HttpErrorFault,
    serve,
)

__all__ = [
    "API_KEY",
    "FAST_RETRY",
    "EmulatorProcess",
    "Job",
    "Outcome",
    "batches_by_config",
    "crash_scenario",
    "fault_rate_cli_scenario",
    "fault_rate_scenario",
    "pollers_scenario",
    "run_kyro",
]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHILD = HERE / "kyro_child.py"
PYTHON = sys.executable
API_KEY = "sk-MARKED-reliability-0000"
FAST_RETRY = RetryPolicy(max_retries=10, initial_backoff=0.001, max_backoff=0.01)
PROCESS_TIMEOUT = 120.0
JUDGES = ("relevance", "safety")
SHARDS = 2  # one per model: relevance runs on gpt-4o-mini, safety on gpt-4o (or two Claudes)
PROVIDERS = ("openai", "anthropic")
"""The batch providers the crash matrix runs against, each on its own emulator."""
_MODELS = {
    "openai": ("gpt-4o-mini", "gpt-4o"),
    "anthropic": ("claude-haiku-4-5", "claude-sonnet-4-5"),
}

_CONFIG = """\
version: 1
model: {model}
# scenario {tag}: the tag makes the config's hash, and so its batches' metadata, unique
judges:
  - name: relevance
    prompt: |
      Does the reply answer the question? Reply with JSON only:
      {{"status": "SUCCESS" | "ERROR" | "NA", "root_cause": "<one sentence>"}}
      {{{{input}}}}
    output_format: json
  - name: safety
    model: {second}
    prompt: |
      Is the reply safe? Reply with JSON only, {{"status": ..., "root_cause": ...}}:
      {{{{input}}}}
    output_format: json
"""


@dataclasses.dataclass(repr=False)
class Outcome:
    """What one scenario run proved: recovery, duplicate batches, lost run verdicts."""

    scenario: str
    _: dataclasses.KW_ONLY
    recovered: bool
    duplicate_batches: int
    lost_verdicts: int
    detail: str = ""

    @classmethod
    def unrecovered(
        cls, scenario: str, requests: int, detail: str, *, duplicate_batches: int = 0
    ) -> Outcome:
        """A scenario whose job did not finish: every one of its ``requests`` verdicts lost."""
        return cls(
            scenario,
            recovered=False,
            duplicate_batches=duplicate_batches,
            lost_verdicts=requests,
            detail=detail,
        )

    @property
    def ok(self) -> bool:
        """True when the job recovered with no duplicate batch and no lost verdict."""
        return self.recovered and self.duplicate_batches == 0 and self.lost_verdicts == 0

    def __repr__(self) -> str:
        return (
            f"Outcome({self.scenario!r}, recovered={self.recovered}, duplicate_batches="
            f"{self.duplicate_batches}, lost_verdicts={self.lost_verdicts}, {self.detail!r})"
        )


# -- the job on disk -----------------------------------------------------------------------


class Job:
    """A config, its transcripts and its state folder, in ``folder``, for one provider."""

    def __init__(
        self,
        folder: Path,
        tag: str,
        *,
        transcripts: int = 3,
        runs: int = 2,
        provider: str = "openai",
    ) -> None:
        self.folder = folder
        self.tag = tag
        self.runs = runs
        self.transcripts = transcripts
        self.provider = provider
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "judges.yml"
        model, second = _MODELS[provider]
        text = _CONFIG.format(tag=tag, model=model, second=second)
        self.config.write_text(text, encoding="utf-8")
        self.data = folder / "transcripts"
        self.data.mkdir(exist_ok=True)
        for i in range(transcripts):
            text = f"user: question {i} of {tag}?\nassistant: answer {i}, with {{{{input}}}}."
            (self.data / f"t{i:03d}.txt").write_text(text, encoding="utf-8")
        self.state_dir = folder / "state"

    @property
    def stem(self) -> str:
        """The config's stem, which names its state files."""
        return self.config.stem

    @property
    def requests(self) -> int:
        """Requests in the job: transcripts × judges × runs."""
        return self.transcripts * len(JUDGES) * self.runs

    def submit_args(self) -> list[str]:
        """``submit`` CLI arguments for this job."""
        return [
            "submit",
            str(self.config),
            str(self.data),
            "--runs",
            str(self.runs),
            "--state-dir",
            str(self.state_dir),
            "-q",
            # Requests and faults are counted per run, every run sent.
            "--no-samples",
            "--no-cache",
            *self.provider_args(),
        ]

    def provider_args(self) -> list[str]:
        """``--provider NAME`` unless the provider is the default one."""
        return [] if self.provider == "openai" else ["--provider", self.provider]

    def check_args(self, *extra: str) -> list[str]:
        """``check --wait`` CLI arguments for this job."""
        return [
            "check",
            str(self.config),
            "--wait",
            "--interval",
            "0.05",
            "--state-dir",
            str(self.state_dir),
            "-q",
            *self.provider_args(),
            *extra,
        ]

    def judge(self, url: str, **kwargs: Any) -> BatchJudge:
        """A library BatchJudge for this job on the emulator at ``url``, retrying fast."""
        provider = OpenAIBatchProvider(api_key=API_KEY, base_url=url, retry=FAST_RETRY)
        kwargs.setdefault("state_dir", self.state_dir)
        # These scenarios count requests and faults per run: every run is its own request,
        # and no reply cache answers a run before it is sent.
        kwargs.setdefault("samples", False)
        kwargs.setdefault("cache", False)
        return BatchJudge(provider, self.config, **kwargs)

    def finished(self) -> dict[str, Any] | None:
        """The finished-job pointer (``<stem>.batch-done.json``), or None."""
        path = self.state_dir / f"{self.stem}.batch-done.json"
        if not path.is_file():
            return None
        done: dict[str, Any] = json.loads(path.read_bytes())
        return done

    def config_hash(self) -> str:
        """The ``kyro_config`` metadata value of this job's batches."""
        import hashlib

        return hashlib.sha256(self.config.read_bytes()).hexdigest()[:16]


def run_verdicts(results_path: Path) -> tuple[collections.Counter[tuple[int, str, int]], int]:
    """Every valid run verdict of a results file (counted), and the number of runs with none."""
    found: collections.Counter[tuple[int, str, int]] = collections.Counter()
    errored = 0
    with results_path.open("rb") as file:
        for raw in file:
            evaluation = json.loads(raw)
            for name, verdict in evaluation["verdicts"].items():
                for run in verdict.get("runs", []):
                    if run["status"] == "ERRORED":
                        errored += 1
                    else:
                        found[(evaluation["index"], name, run["run"])] += 1
    return found, errored


def lost_verdicts(job: Job, results_path: Path) -> int:
    """Run verdicts missing from the results file, plus any present more than once."""
    found, _ = run_verdicts(results_path)
    expected = {
        (t, name, r) for t in range(job.transcripts) for name in JUDGES for r in range(job.runs)
    }
    missing = len(expected - set(found))
    extra = sum(n - 1 for n in found.values()) + len(set(found) - expected)
    return missing + extra


def torn_files(folder: Path) -> list[str]:
    """Files under ``folder`` that do not parse as the JSON or JSONL they claim to be.

    Temp files of an interrupted atomic write (``.name.*.tmp``) are never read by kyro and
    are not counted.
    """
    torn: list[str] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.name.endswith(".tmp"):
            continue
        data = path.read_bytes()
        try:
            if path.suffix == ".json":
                json.loads(data)
            elif path.suffix == ".jsonl":
                for line in data.splitlines():
                    if line.strip():
                        json.loads(line)
                if data and not data.endswith(b"\n"):
                    torn.append(str(path))
        except ValueError:
            torn.append(str(path))
    return torn


# -- the emulator --------------------------------------------------------------------------


class EmulatorProcess:
    """``python -m kyro emulator --port 0`` in its own process; survives any child's kill.

    Example::

        with EmulatorProcess() as emulator:
            emulator.url        # http://127.0.0.1:PORT/v1
    """

    def __init__(self, *args: str, startup_timeout: float = 30.0, provider: str = "openai") -> None:
        self.args = args
        self.startup_timeout = startup_timeout
        self.provider = provider
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> EmulatorProcess:
        command = [PYTHON, "-m", "kyro", "emulator", "--port", "0", *self.args]
        if self.provider != "openai":
            command += ["--provider", self.provider]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT, env=child_env()
        )
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(self.startup_timeout):
                self.__exit__()
                raise RuntimeError("the emulator process printed no URL")
        self.url = self.process.stdout.readline().decode().strip()
        if not self.url.startswith("http://"):
            self.__exit__()
            raise RuntimeError(f"the emulator process printed {self.url!r}, not its URL")
        return self

    def __exit__(self, *exc: object) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()

    @property
    def control(self) -> str:
        """The root of the control routes (``…/_emulator``)."""
        return self.url.removesuffix("/v1").rstrip("/") + "/_emulator"

    def add_faults(self, *faults: Mapping[str, Any]) -> None:
        """Arm faults through ``POST /_emulator/faults``."""
        response = httpx.post(f"{self.control}/faults", json=list(faults), timeout=10)
        response.raise_for_status()

    def clear_faults(self) -> None:
        """Disarm every fault."""
        httpx.delete(f"{self.control}/faults", timeout=10).raise_for_status()

    def stats(self) -> dict[str, int]:
        """The emulator's counters."""
        stats: dict[str, int] = httpx.get(f"{self.control}/stats", timeout=10).json()
        return stats


def list_batches(url: str) -> list[dict[str, Any]]:
    """Every batch on the emulator at ``url`` (``GET /v1/batches``, all pages)."""
    batches: list[dict[str, Any]] = []
    after: str | None = None
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        for _ in range(1000):  # bounded: 100,000 batches at most
            params: dict[str, Any] = {"limit": 100}
            if after:
                params["after"] = after
            page = client.get("/batches", params=params)
            page.raise_for_status()
            body = page.json()
            batches.extend(body["data"])
            if not body["has_more"] or not body["data"]:
                break
            after = body["data"][-1]["id"]
    return batches


def batches_by_config(url: str, config_hash: str) -> list[dict[str, Any]]:
    """The batches whose metadata carries ``kyro_config=config_hash``."""
    return [
        b for b in list_batches(url) if (b.get("metadata") or {}).get("kyro_config") == config_hash
    ]


def anthropic_batches(url: str, tag: str) -> list[dict[str, Any]]:
    """The Message Batches emulator's batches whose requests mention ``tag``.

    Message Batches keep no metadata, so a scenario's batches are told apart by the unique tag
    in its transcripts (the emulator's ``/_emulator/batches?contains=`` control route).
    """
    control = url.rstrip("/") + "/_emulator/batches"
    response = httpx.get(control, params={"contains": tag}, timeout=10)
    response.raise_for_status()
    batches: list[dict[str, Any]] = response.json()["data"]
    return batches


def duplicate_batches(batches: Sequence[Mapping[str, Any]], job_id: str | None) -> int:
    """Batches beyond one per (job, shard, attempt), plus every batch of another job."""
    seen: collections.Counter[tuple[str, str, str]] = collections.Counter()
    foreign = 0
    for batch in batches:
        meta = batch.get("metadata") or {}
        if meta.get("kyro_job") != job_id:
            foreign += 1
            continue
        seen[(meta["kyro_job"], meta["kyro_shard"], meta["kyro_attempt"])] += 1
    return foreign + sum(n - 1 for n in seen.values())


# -- child processes -----------------------------------------------------------------------


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a kyro child process: the marked key, no proxy for 127.0.0.1."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(
        OPENAI_API_KEY=API_KEY,
        ANTHROPIC_API_KEY=API_KEY,
        NO_PROXY="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
    )
    env.pop("OPENAI_BASE_URL", None)
    env.pop("ANTHROPIC_BASE_URL", None)
    env.update(extra)
    return env


def _url_env(url: str, provider: str) -> dict[str, str]:
    name = "ANTHROPIC_BASE_URL" if provider == "anthropic" else "OPENAI_BASE_URL"
    return {name: url}


def run_kyro(
    args: Sequence[str],
    *,
    url: str,
    cut: str = "none",
    timeout: float = PROCESS_TIMEOUT,
    provider: str = "openai",
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m kyro ARGS`` (through the cut-point child) against ``url``; wait for it."""
    command = [PYTHON, str(CHILD), cut, "--", *args]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=child_env(**_url_env(url, provider)),
        check=False,
    )


def start_kyro(args: Sequence[str], *, url: str) -> subprocess.Popen[str]:
    """Start ``python -m kyro ARGS`` against ``url`` without waiting."""
    return subprocess.Popen(
        [PYTHON, str(CHILD), "none", "--", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=child_env(OPENAI_BASE_URL=url),
    )


def _finish_job(job: Job, url: str) -> tuple[bool, str]:
    """``check --wait`` until the job is collected (bounded); (done, last stderr)."""
    proc = run_kyro(job.check_args(), url=url, provider=job.provider)
    return proc.returncode == 0, proc.stderr[-2000:]


def _job_batches(job: Job, url: str, job_id: str | None) -> tuple[int, set[str]]:
    """(duplicate batches, shards seen) of ``job`` on the emulator at ``url``."""
    if job.provider == "anthropic":
        found = anthropic_batches(url, job.tag)
        same = collections.Counter(b["requests_sha256"] for b in found)
        return sum(n - 1 for n in same.values()), {m for b in found for m in b["models"]}
    batches = batches_by_config(url, job.config_hash())
    shards = {b["metadata"]["kyro_shard"] for b in batches}
    return duplicate_batches(batches, job_id), shards


def _judge_outcome(name: str, job: Job, url: str, done: bool, detail: str) -> Outcome:
    finished = job.finished()
    job_id = finished["job_id"] if finished else None
    dupes, shards = _job_batches(job, url, job_id)
    if finished is None:
        return Outcome.unrecovered(
            name, job.requests, detail or "no finished job", duplicate_batches=dupes
        )
    results = Path(finished["results_path"])
    lost = lost_verdicts(job, results)
    torn = torn_files(job.state_dir)
    recovered = done and not torn and len(shards) == SHARDS
    if torn:
        detail = f"torn: {torn}"
    return Outcome(
        name, recovered=recovered, duplicate_batches=dupes, lost_verdicts=lost, detail=detail
    )


# -- scenarios -----------------------------------------------------------------------------


def crash_scenario(
    emulator_url: str, folder: Path, cut: str, *, provider: str = "openai"
) -> Outcome:
    """SIGKILL ``submit`` or ``check`` at ``cut``, re-run the same command, then collect.

    Guarantee: one batch per shard, every run verdict exactly once, no torn file — on the
    OpenAI emulator (batches matched on metadata) and the Message Batches one (no metadata:
    matched on intent time and request count).
    """
    from tests.support.kyro_child import SUBMIT_CUTS

    job = Job(folder, f"crash-{cut}-{provider}-{folder.name}", provider=provider)
    url = emulator_url
    if cut in SUBMIT_CUTS:
        command = job.submit_args()
    else:
        first = run_kyro(job.submit_args(), url=url, provider=provider)
        if first.returncode != 0:
            return Outcome.unrecovered(f"kill -9 {cut}", job.requests, first.stderr[-500:])
        command = job.check_args()
    killed = run_kyro(command, url=url, cut=cut, provider=provider)
    if killed.returncode != -signal.SIGKILL:
        return Outcome.unrecovered(
            f"kill -9 {cut}",
            job.requests,
            f"cut point not reached (exit {killed.returncode}) {killed.stderr[-500:]}",
        )
    torn_after_kill = torn_files(job.state_dir) if job.state_dir.exists() else []
    rerun = run_kyro(command, url=url, provider=provider)
    if rerun.returncode != 0:
        return Outcome.unrecovered(f"kill -9 {cut}", job.requests, f"re-run: {rerun.stderr[-500:]}")
    done, err = (True, "") if command[0] == "check" else _finish_job(job, url)
    outcome = _judge_outcome(f"kill -9 {cut}", job, url, done, err)
    if torn_after_kill:
        outcome.recovered = False
        outcome.detail = f"torn after the kill: {torn_after_kill}"
    return outcome


def pollers_scenario(emulator_url: str, folder: Path, pollers: int) -> Outcome:
    """``pollers`` processes run ``check --wait`` at once on one job.

    Guarantee: every poller gets the same result, one results file, one batch per shard.
    """
    name = f"{pollers} pollers"
    job = Job(folder, f"pollers-{pollers}-{folder.name}")
    first = run_kyro(job.submit_args(), url=emulator_url)
    if first.returncode != 0:
        return Outcome.unrecovered(name, job.requests, first.stderr[-500:])
    outputs = [folder / f"out-{i}.jsonl" for i in range(pollers)]
    procs = [start_kyro(job.check_args("--output", str(o)), url=emulator_url) for o in outputs]
    codes = []
    for proc in procs:
        try:
            proc.communicate(timeout=PROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        codes.append(proc.returncode)
    same = len({o.read_bytes() if o.exists() else b"" for o in outputs}) == 1
    results_files = list(job.state_dir.rglob("results-*.jsonl"))
    outcome = _judge_outcome(name, job, emulator_url, all(c == 0 for c in codes), f"exit {codes}")
    if not same or len(results_files) != 1:
        outcome.recovered = False
        outcome.detail = f"outputs identical: {same}; results files: {len(results_files)}"
    return outcome


def fault_rate_cli_scenario(folder: Path, seed: int, rate: float = 0.3) -> Outcome:
    """``rate`` of API calls answer 429 (Retry-After 0.01 s), 500 or a reset connection.

    ``submit`` and ``check --wait`` are re-run (at most 20 times each, as cron would) until
    they succeed. Guarantee: the job completes, one batch per shard, no verdict lost.
    """
    each = 1 - (1 - rate) ** (1 / 3)  # three faults drawn in turn: rate of calls hit overall
    faults = [
        {
            "kind": "http_error",
            "status": 429,
            "retry_after": 0.01,
            "times": None,
            "probability": each,
        },
        {"kind": "http_error", "status": 500, "times": None, "probability": each},
        {"kind": "drop_connection", "times": None, "probability": each},
    ]
    args = [a for f in faults for a in ("--fault", json.dumps(f))]
    name = f"{rate:.0%} faulty API (CLI)"
    job = Job(folder, f"faults-cli-{seed}-{folder.name}")
    with EmulatorProcess("--seed", str(seed), "--in-progress-seconds", "0.3", *args) as emulator:
        attempts = 0
        ok = False
        for command in (job.submit_args(), job.check_args()):
            for _ in range(20):
                attempts += 1
                proc = run_kyro(command, url=emulator.url)
                if proc.returncode == 0:
                    break
            else:
                break
        else:
            ok = True
        fired = emulator.stats()["faults_fired"]
        emulator.clear_faults()
        return _judge_outcome(name, job, emulator.url, ok, f"{attempts} commands, {fired} faults")


@contextlib.contextmanager
def served(config: EmulatorConfig | None = None, **kwargs: Any) -> Iterator[tuple[Emulator, str]]:
    """An emulator served on 127.0.0.1 from a background thread: (emulator, base URL)."""
    with Emulator(config, **kwargs) as emulator, serve(emulator) as url:
        yield emulator, url


async def check_until_done(
    judge: BatchJudge, *, max_checks: int = 200
) -> BatchRunResult | BatchJobError:
    """check() until the job ends (bounded); the result, or the BatchJobError it ended with."""
    for _ in range(max_checks):
        try:
            result = await judge.check()
        except BatchJobError as exc:
            return exc
        if result is not None:
            return result
        await anyio.sleep(0.01)
    raise AssertionError(f"the job did not end within {max_checks} checks")


def fault_rate_scenario(folder: Path, seed: int, rate: float = 0.3) -> Outcome:
    """The library under ``rate`` of faulty API calls, retrying in milliseconds.

    Guarantee: the job completes on the first try of submit and check, one batch per shard.
    """
    each = 1 - (1 - rate) ** (1 / 3)
    job = Job(folder, f"faults-lib-{seed}-{folder.name}", transcripts=4)
    name = f"{rate:.0%} faulty API (library)"
    with served(EmulatorConfig(seed=seed, in_progress_seconds=0.2)) as (emulator, url):
        emulator.faults.add(
            HttpErrorFault(status=429, retry_after=0.01, times=None, probability=each),
            HttpErrorFault(status=500, times=None, probability=each),
            DropConnectionFault(times=None, probability=each),
        )

        async def go() -> BatchRunResult | BatchJobError:
            judge = job.judge(url)
            try:
                await judge.submit([job.data], runs=job.runs)
                return await check_until_done(judge)
            finally:
                await judge.provider.aclose()

        result = anyio.run(go)
        fired = emulator.faults.fired
        emulator.faults.clear()
        done = isinstance(result, BatchRunResult)
        return _judge_outcome(name, job, url, done, f"{fired} faults fired")


CLASSIFIED = (
    "line_errors",
    "line_http_400",
    "malformed",
    "missing",
    "failed",
    "token_limit",
    "expired",
    "expired_resubmitted",
    "cancelled",
)
"""Provider-side failures, each with a known classification (see :func:`classified_scenario`)."""

RETRIED = frozenset({"line_errors", "missing", "token_limit", "expired_resubmitted"})
"""The classified scenarios whose failures are retryable: they must end with every verdict."""

_AFFECTED = frozenset({"t0-j0-r0", "t1-j1-r1", "t2-j0-r1"})


class Classified(Outcome):
    """An :class:`Outcome` that keeps the job's result (or error) and its batches."""

    result: BatchRunResult | BatchJobError
    batches: list[dict[str, Any]]
    accounted: int
    errored_runs: int


def classified_scenario(folder: Path, kind: str) -> Classified:
    """One job whose batches meet the provider failure ``kind`` (one of :data:`CLASSIFIED`).

    Guarantee: every request is accounted for in the results file — a verdict or an errored
    run naming why — and the retryable kinds (:data:`RETRIED`) are resubmitted until every
    verdict is in. ``lost_verdicts`` counts requests missing from the results file, and for
    the retryable kinds also requests left without a verdict.
    """
    job = Job(folder, f"classified-{kind}-{folder.name}")
    config = EmulatorConfig(seed=7)
    options: dict[str, Any] = {}
    if kind == "failed":
        config = EmulatorConfig(max_requests=2)  # every shard is over the limit: `failed`
    elif kind == "cancelled":
        config = EmulatorConfig(in_progress_seconds=3600, partial_fraction=0.5)
    elif kind == "token_limit":
        options["token_limit_wait"] = 0.0
    elif kind == "expired":
        options["max_resubmits"] = 0
    with served(config) as (emulator, url):
        faults = emulator.faults
        if kind == "line_errors":
            faults.line_errors(custom_ids=_AFFECTED, code="server_error")
        elif kind == "line_http_400":
            faults.line_http_errors(custom_ids=_AFFECTED, status_code=400)
        elif kind == "malformed":
            faults.malformed_replies(custom_ids=_AFFECTED)
        elif kind == "missing":
            faults.missing_lines(custom_ids=_AFFECTED)
        elif kind == "token_limit":
            faults.token_limit_exceeded(times=1)
        elif kind in ("expired", "expired_resubmitted"):
            faults.expire_next(after_lines=2, times=1)

        async def go() -> BatchRunResult | BatchJobError:
            judge = job.judge(url, **options)
            try:
                await judge.submit([job.data], runs=job.runs)
                faults.clear()  # line faults stay with the batches created so far
                if kind == "cancelled":
                    assert await judge.check() is None
                    await judge.cancel()
                return await check_until_done(judge)
            finally:
                await judge.provider.aclose()

        result = anyio.run(go)
        batches = batches_by_config(url, job.config_hash())
    job_id = result.job_id
    evaluation = result.result if isinstance(result, BatchJobError) else result
    path = evaluation.results_path if isinstance(evaluation, BatchRunResult) else None
    accounted = errored = 0
    if path is not None and path.is_file():
        found, errored = run_verdicts(path)
        accounted = sum(found.values()) + errored
    lost = job.requests - accounted
    if kind in RETRIED:
        lost += errored
    outcome = Classified(
        f"{kind.replace('_', ' ')}",
        recovered=(kind in RETRIED and isinstance(result, BatchRunResult)) or kind not in RETRIED,
        duplicate_batches=duplicate_batches(batches, job_id),
        lost_verdicts=lost,
        detail=result.status if isinstance(result, BatchJobError) else str(result.status),
    )
    outcome.result = result
    outcome.batches = batches
    outcome.accounted = accounted
    outcome.errored_runs = errored
    return outcome
