"""``GET /api/me``: your account, balance and recent ledger entries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from trendflow.api.deps import Conn, CurrentUser, SettingsDep
from trendflow.api.schemas import LedgerEntryOut, MeOut
from trendflow.api.webhooks import user_secret

router = APIRouter(prefix="/api", tags=["account"])


@router.get("/me", response_model=MeOut)
async def me(
    user: CurrentUser,
    conn: Conn,
    settings: SettingsDep,
    ledger_limit: Annotated[int, Query(ge=0, le=500)] = 50,
) -> MeOut:
    rows = await conn.fetch(
        "SELECT kind, amount, balance_after, reserved_after, run_id, component_name, note, "
        "created_at FROM billing_ledger WHERE user_id = $1 "
        "ORDER BY created_at DESC, entry_id DESC LIMIT $2",
        user.user_id,
        ledger_limit,
    )
    secret = user_secret(settings, user.user_id) if settings.api.webhook_key else None
    return MeOut(
        user_id=user.user_id,
        email=user.email,
        display_name=user.display_name,
        role=user.role,
        subscription=user.subscription,
        balance=user.balance,
        reserved=user.reserved,
        available=user.available,
        webhook_secret=secret,
        ledger=[LedgerEntryOut(**dict(r)) for r in rows],
    )
