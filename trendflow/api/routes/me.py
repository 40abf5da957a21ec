"""``GET /api/me``: your account, balance and recent ledger entries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from trendflow.api.deps import Conn, CurrentUser, SettingsDep
from trendflow.api.schemas import LedgerEntryOut, MeOut
from trendflow.api.webhooks import user_secret
from trendflow.billing import ledger

router = APIRouter(prefix="/api", tags=["account"])


@router.get("/me", response_model=MeOut)
async def me(
    user: CurrentUser,
    conn: Conn,
    settings: SettingsDep,
    ledger_limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> MeOut:
    page = await ledger.get_ledger(conn, user_id=user.user_id, limit=ledger_limit)
    balance = await ledger.get_balance(conn, user_id=user.user_id)
    secret = user_secret(settings, user.user_id) if settings.api.webhook_key else None
    return MeOut(
        user_id=user.user_id,
        email=user.email,
        display_name=user.display_name,
        role=user.role,
        subscription=user.subscription,
        balance=balance.balance,
        reserved=balance.reserved,
        available=balance.available,
        webhook_secret=secret,
        ledger=[
            LedgerEntryOut(**{f: getattr(e, f) for f in LedgerEntryOut.model_fields})
            for e in page.entries
        ],
    )
