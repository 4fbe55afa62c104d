"""Builder throughput and plan memory, each as a ratio against baselines measured in this run.

1. Throughput: N requests (~1.5 KB lines) through kyro's planner + shard builder
   (``build_shards`` with the OpenAI encoder, writing shards and the transcript index to a
   temp dir), against a bare loop that renders the same prompts with ``str.replace`` and
   encodes the same lines with a msgspec Struct and ``encode_into``, and against a per-line
   ``json.dumps`` loop. Targets: kyro ≥ 0.8× bare msgspec, ≥ 3× json.dumps.

   The two baselines do the same work as each other: render, encode, write the same lines to
   one file, nothing else. The headline ratios charge kyro with everything it does on top —
   pre-flight checks, shard limits, the transcript index, each shard's sha256 and the fsyncs
   that make the files durable. For information only, kyro is also timed with
   ``directory=None`` (plan, pre-flight, encode and count; nothing written, hashed or synced).
2. Memory: peak RSS (VmHWM) of a fresh ``kyro plan --write`` process at 20,000 and 200,000
   requests over a .jsonl dataset. Target: RSS(200k) ≤ 1.3 × RSS(20k).

Usage: ``python3 benchmarks/bench_builder.py [--requests N] [--repeat K] [--skip-rss]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

import kyro
from kyro._build.plan_build import build_shards
from kyro._transcripts import Transcript
from kyro_openai import OPENAI_LIMITS, encode_request

JUDGES = 2
RUNS = 2
URL = "/v1/chat/completions"
MODELS = ("gpt-4o-mini", "gpt-4o")
SYSTEM = "You are a careful, strict evaluator of customer-support conversations. Reply in JSON."
INSTRUCTIONS = (
    "Judge whether the assistant answered the customer's question about {{variables.product}} "
    "correctly and completely. Consider accuracy, tone, and whether the customer's problem was "
    "resolved. Return a JSON object with status (SUCCESS, ERROR or NA), root_cause and thinking.\n"
    "Transcript:\n{{input}}\n"
)
CONFIG = f"""\
version: 1
judges:
  - name: correctness
    model: {MODELS[0]}
    prompt_xml:
      role: {json.dumps(SYSTEM)}
      task: {json.dumps(INSTRUCTIONS)}
  - name: tone
    model: {MODELS[1]}
    prompt_xml:
      role: {json.dumps(SYSTEM)}
      task: {json.dumps(INSTRUCTIONS.replace("correctly and completely", "politely"))}
    params: {{temperature: 0, max_tokens: 400}}
"""
VARIABLES = {"product": "Acme Router X2"}


def transcript_text(i: int) -> str:
    """About 1 KB of conversation, different for each transcript (some of it non-ASCII)."""
    turns = []
    for turn in range(6):
        turns.append(
            f"user: my Acme router #{i} drops the connection every {turn + 3} minutes — "
            f"tried a reboot, no luck. (ticket {i * 7 + turn})\n"
            f"assistant: sorry about that! Please update the firmware to 2.{turn}.{i % 10} "
            "and tell me whether it helps.\n"
        )
    return "".join(turns)[:1000]


class _Msg(msgspec.Struct):
    role: str
    content: str


class _Body(msgspec.Struct, omit_defaults=True):
    model: str
    messages: tuple[_Msg, ...]
    response_format: dict[str, object]
    temperature: float | None = None
    max_tokens: int | None = None


class _Line(msgspec.Struct):
    custom_id: str
    method: str
    url: str
    body: _Body


def _prompts(config: kyro.JudgesConfig) -> list[tuple[str, str, str, dict[str, int]]]:
    """(model, system, user template with variables filled, params) per judge."""
    out = []
    for judge in config.judges:
        assert judge.system is not None
        user = judge.user.text.replace("{{variables.product}}", VARIABLES["product"])
        assert judge.model is not None
        out.append((judge.model, judge.system.text, user, dict(judge.params)))
    return out


def _response_format() -> dict[str, object]:
    """The verdict contract's Structured Outputs format, as kyro sends it to these models."""
    schema = kyro.verdict_schema()
    spec = {"name": schema.name, "strict": schema.strict, "schema": schema.schema}
    return {"type": "json_schema", "json_schema": spec}


CONTRACT = kyro.verdict_message().content
"""kyro's verdict system message, which every request starts with (the baselines too)."""


def run_kyro(config: kyro.JudgesConfig, texts: list[str], out: Path) -> int:
    transcripts = (
        Transcript(index=i, source=f"inline:{i}", value=text) for i, text in enumerate(texts)
    )
    summary = build_shards(
        config,
        transcripts,
        encode=encode_request,
        limits=OPENAI_LIMITS,
        directory=out,
        runs=RUNS,
        variables=VARIABLES,
    )
    return summary.bytes


def run_kyro_unwritten(config: kyro.JudgesConfig, texts: list[str], out: Path) -> int:
    transcripts = (
        Transcript(index=i, source=f"inline:{i}", value=text) for i, text in enumerate(texts)
    )
    summary = build_shards(
        config,
        transcripts,
        encode=encode_request,
        limits=OPENAI_LIMITS,
        directory=None,
        runs=RUNS,
        variables=VARIABLES,
    )
    out.mkdir()  # measure() removes it
    return summary.bytes


