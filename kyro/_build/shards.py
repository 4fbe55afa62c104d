"""The shard builder: requests → provider batch files, one open shard per model.

Each request is encoded by the provider into a line of its own and queued on its shard; every
1 MiB the queued lines are joined into one chunk, written to the shard file and fed to its
sha256 (never line by line; see :mod:`kyro._build.shard_files`). Why not one growing buffer
per shard, cleared after each write: clearing a bytearray frees its memory, and growing it
back to 1 MiB again reallocates (and copies) it dozens of times, which cost more than the
encoding itself; a join copies each byte once. A
shard is closed — flushed, fsynced, its counts and digest recorded — *before* it would pass
``limits.max_requests`` lines or ``limits.max_bytes`` bytes (exact, newlines included); the
request that did not fit opens the next shard for its model.

Token estimate: characters of message content ÷ 4 (OpenAI's rule of thumb for English text;
it underestimates code and most non-Latin scripts), rounded up per request. It is a planning
aid, not a bill.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType

import msgspec

from kyro._plan.preflight import Preflight, PreflightProblem, ProblemKind, report
from kyro._build.shard_files import ShardFile
from kyro._types import BatchLimits, JudgeRequest, Message

__all__ = ["BuildSummary", "EncodeFn", "Shard", "ShardBuilder", "shard_filename"]

EncodeFn = Callable[[JudgeRequest, bytearray], None]
_FLUSH_AT = 1 << 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def shard_filename(prefix: str, index: int, model: str) -> str:
    """The file name of shard ``index`` for ``model`` (model sanitised to ``[A-Za-z0-9._-]``).

    Example::

        shard_filename("shard", 3, "ft:gpt-4o-mini:acme::x1")
        # 'shard-0003-ft_gpt-4o-mini_acme_x1.jsonl'
    """
    safe = _UNSAFE.sub("_", model).strip("._")[:80] or "model"
    return f"{prefix}-{index:04d}-{safe}.jsonl"


class Shard(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One batch input file: which model, how many lines and bytes, and its sha256.

    ``path`` is None (and ``sha256`` empty) when the plan was only counted, not written.

    Example::

        Shard(index=0, name="shard-0000-gpt-4o-mini.jsonl", model="gpt-4o-mini", lines=2,
              bytes=1234, sha256="…", first_custom_id="t0-j0-r0", last_custom_id="t0-j0-r1")
    """

    index: int
    name: str
    model: str
    lines: int
    bytes: int
    first_custom_id: str
    last_custom_id: str
    sha256: str = ""
    path: str | None = None


