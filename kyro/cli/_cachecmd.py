"""``kyro cache stats|clear``: what the reply cache holds, and emptying it.

The cache folder is ``--cache-dir DIR``, or ``.kyro/cache`` beside ``--config FILE`` (the
folder ``plan``, ``submit`` and ``run`` use by default).
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path
from typing import Any

from kyro._exceptions import BatchValidationError
from kyro._verdicts.reply_cache import CACHE_FILE, DEFAULT_MAX_BYTES, ReplyCache
from kyro.cli._commands import add_command
from kyro.cli._exit import ExitCode

__all__ = ["register"]

_EPILOG = """\
examples:
  python3 -m kyro cache stats --config judges.yml
  python3 -m kyro cache clear --cache-dir ~/.cache/kyro-replies

exit status: 0 done, 2 no such cache folder or bad arguments."""


def register(subparsers: Any) -> None:
    """Add the ``cache`` sub-command (``stats`` and ``clear``)."""
    parser = add_command(
        subparsers,
        "cache",
        description="The reply cache keeps every verdict a provider returned, keyed by "
        "provider, model, params, messages and run, so a re-run pays only for what changed.",
        epilog=_EPILOG,
    )
    parser.add_argument("action", choices=["stats", "clear"], help="what to do")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--cache-dir", metavar="DIR", help="the cache folder")
    where.add_argument("--config", metavar="FILE", help="use .kyro/cache beside this judges config")
    parser.set_defaults(func=run)


def _folder(args: argparse.Namespace) -> Path:
    if args.cache_dir:
        return Path(args.cache_dir)
    if args.config:
        return Path(args.config).resolve().parent / ".kyro" / "cache"
    return Path.cwd() / ".kyro" / "cache"


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "—"
    moment = datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def run(args: argparse.Namespace) -> int:
    """Print the stats of, or clear, one cache folder."""
    folder = _folder(args)
    if not (folder / CACHE_FILE).exists():
        raise BatchValidationError(
            f"no reply cache in {folder}; name the folder with --cache-dir DIR (or --config "
            "FILE for the one beside a config)"
        )
    with ReplyCache(folder, max_bytes=DEFAULT_MAX_BYTES) as cache:
        if args.action == "clear":
            removed = cache.clear()
            print(f"cleared {removed:,} replies from {cache.path}")
            return ExitCode.OK
        stats = cache.stats()
    print(f"cache: {stats.path}")
    print(f"  replies: {stats.entries:,} ({stats.bytes:,} bytes of {stats.max_bytes:,} allowed)")
    print(f"  hits: {stats.hits:,}; stored: {stats.stored:,}; evicted: {stats.evicted:,}")
    print(f"  oldest: {_when(stats.oldest)}; newest: {_when(stats.newest)}")
    return ExitCode.OK
