"""``kyro report RESULTS.jsonl -o report.html``: the results as one self-contained web page.

The page (inline CSS, JS and SVG; it fetches nothing) shows the job summary, pass rate per
judge and pipeline step, how often runs disagreed, score histograms, token and cost totals,
and a table of transcripts that filters by judge and status. The results file is read once,
in bounded memory: a million-transcript result gives a report whose table is a sample.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kyro._cost.prices import load_prices
from kyro._exceptions import BatchValidationError
from kyro._report.html import write_report
from kyro.cli._commands import add_command
from kyro.cli._exit import ExitCode

__all__ = ["add_report_options", "register", "run", "write_html_report"]

_EPILOG = """\
examples:
  python3 -m kyro report results.jsonl -o report.html --config judges.yml
  python3 -m kyro report results.jsonl --model gpt-4o-mini --prices prices.yml --rows 5000

Cost is priced per the model each verdict records (else the judge's model in --config,
else --model) at batch prices (--live for
live prices), from kyro's price table overlaid with --prices FILE.

exit status: 0 written, 2 bad input (the results file is missing or not kyro's)."""


def register(subparsers: Any) -> None:
    """Add the ``report`` sub-command to the CLI's sub-parsers."""
    parser = add_command(
        subparsers,
        "report",
        description="Render a results file (one evaluation a line, as `check` writes it) into "
        "one HTML file that works offline: summary, per-judge pass rates, vote agreement, "
        "score histograms, cost, and a filterable table of transcripts.",
        epilog=_EPILOG,
    )
    parser.add_argument("results", metavar="RESULTS", help="the results JSONL file")
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to write the page (default: RESULTS with .html)",
    )
    add_report_options(parser)
    parser.add_argument(
        "--model",
        dest="report_model",
        metavar="MODEL",
        help="price results that record no model as MODEL",
    )
    parser.add_argument("--provider", default="openai", help="whose prices apply (default: openai)")
    parser.add_argument(
        "--config", metavar="FILE", help="the judges config: prices each judge at its model"
    )
    parser.add_argument("--title", help="the page title (default: from the file name)")
    parser.set_defaults(func=run)


def add_report_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``report`` and ``check --report``: rows, prices, live."""
    parser.add_argument(
        "--rows",
        type=int,
        default=1_000,
        metavar="N",
        help="at most N transcripts in the table, sampled (default: 1000)",
    )
    parser.add_argument(
        "--prices", metavar="FILE", help="a prices file (JSON or YAML) over kyro's price table"
    )
    parser.add_argument(
        "--live", action="store_true", help="price at live rates instead of batch rates"
    )


def write_html_report(
    results: Path,
    output: Path,
    args: argparse.Namespace,
    *,
    provider: str = "openai",
    judge_models: Mapping[str, str] | None = None,
) -> str:
    """Write the report and return the line the CLI prints about it."""
    if args.rows < 0:
        raise BatchValidationError(f"--rows must be ≥ 0, got {args.rows}")
    config_path = getattr(args, "config", None)
    if judge_models is None and config_path:
        from kyro._config.loader import load_config

        config = load_config(config_path)
        default = config.model or getattr(args, "report_model", None)
        judge_models = {
            judge.name: model
            for judge in config.judges
            if (model := judge.model or default) is not None
        }
    from kyro._registry import provider_pricing

    provider, batch = provider_pricing(provider)
    data = write_report(
        results,
        output,
        judge_models=judge_models,
        prices=load_prices(args.prices),
        provider=provider,
        model=getattr(args, "report_model", None),
        batch=batch and not args.live,
        max_rows=args.rows,
        title=getattr(args, "title", None),
    )
    return f"report: {output} ({data.transcripts:,} transcripts, {len(data.rows):,} in the table)"


def run(args: argparse.Namespace) -> int:
    """Write the report for ``args.results``."""
    results = Path(args.results)
    output = Path(args.output) if args.output else results.with_suffix(".html")
    if output.resolve() == results.resolve():
        raise BatchValidationError(
            "the report would overwrite the results file; pass -o report.html", path=results
        )
    print(write_html_report(results, output, args, provider=args.provider))
    return ExitCode.OK
