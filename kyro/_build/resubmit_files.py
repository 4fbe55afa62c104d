"""Resubmission files: a copy of a shard holding only the requests worth sending again.

After a batch expires, is cancelled or loses lines to 429/5xx errors, the finished requests
are kept and only the rest go out again, as a new batch within the same job. The ids come from
:meth:`kyro._verdicts.aggregate.Aggregator.retryable`; this module copies the matching input lines,
byte for byte, so the provider sees exactly the requests it saw the first time.

Shard lines are provider-encoded, but every batch format kyro knows puts the request id in a
top-level ``custom_id`` field of a JSON object per line; that is all this module reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Container
from pathlib import Path

import msgspec

from kyro._build.shards import Shard
from kyro._exceptions import BatchValidationError
from kyro._files import atomic_writer

__all__ = ["filter_shard"]


class _Line(msgspec.Struct):
    custom_id: str


_decode_line = msgspec.json.Decoder(_Line).decode


def filter_shard(shard: Shard, custom_ids: Container[str], out_path: Path) -> Shard | None:
    """Copy the lines of ``shard`` whose custom_id is in ``custom_ids`` to ``out_path``.

    Returns the new file's :class:`Shard` (same index and model; its own counts and sha256),
    or None — and no file — when no line matched. The copy is written atomically, mode 0600.

    Example::

        retry = set(aggregator.retryable())
        again = filter_shard(shard, retry, store.shards_dir / "shard-0000.attempt-2.jsonl")
        if again is not None:
            batch_id = await provider.submit(Path(again.path), metadata=...)
    """
    if shard.path is None:
        raise ValueError(f"shard {shard.name} was only counted, never written")
    source = Path(shard.path)
    digest = hashlib.sha256()
    lines = size = 0
    first_id = last_id = ""
    try:
        infile = source.open("rb")
    except FileNotFoundError as exc:
        raise BatchValidationError(
            "the shard file is gone (the job's sidecar folder was changed by hand), so its "
            "requests cannot be sent again",
            path=source,
        ) from exc
    with infile, atomic_writer(out_path) as outfile:
        for number, line in enumerate(infile, 1):
            if not line.strip():
                continue
            try:
                custom_id = _decode_line(line).custom_id
            except msgspec.DecodeError as exc:
                raise BatchValidationError(
                    f"not a batch request line: {exc}", path=source, line=number
                ) from exc
            if custom_id not in custom_ids:
                continue
            if not line.endswith(b"\n"):
                line += b"\n"
            outfile.write(line)
            digest.update(line)
            lines += 1
            size += len(line)
            first_id = first_id or custom_id
            last_id = custom_id
    if lines == 0:
        out_path.unlink(missing_ok=True)
        return None
    return Shard(
        index=shard.index,
        name=out_path.name,
        model=shard.model,
        lines=lines,
        bytes=size,
        first_custom_id=first_id,
        last_custom_id=last_id,
        sha256=digest.hexdigest(),
        path=str(out_path),
    )
