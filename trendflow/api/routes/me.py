"""``GET /api/me``: your account, balance and recent ledger entries; ``GET/PATCH
/api/me/settings``: your account settings (cache window, the analysis' length and language)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from trendflow.api.deps import Conn, CurrentUser, SettingsDep
from trendflow.api.schemas import (
    ErrorOut,
    LedgerEntryOut,
    MeOut,
    UserSettingsOut,
    UserSettingsPatch,
)
from trendflow.api.webhooks import user_secret
from trendflow.billing import ledger
from trendflow.db.repositories import users as users_repo
from trendflow.db.repositories.users import UserSettings

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


def _settings_out(settings: UserSettings) -> UserSettingsOut:
    return UserSettingsOut(
        cache_ttl_days=settings.cache_ttl_days,
        report_sentences_min=settings.report_sentences_min,
        report_sentences_max=settings.report_sentences_max,
        report_locale=settings.report_locale,
    )


@router.get("/me/settings", response_model=UserSettingsOut)
async def get_settings(user: CurrentUser, conn: Conn) -> UserSettingsOut:
    """Your account settings."""
    return _settings_out(await users_repo.get_settings(conn, user_id=user.user_id))


@router.patch("/me/settings", response_model=UserSettingsOut,
              responses={400: {"model": ErrorOut}, 422: {"model": ErrorOut}})
async def patch_settings(body: UserSettingsPatch, user: CurrentUser, conn: Conn) -> UserSettingsOut:
    """Change some of your settings; the others stay. A minimum above the stored maximum (or
    the reverse) is refused (``400 invalid_input``)."""
    changed = await users_repo.update_settings(
        conn, user_id=user.user_id, **body.model_dump(exclude_none=True)
    )
    return _settings_out(changed)
