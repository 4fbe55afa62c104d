"""The component under test: resolved from a callable or ``"module:function"``, run per item.

A sync component runs in a worker thread (the event loop stays free) under the run's
concurrency limit; an async one is awaited. A per-item ``timeout`` cancels that item only: an
async component is cancelled; a sync one is abandoned in its thread (Python cannot stop a
thread), which runs on to its end outside the concurrency limit, its late result ignored.
Any exception the component raises becomes the item's ``error`` (``"ValueError: ..."``);
the run goes on.
"""

from __future__ import annotations

import importlib
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any, cast

import anyio
import anyio.to_thread

from kyro import BatchValidationError

__all__ = ["Runner", "load_component"]


def load_component(component: Callable[..., Any] | str) -> Callable[..., Any]:
    """``component`` itself, or the callable a ``"package.module:function"`` string names.

    Example::

        load_component("examples.eval.agent:answer")
    """
    if not isinstance(component, str):
        if not callable(component):
            raise BatchValidationError(
                f"the component must be a callable or 'module:function', not {component!r:.60}"
            )
        return component
    module_name, _, attr = component.partition(":")
    if not module_name or not attr:
        raise BatchValidationError(
            f"component {component!r} must read 'module:function' (for example "
            "'my_app.agent:answer')"
        )
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise BatchValidationError(
            f"cannot import {module_name!r} for component {component!r}: {exc}; run from the "
            "folder that holds it, or add that folder to PYTHONPATH"
        ) from exc
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise BatchValidationError(
                f"module {module_name!r} has no {attr!r} (component {component!r})"
            ) from None
    if not callable(target):
        raise BatchValidationError(f"component {component!r} is not callable")
    return cast("Callable[..., Any]", target)


class Runner:
    """Runs the component on one input: returns ``(output, error, duration_ms)``."""

    def __init__(
        self,
        component: Callable[..., Any],
        *,
        concurrency: int,
        timeout: float | None,
        unpack_input: bool,
    ) -> None:
        call = getattr(component, "__call__", None)  # noqa: B004 (async __call__ objects)
        self.is_async = inspect.iscoroutinefunction(component) or inspect.iscoroutinefunction(call)
        self.component = component
        self.timeout = timeout
        self.unpack_input = unpack_input
        self.limiter = anyio.CapacityLimiter(concurrency)

    def _invoke(self, value: Any) -> Awaitable[Any]:
        fn = self.component
        if self.unpack_input and isinstance(value, Mapping):
            fn = partial(fn, **value)
            args: tuple[Any, ...] = ()
        else:
            args = (value,)
        if self.is_async:
            awaitable: Awaitable[Any] = fn(*args)
            return awaitable
        return anyio.to_thread.run_sync(
            partial(fn, *args), limiter=self.limiter, abandon_on_cancel=True
        )

    async def run(self, value: Any) -> tuple[Any, str | None, float]:
        """Run once; the output, or the error that replaced it, and the time it took."""
        start = time.perf_counter()
        try:
            if self.timeout is None:
                output = await self._invoke(value)
                if inspect.isawaitable(output):
                    output = await output
            else:
                with anyio.move_on_after(self.timeout) as scope:
                    output = await self._invoke(value)
                    if inspect.isawaitable(output):
                        output = await output
                if scope.cancelled_caught:
                    elapsed = (time.perf_counter() - start) * 1000
                    return None, f"timed out after {self.timeout:g}s", round(elapsed, 3)
        except Exception as exc:
            elapsed = (time.perf_counter() - start) * 1000
            return None, f"{type(exc).__name__}: {exc}", round(elapsed, 3)
        return output, None, round((time.perf_counter() - start) * 1000, 3)