class BuildSummary(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a build produced: shards (in the order they were opened) and totals.

    ``estimated_input_tokens`` is characters of message content ÷ 4, rounded up per request.
    ``transcripts`` and ``requests_by_judge`` are filled by :func:`kyro._build.plan_build.build_shards`.

    Example::

        summary = builder.close()
        print(summary.requests, len(summary.shards), summary.bytes)
    """

    shards: tuple[Shard, ...]
    requests: int
    bytes: int
    estimated_input_tokens: int
    requests_by_model: dict[str, int] = {}
    requests_by_judge: dict[str, int] = {}
    transcripts: int = 0


class _OpenShard:
    __slots__ = (
        "bytes",
        "file",
        "first",
        "ids",
        "index",
        "last",
        "lines",
        "model",
        "name",
        "pending",
        "queued",
    )

    def __init__(self, index: int, name: str, model: str, file: ShardFile | None) -> None:
        self.index = index
        self.name = name
        self.model = model
        self.file = file
        self.queued: list[bytes | bytearray] = []  # lines (or parts of lines) not written yet
        self.pending = 0  # their bytes
        self.lines = 0
        self.bytes = 0
        self.first = ""
        self.last = ""
        self.ids: set[str] = set()

    def record(self) -> Shard:
        file = self.file
        return Shard(
            index=self.index,
            name=self.name,
            model=self.model,
            lines=self.lines,
            bytes=self.bytes,
            first_custom_id=self.first,
            last_custom_id=self.last,
            sha256=file.hasher.hexdigest() if file is not None else "",
            path=str(file.path) if file is not None else None,
        )


class ShardBuilder:
    """Encodes requests into shard files under ``directory``, one open shard per model.

    ``encode`` is the provider's ``encode(request, buffer)`` (it appends one line with its
    newline); ``limits`` its :class:`~kyro.provider.BatchLimits`. With ``directory=None`` nothing is
    written — lines are encoded, counted and dropped, so a plan's shards and bytes are exact
    without touching the disk (and without a sha256).

    Problems — a duplicate custom_id in a file, one line larger than ``limits.max_bytes`` —
    raise :class:`BatchValidationError` before anything of that request is written, or with
    a ``preflight`` collector are recorded there and the request is skipped. Leaving a
    ``with`` block by an exception deletes every shard file this builder created.

    Example::

        with ShardBuilder(directory, provider.encode, provider.limits) as builder:
            for request in plan_requests(config, transcripts):
                builder.add(request)
            summary = builder.close()
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None,
        encode: EncodeFn,
        limits: BatchLimits,
        *,
        prefix: str = "shard",
        preflight: Preflight | None = None,
    ) -> None:
        if limits.max_requests < 1 or limits.max_bytes < 1:
            raise ValueError(f"limits must be positive, got {limits!r}")
        self.directory = Path(directory) if directory is not None else None
        self.limits = limits
        self.prefix = prefix
        self.preflight = preflight
        self._encode = encode
        self._max_requests = limits.max_requests
        self._max_bytes = limits.max_bytes
        self._open: dict[str, _OpenShard] = {}
        self._shards: list[_OpenShard] = []
        self._tokens = 0
        self._last_messages: tuple[Message, ...] | None = None
        self._last_tokens = 0
        self._finished = False

    def add(self, request: JudgeRequest) -> bool:
        """Encode and add one request; False if it was skipped (a problem was recorded)."""
        shard = self._open.get(request.model)
        if shard is None:
            return self._add_new(request)
        custom_id = request.custom_id
        if custom_id in shard.ids:
            message = f"custom_id already used in {shard.name}; ids must be unique per file"
            self._problem("duplicate_custom_id", message, custom_id)
            return False
        if shard.model is not request.model and shard.model != request.model:
            message = f"model {request.model!r} in the file for model {shard.model!r}"
            self._problem("mixed_models", message, custom_id)
            return False
        line = bytearray()
        self._encode(request, line)
        size = len(line)
        if shard.lines >= self._max_requests or shard.bytes + size > self._max_bytes:
            if size > self._max_bytes:
                self._too_large(custom_id, size)
                return False
            self._close_shard(shard)
            shard = self._start(request.model)
        shard.queued.append(line)
        shard.pending += size
        if not shard.lines:
            shard.first = custom_id
        shard.ids.add(custom_id)
        shard.last = custom_id
        shard.lines += 1
        shard.bytes += size
        # The runs of one transcript × judge share one messages tuple: count it once.
        messages = request.messages
        if messages is not self._last_messages:
            self._count_tokens(messages)
        self._tokens += self._last_tokens
        if shard.pending >= _FLUSH_AT:
            self._flush(shard)
        return True

    def add_lines(
        self,
        model: str,
        start: bytes,
        head: str,
        runs: Sequence[tuple[str, bytes]],
        rest: bytes,
        tokens: int,
        run_bytes: int,
    ) -> None:
        """Add lines already encoded in parts: ``start + mid + rest`` for each (suffix, mid)
        of ``runs``, the request whose custom_id is ``head + suffix``, ``tokens`` estimated;
        ``run_bytes`` is the total length of the ``mid`` parts.

        The limits and the too-large check are :meth:`add`'s; the custom_ids are not checked
        for duplicates, so they must be unique by construction (a planner's are).
        """
        shard = self._open.get(model)
        fixed = len(start) + len(rest)
        count = len(runs)
        total = fixed * count + run_bytes
        if (
            shard is not None
            and count
            and shard.lines + count <= self._max_requests
            and shard.bytes + total <= self._max_bytes
        ):
            # All the runs fit the open shard: what the loop below does, in one step.
            queued = shard.queued
            for _, mid in runs:
                queued += (start, mid, rest)
            shard.last = head + runs[-1][0]
            shard.lines += count
            shard.bytes += total
            self._tokens += tokens * count
            shard.pending += total
            if shard.pending >= _FLUSH_AT:
                self._flush(shard)
            return
        for suffix, mid in runs:
            size = fixed + len(mid)
            if shard is None or shard.lines >= self._max_requests or shard.bytes + size > (
                self._max_bytes
            ):
                if size > self._max_bytes:
                    self._too_large(head + suffix, size)
                    continue
                if shard is not None:
                    self._close_shard(shard)
                shard = self._start(model)
                shard.first = head + suffix
            queued = shard.queued
            queued.append(start)
            queued.append(mid)
            queued.append(rest)
            shard.last = head + suffix
            shard.lines += 1
            shard.bytes += size
            self._tokens += tokens
            shard.pending += size
            if shard.pending >= _FLUSH_AT:
                self._flush(shard)

    def _add_new(self, request: JudgeRequest) -> bool:
        """The first request of a model: encode aside, then open its shard."""
        line = bytearray()
        self._encode(request, line)
        size = len(line)
        if size > self._max_bytes:
            self._too_large(request.custom_id, size)
            return False
        shard = self._start(request.model)
        shard.queued.append(line)
        shard.pending = size
        shard.first = shard.last = request.custom_id
        shard.ids.add(request.custom_id)
        shard.lines = 1
        shard.bytes = size
        if request.messages is not self._last_messages:
            self._count_tokens(request.messages)
        self._tokens += self._last_tokens
        return True

    def add_all(self, requests: Iterable[JudgeRequest]) -> int:
        """Add every request; return how many were added (not skipped)."""
        add = self.add
        added = 0
        for request in requests:
            if add(request):
                added += 1
        return added

    def _count_tokens(self, messages: tuple[Message, ...]) -> None:
        chars = 0
        for message in messages:
            chars += len(message.content)
        self._last_messages = messages
        self._last_tokens = (chars + 3) // 4

    def _problem(self, kind: ProblemKind, message: str, custom_id: str) -> None:
        report(self.preflight, PreflightProblem(kind=kind, message=message, custom_id=custom_id))

    def _too_large(self, custom_id: str, size: int) -> None:
        message = (
            f"its line is {size:,} bytes but a batch file may hold at most "
            f"{self._max_bytes:,}; shorten the transcript or the prompt"
        )
        self._problem("line_too_large", message, custom_id)

    def _start(self, model: str) -> _OpenShard:
        index = len(self._shards)
        name = shard_filename(self.prefix, index, model)
        file = ShardFile(self.directory / name) if self.directory is not None else None
        shard = _OpenShard(index, name, model, file)
        self._shards.append(shard)
        self._open[model] = shard
        return shard

    def _flush(self, shard: _OpenShard) -> None:
        if shard.file is not None and shard.queued:
            shard.file.write(b"".join(shard.queued))
        shard.queued.clear()
        shard.pending = 0

    def _close_shard(self, shard: _OpenShard) -> None:
        self._flush(shard)
        if shard.file is not None:
            shard.file.finish()
        shard.ids = set()
        self._open.pop(shard.model, None)

    def close(self) -> BuildSummary:
        """Close every open shard (write, fsync) and return the summary."""
        if self._finished:
            raise RuntimeError("this ShardBuilder is already closed")
        self._finished = True
        for shard in list(self._open.values()):
            if self._open.get(shard.model) is shard:
                self._close_shard(shard)
        self._open.clear()
        if self._shards and self.directory is not None:
            _fsync_directory(self.directory)
        shards = tuple(shard.record() for shard in self._shards)
        by_model: dict[str, int] = {}
        for shard_ in shards:
            by_model[shard_.model] = by_model.get(shard_.model, 0) + shard_.lines
        return BuildSummary(
            shards=shards,
            requests=sum(s.lines for s in shards),
            bytes=sum(s.bytes for s in shards),
            estimated_input_tokens=self._tokens,
            requests_by_model=by_model,
        )

    def discard(self) -> None:
        """Stop writing and delete every shard file this builder created (after a failure)."""
        self._finished = True
        self._open.clear()
        for shard in self._shards:
            if shard.file is not None:
                shard.file.abandon()
                shard.file.path.unlink(missing_ok=True)

    def __enter__(self) -> ShardBuilder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.discard()


def _fsync_directory(directory: Path) -> None:
    """Make the new directory entries durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
