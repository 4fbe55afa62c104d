"""A provider the command line has never heard of, registered as any plugin registers itself
(a distribution with a ``kyro.providers`` entry point), plans, submits, serves and judges an
eval with its own options."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cli.cli_helpers import ROOT, read_csv, run_kyro
from tests.serve.serve_helpers import AUTH, verdicts_of_one_execution, write_judge

pytestmark = pytest.mark.slow  # every test runs python -m kyro in a child process

PROVIDER = '''
from __future__ import annotations

import argparse
import json
from pathlib import Path

from kyro.provider import BatchLimits, BatchValidationError, JudgeRequest, ResultLine
from kyro.testing import FakeProvider


class AcmeProvider(FakeProvider):
    """A third-party provider: its own name, default model, limits and one option."""

    name = "acme"
    default_model = "acme-judge-1"

    @classmethod
    def add_cli_options(cls, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--acme-region", default="us", help="the Acme region to run in")

    @classmethod
    def from_cli_args(cls, args: argparse.Namespace, *, state_dir: Path) -> AcmeProvider:
        if args.acme_region not in ("us", "eu"):
            raise BatchValidationError(f"--acme-region must be us or eu, not {args.acme_region}")
        region = args.acme_region
        return cls(
            limits=BatchLimits(max_requests=2, max_bytes=1_000_000),
            url=f"/{region}/v1/chat/completions",
            responder=lambda custom_id, body: verdict(region),
        )


def verdict(region: str) -> str:
    return json.dumps({"status": "SUCCESS", "score": 1, "root_cause": f"judged in {region}"})


class AcmeLiveProvider(AcmeProvider):
    """The same plugin answering live as well: ``complete`` makes it a live provider."""

    name = "acme-live"

    async def complete(self, request: JudgeRequest) -> ResultLine:
        region = self.url.split("/")[1]
        return ResultLine(custom_id=request.custom_id, ok=True, content=verdict(region))
'''

CONFIG = """\
version: 1
judges:
  - name: polite
    prompt: "Is this reply polite? {{input}}"
    output_format: json
"""


@pytest.fixture
def plugin_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose import path holds the acme package and its installed metadata."""
    site = tmp_path / "site"
    (site / "acme_kyro").mkdir(parents=True)
    (site / "acme_kyro" / "__init__.py").write_text(PROVIDER, encoding="utf-8")
    dist = site / "acme_kyro-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-kyro\nVersion: 1.0\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text(
        "[kyro.providers]\nacme = acme_kyro:AcmeProvider\nacme-live = acme_kyro:AcmeLiveProvider\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "KYRO_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return env


@pytest.fixture
def acme_job(tmp_path: Path) -> Path:
    """A one-judge config (no model named) and three transcripts; returns the config."""
    (tmp_path / "judges.yml").write_text(CONFIG, encoding="utf-8")
    folder = tmp_path / "transcripts"
    folder.mkdir()
    for name in ("a", "b", "c"):
        (folder / f"{name}.txt").write_text(f"reply {name}: thank you!", encoding="utf-8")
    return tmp_path / "judges.yml"


def test_plan_uses_the_plugins_limits_model_encoder_and_option(
    plugin_env: dict[str, str], acme_job: Path, tmp_path: Path
) -> None:
    """``plan --provider acme`` shards at the plugin's limits with its default model and its
    encoder, built from its own ``--acme-region`` option."""
    out = tmp_path / "plan-out"
    args = ["plan", str(acme_job), str(tmp_path / "transcripts"), "--provider", "acme"]
    done = run_kyro([*args, "--acme-region", "eu", "--write", str(out)], plugin_env)
    assert done.returncode == 0, done.stderr
    assert "limits per shard (acme): 2 requests, 1,000,000 bytes" in done.stdout
    assert "acme-judge-1: 3 requests" in done.stdout
    assert "in 2 shards" in done.stdout
    lines = [
        json.loads(line)
        for shard in sorted(out.glob("*.jsonl"))
        if shard.name != "transcripts.index.jsonl"
        for line in shard.read_text(encoding="utf-8").splitlines()
    ]
    assert [line["url"] for line in lines] == ["/eu/v1/chat/completions"] * 3
    assert {line["body"]["model"] for line in lines} == {"acme-judge-1"}


