"""Builder, whole process: `kyro plan --write` against scripts doing the same work; its memory.

Every contender is a separate Python process reading the same ``.jsonl`` dataset (one
``{"conversation": …}`` object a line, ~1 KB of text each) and writing the same batch lines
(~1.7 KB each: kyro's verdict system message, the judge's system prompt, the user prompt with
the transcript and a variable filled in, the Structured Outputs format, the judge's params):

1. ``python3 -m kyro plan CONFIG DATA.jsonl --runs 2 --var … --write DIR``: everything kyro
   does — import, config, pre-flight, shard limits, the transcript index, each shard's sha256
   and the fsyncs that make the files durable.
2. A bare msgspec script: decode each line, render the prompts with ``str.replace``, encode
   the lines with msgspec Structs and ``encode_into``, write one file. Target: kyro ≥ 1.0×
   (time of the script ÷ time of kyro; the aim beyond is 1.3×).
3. A per-line stdlib ``json`` script doing the same. Target: kyro ≥ 3×.

Every contender runs with the same environment, this one minus ``PYTHONDONTWRITEBYTECODE``
(``_targets.child_env``), and one untimed ``kyro plan`` run comes first, so the timed rounds
use cached bytecode as an installed package would rather than compiling kyro at each start.
Best of ``--repeat`` rounds, interleaved (``--quick``: best of 3, the ``json`` script, some 3×
slower than kyro, timed once). Then peak RSS (VmHWM) of ``kyro plan --write`` at
20,000 and 200,000 requests. Target: RSS(200k) ≤ 1.3 × RSS(20k).

Usage: ``python3 benchmarks/bench_builder.py [--requests N] [--repeat K] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _targets import Targets, child_env

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


TEMPLATES = (
    (MODELS[0], SYSTEM, INSTRUCTIONS, {}),
    (
        MODELS[1],
        SYSTEM,
        INSTRUCTIONS.replace("correctly and completely", "politely"),
        {"temperature": 0, "max_tokens": 400},
    ),
)


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


def write_dataset(path: Path, requests: int) -> None:
    """``requests`` ÷ (judges × runs) transcripts as a .jsonl dataset."""
    with open(path, "w", encoding="utf-8") as file:
        for i in range(requests // (JUDGES * RUNS)):
            file.write(json.dumps({"conversation": transcript_text(i)}) + "\n")


def write_spec(path: Path) -> None:
    """What the baseline scripts need: kyro's verdict message and format, the judges' prompts."""
    import kyro

    schema = kyro.verdict_schema()
    spec = {
        "contract": kyro.verdict_message().content,
        "format": {
            "type": "json_schema",
            "json_schema": {"name": schema.name, "strict": schema.strict, "schema": schema.schema},
        },
        "judges": [
            [model, system, user.replace("{{variables.product}}", VARIABLES["product"]), params]
            for model, system, user, params in TEMPLATES
        ],
        "runs": RUNS,
        "url": URL,
    }
    path.write_text(json.dumps(spec), encoding="utf-8")


BARE = """
import sys
import msgspec

data, spec_path, out = sys.argv[1:]
spec = msgspec.json.decode(open(spec_path, "rb").read())


class Msg(msgspec.Struct):
    role: str
    content: str


class Body(msgspec.Struct, omit_defaults=True):
    model: str
    messages: tuple
    response_format: dict
    temperature: float | None = None
    max_tokens: int | None = None


class Line(msgspec.Struct):
    custom_id: str
    method: str
    url: str
    body: Body


decode = msgspec.json.Decoder().decode
encoder = msgspec.json.Encoder()
contract = Msg("system", spec["contract"])
fmt, url, runs = spec["format"], spec["url"], spec["runs"]
judges = [(model, Msg("system", system), user, params)
          for model, system, user, params in spec["judges"]]
buffer = bytearray()
with open(data, "rb") as src, open(out, "wb") as dst:
    for i, raw in enumerate(src):
        text = encoder.encode(decode(raw)).decode()
        for j, (model, system, user, params) in enumerate(judges):
            messages = (contract, system, Msg("user", user.replace("{{input}}", text)))
            body = Body(model, messages, fmt, **params)
            for r in range(runs):
                encoder.encode_into(Line(f"t{i}-j{j}-r{r}", "POST", url, body), buffer, -1)
                buffer.extend(b"\\n")
            if len(buffer) >= 1 << 20:
                dst.write(buffer)
                buffer.clear()
    dst.write(buffer)
"""

JSON = """
import json
import sys

