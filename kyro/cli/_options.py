"""Options shared by the job commands, and building a provider and a BatchJudge from them."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from kyro._exceptions import BatchValidationError
from kyro._job.batch_judge import BatchJudge
from kyro._provider import BatchProvider
from kyro._redact import redact
from kyro._registry import available_providers, get_provider
from kyro._verdicts.vote import VoteSettings
from kyro.cli._argtypes import check_base_url, interval_seconds, vote_count
from kyro.cli._plan import parse_variables
from kyro.cli._providers import build as build_provider
from kyro.cli._providers import mark as mark_provider_command

__all__ = [
    "RedactingFilter",
    "add_job_options",
    "configure_logging",
    "make_judge",
    "make_provider",
    "parse_variables",
    "state_dir_of",
    "vote_settings",
]


def add_job_options(parser: argparse.ArgumentParser, *, default_provider: str = "openai") -> None:
    """``--provider``, ``--base-url``, ``--state-dir``, ``-v`` and ``--quiet``."""
    parser.add_argument(
        "--provider",
        default=default_provider,
        help=f"provider name (default {default_provider}; installed: "
        f"{', '.join(sorted(available_providers()))})",
    )
    parser.add_argument(
        "--base-url",
        help="API base URL, e.g. http://127.0.0.1:8000/v1 (default: the provider's own "
        "setting, OPENAI_BASE_URL or ANTHROPIC_BASE_URL)",
    )
    parser.add_argument(
        "--state-dir", help="where the job's state lives (default: .kyro/ beside the config)"
    )
    parser.add_argument(
        "--lock-timeout",
        type=interval_seconds,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for another kyro process working on the same job before "
        "exiting 75, busy (default 60)",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print only the essentials, no progress"
    )
    mark_provider_command(parser)


def add_vote_options(parser: argparse.ArgumentParser) -> None:
    """``--min-valid-votes``, ``--tie`` and ``--max-resubmits`` (recorded with the job)."""
    parser.add_argument(
        "--min-valid-votes",
        type=vote_count,
        default=1,
        help="valid runs a judge needs (default 1; at most --runs)",
    )
    parser.add_argument(
        "--tie",
        choices=["error", "success", "errored"],
        default="error",
        help="how a tied vote is settled (default error: the pessimistic verdict wins)",
    )
    parser.add_argument(
        "--max-resubmits",
        type=int,
        default=2,
        help="times failed, expired or missing requests are sent again (default 2)",
    )


class RedactingFilter(logging.Filter):
    """A handler filter that masks credentials in each record's final message.

    Example::

        handler.addFilter(RedactingFilter())
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        return True


def configure_logging(verbose: int) -> None:
    """Log kyro's warnings always, info with -v, debug (kyro and httpx) with -vv."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="kyro: %(levelname)s: %(message)s", stream=sys.stderr)
    # Every record kyro's handlers emit — httpx's and httpcore's too — is masked for
    # credentials (a key in --base-url, raw Authorization headers at -vv).
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    logging.getLogger("httpx").setLevel(logging.WARNING if verbose < 2 else logging.NOTSET)


def state_dir_of(args: argparse.Namespace) -> Path:
    """The state folder the command uses."""
    if getattr(args, "state_dir", None):
        return Path(args.state_dir)
    return Path(args.config).parent / ".kyro"


def make_provider(args: argparse.Namespace, *, state_dir: Path | None = None) -> BatchProvider:
    """The provider the command's options name (its base URL checked first), built by its
    class through the registry (:mod:`kyro.cli._providers`); its own files, if any, under
    ``state_dir`` (default: the job's state folder)."""
    if args.base_url:
        check_base_url(args.base_url, "--base-url")
    elif os.environ.get("OPENAI_BASE_URL"):
        check_base_url(os.environ["OPENAI_BASE_URL"], "OPENAI_BASE_URL")
    folder = state_dir_of(args) if state_dir is None else state_dir
    return build_provider(args, state_dir=folder)


def add_fallback_options(parser: argparse.ArgumentParser) -> None:
    """``--fallback-base-url`` and ``--fallback-concurrency``: finish stragglers locally."""
    parser.add_argument(
        "--fallback-base-url",
        metavar="URL",
        help="finish failed, expired or missing requests at once through this "
        "OpenAI-compatible endpoint instead of another batch (key: KYRO_FALLBACK_API_KEY)",
    )
    parser.add_argument(
        "--fallback-concurrency",
        type=int,
        default=16,
        help="requests in flight at once through the fallback (default 16)",
    )


def make_fallback(args: argparse.Namespace) -> BatchProvider | None:
    """The local fallback provider the options ask for, or None.

    It keeps its batches under the job's state folder, so a later ``check`` given the same
    ``--fallback-base-url`` finds them. Its key comes from ``KYRO_FALLBACK_API_KEY`` only, so
    an OpenAI key is never sent to another endpoint by accident.
    """
    url = getattr(args, "fallback_base_url", None)
    if not url:
        return None
    check_base_url(url, "--fallback-base-url")
    if args.fallback_concurrency < 1:
        raise BatchValidationError(
            f"--fallback-concurrency must be at least 1, got {args.fallback_concurrency}"
        )
    return get_provider(
        "local",
        base_url=url,
        api_key=os.environ.get("KYRO_FALLBACK_API_KEY", ""),  # "" : never OPENAI_API_KEY
        state_dir=state_dir_of(args) / "local",
        concurrency=args.fallback_concurrency,
    )


def vote_settings(args: argparse.Namespace) -> VoteSettings:
    """The vote settings ``--min-valid-votes`` and ``--tie`` ask for."""
    try:
        return VoteSettings(
            min_valid_votes=getattr(args, "min_valid_votes", 1), tie=getattr(args, "tie", "error")
        )
    except ValueError as exc:
        raise BatchValidationError(f"{exc}; see --help for the allowed values") from exc


def make_judge(args: argparse.Namespace, provider: BatchProvider | None = None) -> BatchJudge:
    """A BatchJudge for ``args.config`` with the command's provider and settings."""
    settings = vote_settings(args)
    max_resubmits = getattr(args, "max_resubmits", 2)
    if max_resubmits < 0:
        raise BatchValidationError(f"--max-resubmits must be 0 or more, got {max_resubmits}")
    cache: bool | str = True
    if getattr(args, "no_cache", False):
        cache = False
    elif getattr(args, "cache_dir", None):
        cache = args.cache_dir
    return BatchJudge(
        provider if provider is not None else make_provider(args),
        args.config,
        state_dir=args.state_dir,
        model=getattr(args, "model", None),
        vote=settings,
        max_resubmits=max_resubmits,
        fallback=make_fallback(args),
        lock_timeout=getattr(args, "lock_timeout", 60.0),
        cache=cache,
        prices=getattr(args, "prices", None),
        samples=getattr(args, "samples", True),
    )