def run_bare(config: kyro.JudgesConfig, texts: list[str], out: Path) -> int:
    judges = _prompts(config)
    fmt = _response_format()
    contract = _Msg("system", CONTRACT)
    encoder = msgspec.json.Encoder()
    buffer = bytearray()
    total = 0
    out.mkdir()
    with open(out / "bare.jsonl", "wb") as file:
        for i, text in enumerate(texts):
            for j, (model, system, user, params) in enumerate(judges):
                content = user.replace("{{input}}", text)
                messages = (contract, _Msg("system", system), _Msg("user", content))
                body = _Body(model, messages, fmt, **params)
                for r in range(RUNS):
                    line = _Line(f"t{i}-j{j}-r{r}", "POST", URL, body)
                    encoder.encode_into(line, buffer, -1)
                    buffer.extend(b"\n")
                    if len(buffer) >= 1 << 20:
                        total += len(buffer)
                        file.write(buffer)
                        buffer.clear()
        total += len(buffer)
        file.write(buffer)
    return total


def run_json(config: kyro.JudgesConfig, texts: list[str], out: Path) -> int:
    judges = _prompts(config)
    fmt = _response_format()
    total = 0
    out.mkdir()
    with open(out / "json.jsonl", "wb") as file:
        for i, text in enumerate(texts):
            for j, (model, system, user, params) in enumerate(judges):
                content = user.replace("{{input}}", text)
                for r in range(RUNS):
                    line = {
                        "custom_id": f"t{i}-j{j}-r{r}",
                        "method": "POST",
                        "url": URL,
                        "body": {
                            "model": model,
                            "messages": [
                                {"role": "system", "content": CONTRACT},
                                {"role": "system", "content": system},
                                {"role": "user", "content": content},
                            ],
                            "response_format": fmt,
                            **params,
                        },
                    }
                    data = (json.dumps(line, ensure_ascii=False) + "\n").encode()
                    total += len(data)
                    file.write(data)
    return total


def measure(
    name: str,
    fn: Callable[[kyro.JudgesConfig, list[str], Path], int],
    config: kyro.JudgesConfig,
    texts: list[str],
    tmp: Path,
) -> tuple[float, int]:
    out = tmp / f"{name}-{time.perf_counter_ns()}"
    start = time.perf_counter()
    size = fn(config, texts, out)
    seconds = time.perf_counter() - start
    # Deleting the output drops its dirty pages, so one contender's writeback never slows
    # the next one down.
    shutil.rmtree(out)
    return seconds, size


RSS_CHILD = """
import sys
from kyro.cli import main
code = main(sys.argv[1:])
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print("VmHWM_KB", line.split()[1], file=sys.stderr)
sys.exit(code)
"""


def peak_rss_kb(config_path: Path, requests: int, tmp: Path) -> int:
    count = requests // (JUDGES * RUNS)
    dataset = tmp / f"data-{requests}.jsonl"
    with open(dataset, "w", encoding="utf-8") as file:
        for i in range(count):
            file.write(json.dumps({"conversation": transcript_text(i)}) + "\n")
    out = tmp / f"plan-{requests}"
    argv = ["plan", str(config_path), str(dataset), "--runs", str(RUNS), "--write", str(out)]
    argv += ["--var", f"product={VARIABLES['product']}"]
    proc = subprocess.run(
        [sys.executable, "-c", RSS_CHILD, *argv], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"plan failed ({proc.returncode}): {proc.stderr}")
    for line in proc.stderr.splitlines():
        if line.startswith("VmHWM_KB"):
            return int(line.split()[1])
    raise SystemExit("the child did not report VmHWM")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of K runs per contender")
    parser.add_argument("--skip-rss", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kyro-bench-") as name:
        tmp = Path(name)
        config_path = tmp / "judges.yml"
        config_path.write_text(CONFIG, encoding="utf-8")
        config = kyro.load_config(config_path)
        texts = [transcript_text(i) for i in range(args.requests // (JUDGES * RUNS))]
        lines = len(texts) * JUDGES * RUNS
        contenders = {
            "kyro": run_kyro,
            "bare msgspec": run_bare,
            "json.dumps": run_json,
            "kyro unwritten": run_kyro_unwritten,
        }
        best: dict[str, tuple[float, int]] = {}
        for _ in range(args.repeat):
            for label, fn in contenders.items():
                seconds, size = measure(label.replace(" ", "_"), fn, config, texts, tmp)
                if label not in best or seconds < best[label][0]:
                    best[label] = (seconds, size)
        print(f"builder: {lines:,} requests, {best['kyro'][1] / lines:,.0f} bytes per line")
        print("  (kyro: everything it does, files durable; baselines: render, encode, write)")
        for label, (seconds, size) in best.items():
            print(
                f"  {label:<14} {lines / seconds:>11,.0f} lines/s  "
                f"{size / seconds / 1e6:>8.1f} MB/s  ({seconds:.3f} s)"
            )
        kyro_s = best["kyro"][0]
        print(f"  kyro / bare msgspec: {best['bare msgspec'][0] / kyro_s:.2f}x  (target >= 0.8x)")
        print(f"  kyro / json.dumps:   {best['json.dumps'][0] / kyro_s:.2f}x  (target >= 3x)")
        unwritten_s = best["kyro unwritten"][0]
        print(
            "  for information, kyro unwritten (no file, index, sha256 or fsync) / bare msgspec: "
            f"{best['bare msgspec'][0] / unwritten_s:.2f}x, / json.dumps: "
            f"{best['json.dumps'][0] / unwritten_s:.2f}x"
        )
        if args.skip_rss:
            return
        small = peak_rss_kb(config_path, 20_000, tmp)
        large = peak_rss_kb(config_path, 200_000, tmp)
        print("plan --write peak RSS (VmHWM):")
        print(f"  20,000 requests:  {small / 1024:7.1f} MiB")
        print(f"  200,000 requests: {large / 1024:7.1f} MiB")
        print(f"  ratio 200k / 20k: {large / small:.2f}  (target <= 1.3)")


if __name__ == "__main__":
    main()
