"""Load shedding inside each API replica: a bounded number of requests run, a bounded number
wait, the rest are refused at once with ``503 overloaded`` (JSON, with ``Retry-After``).

Ray Serve's own limit (``max_queued_requests`` on the deployment) answers in the proxy with a
plain-text body, so the replica is sized to accept ``running + waiting + answer_slots`` requests
from Serve and decides here; Serve's limit stays as a backstop (see
:meth:`trendflow.api.app.ApiIngress.deployment_options`). Probes (``/health/live``) and
``/metrics`` are never shed: an overloaded replica is still alive.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from trendflow.api.errors import error_body
from trendflow.metrics import get_metrics

EXEMPT_PATHS = frozenset({"/health/live", "/metrics"})
RETRY_AFTER_S = 1


class LoadShedder:
    """ASGI middleware: at most ``max_running`` requests at once, ``max_waiting`` queued."""

    def __init__(self, app: ASGIApp, *, max_running: int, max_waiting: int) -> None:
        if max_running < 1 or max_waiting < 0:
            raise ValueError(f"max_running >= 1 and max_waiting >= 0, got "
                             f"{max_running}, {max_waiting}")
        self.app = app
        self.max_running = max_running
        self.max_waiting = max_waiting
        self._slots = asyncio.Semaphore(max_running)
        self._waiting = 0
        self.shed = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if self._slots.locked():
            if self._waiting >= self.max_waiting:
                await self._refuse(send)
                return
            self._waiting += 1
            try:
                await self._slots.acquire()
            finally:
                self._waiting -= 1
        else:
            await self._slots.acquire()
        try:
            await self.app(scope, receive, send)
        finally:
            self._slots.release()

    async def _refuse(self, send: Send) -> None:
        self.shed += 1
        get_metrics().error("overloaded")
        body = json.dumps(error_body(
            "overloaded",
            "the API is at capacity; retry after a moment",
            {"retry_after_s": RETRY_AFTER_S, "max_running": self.max_running,
             "max_waiting": self.max_waiting},
        )).encode()
        headers: list[tuple[bytes, bytes]] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(RETRY_AFTER_S).encode()),
        ]
        start: dict[str, Any] = {"type": "http.response.start", "status": 503, "headers": headers}
        await send(start)
        await send({"type": "http.response.body", "body": body})
