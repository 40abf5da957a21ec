"""Awaiting Ray calls from the scheduler's event loop."""

from __future__ import annotations

import asyncio
from typing import Any

import ray


async def await_ref(ref: ray.ObjectRef, timeout_s: float | None) -> Any:
    """The value of ``ref``; past ``timeout_s`` the task is cancelled and TimeoutError raised."""
    fut = asyncio.wrap_future(ref.future())
    if timeout_s is None:
        return await fut
    try:
        return await asyncio.wait_for(fut, timeout=max(0.001, timeout_s))
    except TimeoutError:
        ray.cancel(ref, force=False)
        raise


class Limiter:
    """A resizable concurrency limit (OOM halves a component's maps in flight)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_use = 0
        self._cond = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self._in_use < self.limit)
            self._in_use += 1

    async def __aexit__(self, *exc: object) -> None:
        async with self._cond:
            self._in_use -= 1
            self._cond.notify_all()

    async def halve(self) -> None:
        async with self._cond:
            self.limit = max(1, self.limit // 2)


__all__ = ["Limiter", "await_ref"]
