"""What every export written for people shares: private files and CSV cells kept as text.

Exports (``--output``, ``--csv``, an eval's ``to_jsonl``/``to_csv``) hold transcript previews,
model outputs and verdict text, as private as kyro's state: mode 0600, or stricter when the
umask says so. A CSV cell a spreadsheet would run as a formula — text starting with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return, which a transcript can steer a judge into
writing — is written with a leading ``'``.

It lives in ``kyro.eval`` (which may import only kyro's public names) so that both the eval
exports and the CLI's job exports share it.
"""

from __future__ import annotations

import os

__all__ = ["neutralise", "private_mode"]


def private_mode() -> int:
    """0600, or stricter when the umask says so: exports hold transcript and verdict text."""
    umask = os.umask(0o077)
    os.umask(umask)
    return 0o600 & ~umask


def neutralise(cell: str) -> str:
    """A CSV cell a spreadsheet shows as text: formula-like starts get a leading ``'``.

    Example::

        neutralise("=HYPERLINK(...)")   # "'=HYPERLINK(...)"
    """
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
