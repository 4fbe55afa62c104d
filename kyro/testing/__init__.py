"""Test doubles and conformance checks for kyro providers — public API, like the rest of kyro.

* :class:`FakeProvider` is an in-memory :class:`kyro.provider.BatchProvider`: configurable limits,
  replies, final state, poll count, per-line errors and missing lines, with every created batch
  recorded in ``provider.batches``. It persists nothing across processes.
* :class:`ProviderConformance` and :func:`check_provider` run the rules every provider must
  keep (one-line encode, submit → poll → results with every custom_id exactly once, cancel,
  find by metadata) against any provider, raising :class:`ConformanceError` on a break.

Example::

    from kyro.testing import FakeProvider, check_provider

    async def test_fake_conforms():
        await check_provider(FakeProvider(polls_until_done=2))
"""

from __future__ import annotations

from kyro._public import present as _present
from kyro.testing._conformance import ConformanceError, ProviderConformance, check_provider
from kyro.testing._fake import FakeBatch, FakeProvider, Responder, default_responder

__all__ = [
    "ConformanceError",
    "FakeBatch",
    "FakeProvider",
    "ProviderConformance",
    "Responder",
    "check_provider",
    "default_responder",
]

# Reprs, pickles and docs name this face, not the private module defining each name.
_present(globals(), __all__, __name__)