data, spec_path, out = sys.argv[1:]
spec = json.load(open(spec_path, encoding="utf-8"))
contract, fmt, url, runs = spec["contract"], spec["format"], spec["url"], spec["runs"]
with open(data, encoding="utf-8") as src, open(out, "w", encoding="utf-8") as dst:
    for i, raw in enumerate(src):
        text = json.dumps(json.loads(raw), ensure_ascii=False, separators=(",", ":"))
        for j, (model, system, user, params) in enumerate(spec["judges"]):
            content = user.replace("{{input}}", text)
            for r in range(runs):
                line = {
                    "custom_id": f"t{i}-j{j}-r{r}",
                    "method": "POST",
                    "url": url,
                    "body": {
                        "model": model,
                        "messages": [
                            {"role": "system", "content": contract},
                            {"role": "system", "content": system},
                            {"role": "user", "content": content},
                        ],
                        "response_format": fmt,
                        **params,
                    },
                }
                dst.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\\n")
"""


def _plan_argv(config: Path, data: Path, out: Path) -> list[str]:
    return [
        *("-m", "kyro", "plan", str(config), str(data), "--runs", str(RUNS), "--no-samples"),
        *("--var", f"product={VARIABLES['product']}", "--write", str(out)),
    ]


def timed(argv: list[str], out: Path) -> tuple[float, int]:
    """Seconds of one process and the bytes it wrote under ``out`` (then deleted)."""
    out.mkdir()
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, check=False, env=child_env()
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    size = sum(
        f.stat().st_size
        for f in out.iterdir()
        if f.name.endswith(".jsonl") and not f.name.startswith("transcripts")
    )
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


def peak_rss_kb(config: Path, requests: int, tmp: Path) -> int:
    """VmHWM of a fresh ``kyro plan --write`` process planning ``requests`` requests."""
    data = tmp / f"data-{requests}.jsonl"
    write_dataset(data, requests)
    argv = _plan_argv(config, data, tmp / f"plan-{requests}")[2:]
    proc = subprocess.run(
        [sys.executable, "-c", RSS_CHILD, *argv],
        capture_output=True,
        text=True,
        check=False,
        env=child_env(),
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
    parser.add_argument("--repeat", type=int, default=3, help="best of K rounds per contender")
    parser.add_argument(
        "--quick", action="store_true", help="best of 3 rounds, the json script timed once"
    )
    parser.add_argument("--skip-rss", action="store_true")
    args = parser.parse_args()
    repeat = 3 if args.quick else args.repeat
    rss_sizes = (20_000, 200_000)  # also with --quick: the ratio depends on the sizes
    with tempfile.TemporaryDirectory(prefix="kyro-bench-") as name:
        tmp = Path(name)
        config = tmp / "judges.yml"
        config.write_text(CONFIG, encoding="utf-8")
        data, spec = tmp / "data.jsonl", tmp / "spec.json"
        write_dataset(data, args.requests)
        write_spec(spec)
        contenders = {
            "kyro": lambda out: _plan_argv(config, data, out),
            "bare msgspec": lambda out: ["-c", BARE, str(data), str(spec), str(out / "b.jsonl")],
            "json": lambda out: ["-c", JSON, str(data), str(spec), str(out / "j.jsonl")],
        }
        timed(contenders["kyro"](tmp / "warm-up"), tmp / "warm-up")  # caches the bytecode
        best: dict[str, tuple[float, int]] = {}
        for round_ in range(repeat):
            for label, argv in contenders.items():
                if label == "json" and args.quick and round_:
                    continue  # 3x slower than kyro: one round is enough to compare
                seconds, size = timed(argv(tmp / f"out-{round_}"), tmp / f"out-{round_}")
                if label not in best or seconds < best[label][0]:
                    best[label] = (seconds, size)
        lines = args.requests // (JUDGES * RUNS) * JUDGES * RUNS
        targets = Targets(f"builder, whole process: {lines:,} requests")
        for label, (seconds, size) in best.items():
            targets.note(
                f"{label:<13} {seconds:.3f} s  {lines / seconds:>9,.0f} lines/s  "
                f"{size / lines:,.0f} bytes/line"
            )
        kyro_s = best["kyro"][0]
        targets.ratio(
            "plan --write vs bare msgspec script",
            kyro_s,
            best["bare msgspec"][0],
            at_least=1.0,
            unit="s",
            faster=True,
        )
        targets.ratio(
            "plan --write vs per-line json script",
            kyro_s,
            best["json"][0],
            at_least=3.0,
            unit="s",
            faster=True,
        )
        if not args.skip_rss:
            small, large = (peak_rss_kb(config, n, tmp) / 1024 for n in rss_sizes)
            targets.ratio(
                f"plan --write peak RSS {rss_sizes[1]:,} vs {rss_sizes[0]:,}",
                large,
                small,
                at_most=1.3,
                unit="MiB",
            )
        targets.finish()


if __name__ == "__main__":
    main()
