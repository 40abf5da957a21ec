"""Calibration from measured component times, and the ``trendflow billing`` commands."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from trendflow.billing.ledger import settle_run
from trendflow.db.repositories import billing as billing_repo
from trendflow.db.repositories import catalog
from trendflow.db.repositories import components as rc_repo
from trendflow.jobs.calibrate import calibrate
from trendflow.settings import Settings

from .helpers import FAST, finish, new_user, paid_run

ALL_OK = dict.fromkeys(FAST, "ok")


async def test_calibration_fits_measured_times_and_audits(sconn: asyncpg.Connection) -> None:
    user = await new_user(sconn, credits=Decimal("1000"))
    # motion samples every frame of the 12 fps timeline: 60 s -> 720 frames; measured 0.01 s
    # per frame (7.2 s), against the pinned 0.004 s.
    for n in range(4):
        billed = await paid_run(sconn, user, n)
        await finish(sconn, billed.run.run_id, status="ok", components=ALL_OK)
        await sconn.execute("UPDATE videos SET duration_s = 60 WHERE video_id = $1",
                            billed.run.video_id)
        await rc_repo.upsert_run_component(
            sconn, run_id=billed.run.run_id, component_name="motion", status="ok",
            duration_ms=7200 + 100 * n, finished_at=billed.run.created_at,
        )
        await settle_run(sconn, run_id=billed.run.run_id)
    report = await calibrate(sconn, settings=Settings(), apply=True, actor="test")
    motion = next(e for e in report if e.component_name == "motion")
    assert motion.samples == 4
    assert motion.new_s_per_unit is not None
    assert motion.new_s_per_unit == Decimal("0.010208333")  # median 7.35 s / 720 frames
    assert motion.mdape_before > 50 and motion.mdape_after is not None and motion.mdape_after < 2
    saved = (await catalog.get_pricing(sconn, component_names=["motion"]))["motion"]
    assert saved.cpu_s_per_unit == motion.new_s_per_unit and saved.gpu_s_per_unit == 0
    audit = await billing_repo.list_audit(sconn, component_name="motion")
    assert audit[0].action == "calibration" and audit[0].details["samples"] == 4


async def test_calibration_leaves_thinly_measured_components_alone(
    sconn: asyncpg.Connection,
) -> None:
    user = await new_user(sconn, credits=Decimal("100"))
    billed = await paid_run(sconn, user)
    await finish(sconn, billed.run.run_id, status="ok", components=ALL_OK)
    await sconn.execute("UPDATE videos SET duration_s = 60 WHERE video_id = $1",
                        billed.run.video_id)
    before = await catalog.get_pricing(sconn)
    report = await calibrate(sconn, settings=Settings(), apply=True, actor="test")
    assert report and all(e.new_s_per_unit is None for e in report)
    assert await catalog.get_pricing(sconn) == before


def _cli(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"TRENDFLOW_DATABASE_URL": url, "TRENDFLOW_DATA_DIR": str(tmp_path), "PATH": "/usr/bin"}
    return subprocess.run(
        [sys.executable, "-m", "trendflow.cli", "billing", *args],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )


@pytest.mark.parametrize("tamper", [False, True])
async def test_audit_command_exit_code(
    sconn: asyncpg.Connection, seeded_url: str, tmp_path: Path, tamper: bool
) -> None:
    user = await new_user(sconn, credits=Decimal("100"))
    email = await sconn.fetchval("SELECT email FROM users WHERE user_id = $1", user)
    top = _cli(seeded_url, tmp_path, "topup", "--email", email, "--amount", "5.5",
               "--reason", "promo", "--actor", "ops")
    assert top.returncode == 0, top.stderr
    assert top.stdout.strip() == (f"{email} topped up by 5.50: balance 105.50, reserved 0.00, "
                                  "available 105.50 credits")
    if tamper:
        await sconn.execute("UPDATE users SET reserved = 1 WHERE user_id = $1", user)
    done = _cli(seeded_url, tmp_path, "audit")
    assert done.returncode == (1 if tamper else 0), done.stdout + done.stderr
    if tamper:
        assert f"user {user}: reserved 1" in done.stdout
    as_json = _cli(seeded_url, tmp_path, "audit", "--json")
    assert as_json.returncode == done.returncode
    report = json.loads(as_json.stdout)
    assert report["ok"] is not tamper
    assert report["problems"] == done.stdout.splitlines()[: len(report["problems"])]


async def test_billing_commands_print_json_for_scripts(
    sconn: asyncpg.Connection, seeded_url: str, tmp_path: Path
) -> None:
    """``--json``: one document on stdout, credits as decimal strings; without it, lines."""
    user = await new_user(sconn, credits=Decimal("100"))
    email = await sconn.fetchval("SELECT email FROM users WHERE user_id = $1", user)
    top = _cli(seeded_url, tmp_path, "topup", "--email", email, "--amount", "2.25",
               "--reason", "promo", "--json")
    doc = json.loads(top.stdout)
    assert {k: Decimal(v) for k, v in doc.items()} == {
        "balance": Decimal("102.25"), "reserved": 0, "available": Decimal("102.25")}
    bal = _cli(seeded_url, tmp_path, "balance", "--email", email, "--json")
    assert json.loads(bal.stdout) == json.loads(top.stdout)

    args = ("estimate", "--profile", "fast", "--duration", "60", "--width", "1280",
            "--height", "720")
    est = json.loads(_cli(seeded_url, tmp_path, *args, "--json").stdout)
    lines = _cli(seeded_url, tmp_path, *args).stdout.splitlines()
    assert lines[0] == f"fast for 60 s at 1280x720: {Decimal(est['total']):.2f} credits"
    assert {c["component"] for c in est["components"]} == set(FAST)
    assert sorted(line.split()[0] for line in lines[1:]) == sorted(FAST)

    prices = json.loads(_cli(seeded_url, tmp_path, "prices", "--json").stdout)
    table = _cli(seeded_url, tmp_path, "prices").stdout.splitlines()
    assert set(FAST) <= set(prices)
    assert [row.split()[0] for row in table[1:]] == sorted(prices)
