"""Webhooks: a signed POST to a run's ``callback_url`` on every stage change and at the end.

- **Signature**: ``X-TrendFlow-Signature: t=<unix>,v1=<hex>``, the hex being
  HMAC-SHA256(user secret, ``"<t>." + body``). A user's secret is derived from the service key
  (``TRENDFLOW_API__WEBHOOK_KEY``) and the user id, so it needs no storage and is shown in
  ``GET /api/me``. Receivers recompute it and reject stale ``t``.
- **Delivery**: retried with exponential backoff (``webhook_attempts``, ``webhook_backoff_s``) on
  network errors and 5xx/429; never blocks a run — the :class:`WebhookDispatcher` watches the
  ``runs`` table from the API process and delivers in background tasks.
- **Targets**: checked again at delivery time (:mod:`trendflow.api.urls`): http(s) only, no
  internal addresses unless ``webhook_allow_loopback``. The request goes to the address that
  was checked (``Host`` and TLS SNI keep the URL's name), so a name that resolves elsewhere a
  moment later (DNS rebinding) cannot point it at an internal service.
- **Order**: one run's webhooks are sent one after another in the order its changes were seen
  (a retried one holds back the next); different runs' deliveries run concurrently.
- **Exactly one dispatcher** per database: it holds a PostgreSQL advisory lock; other replicas
  stand by. Delivery is at-least-once: after a restart the current stage may be sent again
  (``event_id`` is stable per run and stage, so receivers can de-duplicate). The dispatcher
  polls the current state of runs, so changes closer together than one poll interval
  (``webhook_poll_interval_s``) reach the receiver as the latest of them. What it remembers is
  bounded by the runs changed within the poll's look-back window.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from trendflow.api.urls import resolve_callback_url
from trendflow.db import Database
from trendflow.errors import ConfigError, InvalidCallbackUrl
from trendflow.settings import Settings

log = logging.getLogger(__name__)

_LOCK_ID = 0x7472_656E_6466  # advisory-lock key of the webhook dispatcher ("trendf")
SIGNATURE_HEADER = "X-TrendFlow-Signature"


def user_secret(settings: Settings, user_id: uuid.UUID) -> str:
    """The user's webhook signing secret."""
    key = settings.api.webhook_key
    if key is None:
        raise ConfigError("webhooks need TRENDFLOW_API__WEBHOOK_KEY (a random secret) to be set")
    return hmac.new(key.get_secret_value().encode(), user_id.bytes, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The signature header value for ``body``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, body: bytes, header: str, *, max_age_s: float = 300.0) -> bool:
    """Receiver side: is ``header`` a fresh, valid signature of ``body``?"""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        t = int(fields["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - t) > max_age_s:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp=t), header)


def event_body(run: dict[str, Any]) -> bytes:
    """The JSON a webhook carries."""
    stage = run["stage"] or run["status"]
    event_id = hashlib.sha256(f"{run['run_id']}|{run['status']}|{stage}".encode()).hexdigest()
    doc = {
        "event_id": event_id[:32],
        "type": "run.finished" if run["status"] in ("ok", "error", "cancelled") else "run.stage",
        "run_id": str(run["run_id"]),
        "status": run["status"],
        "stage": run["stage"],
        "error": run["error"],
        "sent_at": datetime.now(UTC).isoformat(),
    }
    return json.dumps(doc, separators=(",", ":")).encode()


async def deliver(
    client: httpx.AsyncClient, settings: Settings, *, url: str, secret: str, body: bytes
) -> bool:
    """POST ``body`` with retries; True once a 2xx arrives."""
    api = settings.api
    for attempt in range(api.webhook_attempts):
        try:
            target = await resolve_callback_url(url, allow_loopback=api.webhook_allow_loopback)
        except InvalidCallbackUrl as exc:
            log.warning("webhook target refused at delivery: %s", exc.details.get("reason"))
            return False
        extensions = {}
        if target.host != target.address and url.startswith("https:"):
            extensions["sni_hostname"] = target.host  # the certificate names the host
        try:
            response = await client.post(
                target.pinned_url,
                content=body,
                headers={"Content-Type": "application/json", "Host": target.host_header,
                         SIGNATURE_HEADER: sign(secret, body)},
                timeout=api.webhook_timeout_s,
                extensions=extensions,
            )
            if response.is_success:
                return True
            if response.status_code < 500 and response.status_code != 429:
                log.warning("webhook refused with HTTP %d; not retried", response.status_code)
                return False
        except httpx.HTTPError as exc:
            log.info("webhook attempt %d failed: %s", attempt + 1, type(exc).__name__)
        if attempt + 1 < api.webhook_attempts:
            await asyncio.sleep(api.webhook_backoff_s * (2**attempt))
    log.warning("webhook given up after %d attempts", api.webhook_attempts)
    return False


class WebhookDispatcher:
    """Watches runs with a ``callback_url`` and sends one webhook per (status, stage) seen."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self._settings = settings
        self._db = db
        # run → ((status, stage) last sent, that row's updated_at); pruned once the row falls
        # behind the look-back window (it cannot come back unchanged).
        self._seen: dict[uuid.UUID, tuple[tuple[str, str | None], datetime]] = {}
        self._since = datetime.now(UTC) - timedelta(minutes=5)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last: dict[uuid.UUID, asyncio.Task[bool]] = {}  # each run's latest delivery

    async def run_forever(self) -> None:
        """Hold the dispatcher lock (or wait for it), then poll until cancelled."""
        async with self._db.acquire() as lock_conn:
            while not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_ID):
                await asyncio.sleep(self._settings.api.webhook_poll_interval_s * 5)
            try:
                async with httpx.AsyncClient(follow_redirects=False) as client:
                    while True:
                        try:
                            await self.poll_once(client)
                        except Exception:  # a dispatcher that dies stops every webhook
                            log.exception("webhook poll failed; retrying")
                        await asyncio.sleep(self._settings.api.webhook_poll_interval_s)
            finally:
                with contextlib.suppress(Exception):
                    await lock_conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)

    async def poll_once(self, client: httpx.AsyncClient) -> int:
        """Send webhooks for every change since the last poll; returns how many were started."""
        async with self._db.acquire() as conn:
            rows = await conn.fetch(
                "SELECT run_id, user_id, status, stage, error, callback_url, updated_at "
                "FROM runs WHERE callback_url IS NOT NULL AND user_id IS NOT NULL "
                "AND updated_at >= $1 ORDER BY updated_at",
                self._since,
            )
        started = 0
        for row in rows:
            self._since = max(self._since, row["updated_at"] - timedelta(seconds=2))
            run_id, state = row["run_id"], (row["status"], row["stage"])
            seen = self._seen.get(run_id)
            self._seen[run_id] = (state, row["updated_at"])
            if seen is not None and seen[0] == state:
                continue
            secret = user_secret(self._settings, row["user_id"])
            task = asyncio.create_task(self._deliver_after(
                self._last.get(run_id), client, url=row["callback_url"], secret=secret,
                body=event_body(dict(row))))
            self._last[run_id] = task
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._done, run_id))
            started += 1
        for run_id in [r for r, (_, at) in self._seen.items() if at < self._since]:
            del self._seen[run_id]
        return started

    async def _deliver_after(
        self, previous: asyncio.Task[bool] | None, client: httpx.AsyncClient, *, url: str,
        secret: str, body: bytes,
    ) -> bool:
        if previous is not None:  # the run's earlier change goes first, retries included
            await asyncio.wait([previous])
        return await deliver(client, self._settings, url=url, secret=secret, body=body)

    def _done(self, run_id: uuid.UUID, task: asyncio.Task[bool]) -> None:
        self._tasks.discard(task)
        if self._last.get(run_id) is task:
            del self._last[run_id]
