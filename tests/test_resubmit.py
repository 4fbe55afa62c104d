"""Resubmission files: only the retryable requests of a shard, copied byte for byte."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from kyro import BatchValidationError
from kyro._build.resubmit_files import filter_shard
from kyro._build.shards import Shard


def _shard(tmp_path: Path, ids: list[str]) -> Shard:
    path = tmp_path / "shard-0003-gpt.jsonl"
    body = b"".join(
        b'{"custom_id": "%s", "method": "POST", "body": {"x": "a\\nb"}}\n' % cid.encode()
        for cid in ids
    )
    path.write_bytes(body)
    return Shard(
        index=3,
        name=path.name,
        model="gpt",
        lines=len(ids),
        bytes=len(body),
        first_custom_id=ids[0],
        last_custom_id=ids[-1],
        path=str(path),
    )


def test_matching_lines_are_copied_exactly(tmp_path: Path) -> None:
    """The copy holds the selected lines unchanged, with its own counts and sha256."""
    shard = _shard(tmp_path, ["t0-j0-r0", "t1-j0-r0", "t2-j0-r0", "t3-j0-r0"])
    out = tmp_path / "retry.jsonl"
    again = filter_shard(shard, {"t1-j0-r0", "t3-j0-r0", "t9-j0-r0"}, out)
    assert again is not None
    original = Path(shard.path or "").read_bytes().splitlines(keepends=True)
    assert out.read_bytes() == original[1] + original[3]
    assert (again.index, again.model, again.lines) == (3, "gpt", 2)
    assert again.bytes == out.stat().st_size
    assert again.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    assert (again.first_custom_id, again.last_custom_id) == ("t1-j0-r0", "t3-j0-r0")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_no_match_writes_nothing(tmp_path: Path) -> None:
    """When no request of the shard needs resending, no file is made and None is returned."""
    shard = _shard(tmp_path, ["t0-j0-r0"])
    out = tmp_path / "retry.jsonl"
    assert filter_shard(shard, {"t5-j0-r0"}, out) is None
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard-0003-gpt.jsonl"]


def test_a_missing_or_damaged_shard_is_a_clear_error(tmp_path: Path) -> None:
    """A deleted shard or a line that is not a request raises naming the file."""
    shard = _shard(tmp_path, ["t0-j0-r0"])
    Path(shard.path or "").write_bytes(b'{"custom_id": "t0-j0-r0"}\nnot json\n')
    with pytest.raises(BatchValidationError, match=r"shard-0003-gpt.jsonl:2: not a batch"):
        filter_shard(shard, {"t0-j0-r0"}, tmp_path / "retry.jsonl")
    assert not (tmp_path / "retry.jsonl").exists()
    Path(shard.path or "").unlink()
    with pytest.raises(BatchValidationError, match="shard file is gone"):
        filter_shard(shard, {"t0-j0-r0"}, tmp_path / "retry.jsonl")
