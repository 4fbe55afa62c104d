"""A tiny support agent to evaluate: answers order questions from a table, no model involved.

Used by the README's eval example::

    python3 -m kyro eval examples.eval.support_agent:answer examples/eval/dataset.jsonl \
        --scorer 'contains:ignore_case=true' --scorer 'length:max=30,unit="words"'
"""

from __future__ import annotations

import asyncio
import re

ORDERS = {"1234": "in transit", "5678": "cancelled", "4321": "delivered"}
_ORDER = re.compile(r"#?(\d{4})")


async def answer(question: str) -> str:
    """Answer one customer question about an order (async, like a real agent's call)."""
    await asyncio.sleep(0.01)  # stands in for the model or API the agent would call
    match = _ORDER.search(question)
    if match is None:
        return "Could you give me your order number? It looks like #1234."
    number = match.group(1)
    if number not in ORDERS:
        raise LookupError(f"order #{number} is not in the order table")
    status = ORDERS[number]
    if "cancel" in question.lower() and status != "cancelled":
        return f"Order #{number} is {status} and can no longer be cancelled."
    return f"Your order #{number} is {status}."
