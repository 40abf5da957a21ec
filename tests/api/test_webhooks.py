"""Webhooks end to end: the dispatcher on the real PostgreSQL, a real HTTP receiver on loopback
that checks every signature, runs whose status and stage change as the scheduler changes them.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.db.helpers import fake_hash
from tests.fixtures.api import api_settings, make_account
from trendflow.api.urls import check_callback_url, resolve_callback_url
from trendflow.api.webhooks import SIGNATURE_HEADER, WebhookDispatcher, deliver, user_secret, verify
from trendflow.db import Database
from trendflow.db.repositories import runs as runs_repo
from trendflow.db.repositories import videos as videos_repo
from trendflow.errors import InvalidCallbackUrl
from trendflow.settings import Settings


@dataclass
class Receiver:
    """A loopback HTTP server that records each signed POST (5xx for the first ``fail_first``)."""

    secret: str
    fail_first: int = 0
    always_fail: bool = False
    received: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    bad_signatures: int = 0
    hosts: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver(secret="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with rec.lock:
                rec.attempts += 1
                rec.hosts.append(self.headers["Host"])
                if not verify(rec.secret, body, self.headers[SIGNATURE_HEADER]):
                    rec.bad_signatures += 1
                    status = 401
                elif rec.always_fail or rec.attempts <= rec.fail_first:
                    status = 503
                else:
                    rec.received.append(json.loads(body))
                    status = 204
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # A name, not an address: the dispatcher must connect to what it checked, sending the name.
    rec.url = f"http://localhost:{server.server_address[1]}/hooks/trendflow"
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _settings(tmp_path: Path, db_url: str, **api: object) -> Settings:
    return api_settings(tmp_path, db_url, **{"webhook_allow_loopback": True,
                                             "webhook_backoff_s": 0.05,
                                             "webhook_poll_interval_s": 0.05,
                                             "webhook_attempts": 4, **api})


async def _run(db: Database, user_id: uuid.UUID, url: str) -> uuid.UUID:
    async with db.acquire() as conn:
        await videos_repo.upsert_video(conn, platform_id="youtube", video_id="dQw4w9WgXcQ")
        run, _ = await runs_repo.create_run(
            conn, run_id=uuid.uuid4(), platform_id="youtube", video_id="dQw4w9WgXcQ",
            user_id=user_id, profile_id="fast", config_hash=fake_hash("fast"),
            sampling_policy_version="tl12-h320-v1", dataprocessor_version="0.1.0",
            model_signature=fake_hash("models"), callback_url=url)
    return run.run_id


async def _until(pred: Any, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not pred():
            await asyncio.sleep(0.02)


async def test_every_stage_change_once_in_order_signed_and_retried(
    db: Database, db_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    settings = _settings(tmp_path, db_url, webhook_backoff_s=0.3)
    user = await make_account(db, "hooks@example.com")
    receiver.secret = user_secret(settings, user.user.user_id)
    receiver.fail_first = 2  # the first event is refused twice with 503, then accepted
    run_id = await _run(db, user.user.user_id, receiver.url)
    dispatcher = asyncio.create_task(WebhookDispatcher(settings, db).run_forever())
    try:
        await _until(lambda: receiver.attempts >= 1)  # `queued` refused once, being retried
        async with db.acquire() as conn:
            # Seen while `queued` still waits for its retry: it must not overtake it.
            await runs_repo.claim_next_runs(conn, limit=1, worker_id="test")
            await _until(lambda: len(receiver.received) == 2)
            for n, stage in enumerate(
                    ("segmenting", "analysing:shot_detection", "analysing:motion"), start=3):
                await runs_repo.set_run_stage(conn, run_id=run_id, stage=stage)
                await _until(lambda n=n: len(receiver.received) == n)
            await runs_repo.set_run_status(conn, run_id=run_id, status="ok", stage="done")
        await _until(lambda: len(receiver.received) == 6)
        await asyncio.sleep(0.5)  # several more polls: nothing is sent twice
    finally:
        dispatcher.cancel()
        await asyncio.gather(dispatcher, return_exceptions=True)
    seen = [(e["status"], e["stage"]) for e in receiver.received]
    assert seen == [("queued", None), ("running", None), ("running", "segmenting"),
                    ("running", "analysing:shot_detection"), ("running", "analysing:motion"),
                    ("ok", "done")]
    assert [e["type"] for e in receiver.received][-1] == "run.finished"
    assert {e["run_id"] for e in receiver.received} == {str(run_id)}
    assert len({e["event_id"] for e in receiver.received}) == 6
    assert receiver.bad_signatures == 0 and receiver.attempts == 6 + 2
    # The connection went to the checked address; the request still names the URL's host.
    port = receiver.url.split(":")[2].split("/")[0]
    assert set(receiver.hosts) == {f"localhost:{port}"}


async def test_a_receiver_that_keeps_failing_is_given_up_cleanly(
    db: Database, db_url: str, tmp_path: Path, receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = _settings(tmp_path, db_url)
    user = await make_account(db, "down@example.com")
    receiver.secret = user_secret(settings, user.user.user_id)
    receiver.always_fail = True
    body = b'{"event_id": "x"}'
    async with httpx.AsyncClient() as client:
        ok = await deliver(client, settings, url=receiver.url, secret=receiver.secret, body=body)
    assert ok is False
    assert receiver.attempts == settings.api.webhook_attempts  # then no more
    assert "webhook given up after 4 attempts" in caplog.text


async def test_the_dispatcher_forgets_runs_behind_its_window(
    db: Database, db_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    """What the dispatcher remembers is bounded: a run no longer changing is dropped."""
    settings = _settings(tmp_path, db_url)
    user = await make_account(db, "many@example.com")
    receiver.secret = user_secret(settings, user.user.user_id)
    dispatcher = WebhookDispatcher(settings, db)
    async with httpx.AsyncClient() as client:
        for _ in range(5):
            await _run(db, user.user.user_id, receiver.url)
        assert await dispatcher.poll_once(client) == 5
        assert await dispatcher.poll_once(client) == 0  # unchanged rows are not sent again
        await asyncio.sleep(2.5)  # longer than the poll's look-back: those rows fall behind
        later = await _run(db, user.user.user_id, receiver.url)
        assert await dispatcher.poll_once(client) == 1
        assert set(dispatcher._seen) == {later}
        await _until(lambda: len(receiver.received) == 6)


@pytest.mark.parametrize("url", [
    "http://100.64.0.1/hook",        # shared address space (carrier-grade NAT, cloud VPCs)
    "http://100.127.255.254/hook",
    "http://192.0.2.10/hook",        # documentation range
    "http://[fd00::1]/hook",         # unique local
    "http://10.1.2.3/hook",
    "http://169.254.169.254/latest",  # cloud metadata
])
async def test_internal_callback_addresses_are_refused(url: str) -> None:
    with pytest.raises(InvalidCallbackUrl):
        await check_callback_url(url, allow_loopback=True)


async def test_a_checked_target_is_pinned_to_its_address() -> None:
    target = await resolve_callback_url("https://93.184.215.14:8443/h?x=1", allow_loopback=False)
    assert target.pinned_url == "https://93.184.215.14:8443/h?x=1"
    local = await resolve_callback_url("http://localhost:9/h", allow_loopback=True)
    assert (local.pinned_url, local.host_header) == ("http://127.0.0.1:9/h", "localhost:9")
