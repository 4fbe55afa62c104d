"""API keys: where they come from, and checking one without leaking it through timing.

Keys come from ``KYRO_SERVE_API_KEYS`` (comma- or whitespace-separated) and/or a keys file
(one key a line; blank lines and ``#`` comments skipped). A request sends
``Authorization: Api-Key <key>`` (``Bearer <key>`` is accepted too). The sent key is hashed
and compared with every known key's hash by ``hmac.compare_digest``, all of them each time, so
neither a key's content nor its length shows in the response time. Keys are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from kyro import BatchValidationError

__all__ = ["ENV_KEYS", "KeyRing", "load_keys"]

ENV_KEYS = "KYRO_SERVE_API_KEYS"
_SCHEMES = ("api-key", "bearer")
_MIN_LENGTH = 16


def load_keys(env: str | None, file: Path | None) -> list[str]:
    """Every key from the environment value and the file; refuses short keys.

    Example::

        load_keys(os.environ.get("KYRO_SERVE_API_KEYS"), Path("keys.txt"))
    """
    keys = (env or "").replace(",", " ").split()
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BatchValidationError(
                f"cannot read the API keys file ({type(exc).__name__}); give a UTF-8 text file "
                "with one key a line",
                path=file,
            ) from None
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                keys.append(line)
    for number, key in enumerate(keys, 1):
        if len(key) < _MIN_LENGTH:
            raise BatchValidationError(
                f"API key #{number} is shorter than {_MIN_LENGTH} characters; use long random "
                "keys, e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
    return keys


class KeyRing:
    """The accepted keys, kept only as sha256 digests.

    Example::

        ring = KeyRing(["a-long-random-key-0123456789"])
        ring.check("Api-Key a-long-random-key-0123456789")      # 'ok'
    """

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = [_digest(k) for k in keys]
        if not self._digests:
            raise BatchValidationError(
                f"no API key: set {ENV_KEYS} or pass --api-keys-file, so only your clients "
                "can use the service"
            )

    def __len__(self) -> int:
        return len(self._digests)

    def check(self, header: str | None) -> Literal["ok", "missing", "wrong"]:
        """``missing`` without a usable header, ``wrong`` for an unknown key, else ``ok``."""
        if not header:
            return "missing"
        scheme, _, key = header.strip().partition(" ")
        key = key.strip()
        if scheme.lower() not in _SCHEMES or not key:
            return "missing"
        sent = _digest(key)
        found = False
        for digest in self._digests:
            found |= hmac.compare_digest(sent, digest)
        return "ok" if found else "wrong"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def env_keys() -> str | None:
    """The raw value of :data:`ENV_KEYS`."""
    return os.environ.get(ENV_KEYS)
