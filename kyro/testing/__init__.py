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

# Reprs and docs say ``kyro.testing.FakeProvider``, not the private module defining it.
for _name in __all__:
    _value = globals()[_name]
    if getattr(_value, "__module__", "").startswith("kyro.testing._"):
        _value.__module__ = __name__
del _name, _value