def test_submit_builds_the_plugin_from_its_options(
    plugin_env: dict[str, str], acme_job: Path, tmp_path: Path
) -> None:
    """``submit --provider acme`` runs through the plugin; a bad value of its own option is the
    plugin's clear error with exit 2, and ``--help`` lists the option."""
    args = ["submit", str(acme_job), str(tmp_path / "transcripts"), "--provider", "acme"]
    done = run_kyro([*args, "--acme-region", "eu", "-q"], plugin_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("kyro-")
    state = json.loads((tmp_path / ".kyro" / "judges.batch-state.json").read_text())
    assert state["provider"] == "acme"
    assert state["models"] == {"polite": "acme-judge-1"}
    batches = [attempt["batch_id"] for shard in state["shards"] for attempt in shard["attempts"]]
    assert batches == ["fakebatch_1", "fakebatch_2"]  # the plugin's limit: 2 requests a batch
    bad = run_kyro([*args, "--acme-region", "mars"], plugin_env)
    assert bad.returncode == 2
    assert "--acme-region must be us or eu, not mars" in bad.stderr
    helped = run_kyro(["submit", "--provider", "acme", "--help"], plugin_env)
    assert helped.returncode == 0
    assert "options of the acme provider" in helped.stdout
    assert "--acme-region" in helped.stdout


def test_a_plugin_that_cannot_load_says_so_before_its_options_are_parsed(
    plugin_env: dict[str, str], acme_job: Path, tmp_path: Path
) -> None:
    """A broken plugin is named with the import error, not reported as unknown options."""
    site = Path(plugin_env["PYTHONPATH"].split(os.pathsep)[0])
    (site / "acme_kyro" / "__init__.py").write_text("import acme_missing_dependency\n")
    args = ["plan", str(acme_job), str(tmp_path / "transcripts"), "--provider", "acme"]
    done = run_kyro([*args, "--acme-region", "eu"], plugin_env)
    assert done.returncode == 2
    assert "provider 'acme' is registered as 'acme_kyro:AcmeProvider'" in done.stderr
    assert "acme_missing_dependency" in done.stderr
    assert "unrecognized arguments" not in done.stderr


def test_an_unknown_provider_is_named_with_the_installed_ones(
    plugin_env: dict[str, str], acme_job: Path, tmp_path: Path
) -> None:
    """``plan --provider nope`` exits 2 naming the providers that exist, the plugin among them."""
    done = run_kyro(
        ["plan", str(acme_job), str(tmp_path / "transcripts"), "--provider", "nope"], plugin_env
    )
    assert done.returncode == 2
    assert "unknown provider 'nope'" in done.stderr
    assert "acme" in done.stderr


def test_serve_runs_executions_through_the_plugin_built_from_its_option(
    plugin_env: dict[str, str], tmp_path: Path
) -> None:
    """``serve --provider acme-live --acme-region eu`` shares one plugin instance, built from
    its own option, live across executions (the class has ``complete``; its verdicts say the
    region); a bad value of the batch plugin's option stops the start with its error and exit
    2, nothing written; ``--help`` lists the option."""
    judges = write_judge(tmp_path / "judges").parent
    data = tmp_path / "data"
    args = ["--judges", str(judges), "--data-dir", str(data), "--provider", "acme-live"]
    verdicts = verdicts_of_one_execution(
        [*args, "--acme-region", "eu"], plugin_env, tmp_path / "server.log"
    )
    assert verdicts == [("SUCCESS", "judged in eu")] * 3
    assert not (data / "jobs").exists()  # live: no batch job was kept
    key = AUTH["Authorization"].split()[1]
    bad = run_kyro(
        ["serve", "--port", "0", "--judges", str(judges), "--data-dir", str(tmp_path / "bad"),
         "--provider", "acme", "--acme-region", "x"],
        {**plugin_env, "KYRO_SERVE_API_KEYS": key},
        cwd=tmp_path,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "--acme-region must be us or eu, not x" in bad.stderr
    assert not (tmp_path / "bad").exists()
    helped = run_kyro(["serve", "--provider", "acme", "--help"], plugin_env)
    assert "options of the acme provider" in helped.stdout
    assert "--acme-region" in helped.stdout


def test_eval_judges_through_the_plugin_built_from_its_option(
    plugin_env: dict[str, str], tmp_path: Path
) -> None:
    """``eval --provider acme --acme-region eu`` sends the LLM judges to the plugin built from
    its own option and waits for them; a bad value is the plugin's error with exit 2."""
    out = tmp_path / "eval.csv"
    args = ["eval", "examples.eval.support_agent:answer", "examples/eval/dataset.jsonl",
            "--scorer", "llm:Is it polite?", "--model", "acme-judge-1", "--provider", "acme",
            "--interval", "0.01", "--state-dir", str(tmp_path / "ev")]  # fmt: skip
    done = run_kyro([*args, "--acme-region", "eu", "--csv", str(out)], plugin_env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "pass rate: 83.3%" in done.stdout  # one item's component raises: no judge for it
    judged = [row for row in read_csv(out) if row["llm_judge.score"]]
    assert len(judged) == 5
    assert {row["llm_judge.explanation"] for row in judged} == {"judged in eu"}
    bad = run_kyro([*args, "--acme-region", "mars"], plugin_env, cwd=ROOT)
    assert bad.returncode == 2
    assert "--acme-region must be us or eu, not mars" in bad.stderr
    helped = run_kyro(["eval", "--provider", "acme", "--help"], plugin_env)
    assert "--acme-region" in helped.stdout
