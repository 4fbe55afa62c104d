"""Judges the service serves, and their immutable, content-addressed versions.

Every config given to ``--judges`` (a file, or every ``*.yml``/``*.yaml`` of a folder) is one
judge; its id is the config's ``name:``, else the file's stem. Each judge of the config (each
step of a pipeline: ``depends_on`` and ``on_failure`` work as everywhere in kyro) is one
evaluator. A version is the config's bytes plus the prompt files it
reads: its id is derived from that content (the same content always has the same id), it is
recorded in the store the first time it is served, and it is written out whole under the data
folder, so a pinned version still runs after the file on disk has changed. The latest version
is the content the file holds now: the registry looks at the files' size and modification
time on each request and records a new version when they changed.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from kyro import BatchValidationError, JudgesConfig, load_config
from kyro.serve._records import Store, Version

__all__ = ["JudgeRegistry", "ServedJudge", "find_configs"]

_log = logging.getLogger("kyro.serve")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SUFFIXES = (".yml", ".yaml")


def find_configs(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Every config named by ``paths``: files as given, folders' ``*.yml``/``*.yaml`` by name."""
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.suffix.lower() in _SUFFIXES)
            if not inside:
                raise BatchValidationError(
                    "no judges config (*.yml, *.yaml) in this folder", path=path
                )
            found.extend(p for p in inside if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            found.append(path)
        else:
            raise BatchValidationError("no such judges config file or folder", path=path)
    return found


class ServedJudge:
    """One judge: its config file, current content and the version that content is."""

    def __init__(self, judge_id: str, path: Path, config: JudgesConfig, version: Version) -> None:
        self.judge_id = judge_id
        self.path = path
        self.config = config
        self.version = version
        self.signature = _signature(path, version)

    @property
    def evaluators(self) -> tuple[str, ...]:
        """The names of the config's judges (the evaluators of every item)."""
        return self.version.evaluators


class JudgeRegistry:
    """Loads the judges, records their versions and materialises any version on demand.

    Example::

        registry = JudgeRegistry(store, Path("serve-data/versions"))
        registry.load(find_configs(["judges/"]))
        registry.get("relevance").version.version_id
    """

    def __init__(self, store: Store, versions_dir: Path) -> None:
        self.store = store
        self.versions_dir = versions_dir
        self.judges: dict[str, ServedJudge] = {}

    def load(self, paths: Sequence[Path]) -> None:
        """Load every config; refuse duplicates and configs the service cannot keep whole."""
        for path in paths:
            served = self._read(path, None)
            if served.judge_id in self.judges:
                raise BatchValidationError(
                    f"judge id {served.judge_id!r} is also the id of "
                    f"{self.judges[served.judge_id].path}; give one of them another `name:`",
                    path=path,
                )
            self.judges[served.judge_id] = served

    def get(self, judge_id: str) -> ServedJudge | None:
        """The judge, its latest version refreshed from disk, or None when unknown."""
        served = self.judges.get(judge_id)
        if served is None:
            return None
        if _signature(served.path, served.version) != served.signature:
            try:
                self.judges[judge_id] = served = self._read(served.path, judge_id)
            except BatchValidationError as exc:
                _log.warning("keeping the last good version of %s: %s", judge_id, exc)
        return served

    def materialise(self, version: Version) -> Path:
        """The config file of ``version``, written under the data folder once, read-only after."""
        folder = self.versions_dir / version.version_id
        config = folder / version.config_name
        if config.is_file():
            return config
        staging = self.versions_dir / f".{version.version_id}.{secrets.token_hex(6)}.tmp"
        for name, data in version.files.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        try:
            staging.rename(folder)
        except OSError:  # another writer won the race with the same content
            if not config.is_file():
                raise
        return config

    def _read(self, path: Path, judge_id: str | None) -> ServedJudge:
        config = load_config(path)
        wanted = judge_id or config.name or path.stem
        if not _ID.match(wanted):
            raise BatchValidationError(
                f"judge id {wanted!r} cannot be used in a URL; set the config's `name:` to "
                "letters, digits, '.', '_' and '-'",
                path=path,
            )
        _check_servable(config, path)
        files = {path.name: path.read_bytes()}
        for judge in config.judges:
            if judge.prompt_file is not None:
                files[_inside(judge.prompt_file, path)] = (
                    path.parent / judge.prompt_file
                ).read_bytes()
        version = Version(
            version_id=str(uuid.UUID(hex=config.sha256[:32])),
            judge_id=wanted,
            sha256=config.sha256,
            config_name=path.name,
            evaluators=tuple(j.name for j in config.judges),
            created_at=time.time(),
            files=files,
        )
        if self.store.add_version(version):
            _log.info("judge %s: new version %s", wanted, version.version_id)
        else:
            version = self.store.version(version.version_id) or version
        return ServedJudge(wanted, path, config, version)


def _inside(name: str, config: Path) -> str:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts:
        raise BatchValidationError(
            f"prompt_file {name!r} is outside the config's folder; kyro serve keeps every "
            "version whole, so move the prompt file into the config's folder (or below it)",
            path=config,
        )
    return str(pure)


def _check_servable(config: JudgesConfig, path: Path) -> None:
    for judge in config.judges:
        for field in judge.fields:
            head, _, rest = field.partition(".")
            if head == "variables" and rest.split(".")[0] not in judge.variables:
                raise BatchValidationError(
                    f"judge {judge.name!r} uses {{{{{field}}}}} but has no default for it; "
                    "the service passes no run variables, so add it to the judge's "
                    "`variables:`",
                    path=path,
                )


def _signature(path: Path, version: Version) -> tuple[tuple[str, int, int], ...]:
    """Size and mtime of the config and its prompt files: a change means a new version."""
    out = []
    for name in version.files:
        try:
            stat = (path.parent / name).stat()
        except OSError:
            out.append((name, -1, -1))
        else:
            out.append((name, stat.st_size, stat.st_mtime_ns))
    return tuple(out)
