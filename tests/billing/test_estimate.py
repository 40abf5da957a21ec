"""Prices and estimates: the formula, exact decimals, rounding once per component."""

from __future__ import annotations

from decimal import Decimal

import asyncpg
import pytest

from trendflow.billing.estimate import estimate
from trendflow.billing.pricing import VideoParams, quote, update_pricing
from trendflow.db.repositories import billing as billing_repo
from trendflow.db.repositories import catalog
from trendflow.errors import ComponentNotFound, InputError, VideoTooLong, VideoTooShort
from trendflow.settings import Settings

from .helpers import FAST, VIDEO, billing_config


async def test_fast_profile_price_follows_the_formula(sconn: asyncpg.Connection) -> None:
    est = await estimate(sconn, profile=await billing_config(sconn),
                         video=VIDEO, settings=Settings())
    assert [c.component_name for c in est.components] == sorted(FAST)
    lines = {c.component_name: c for c in est.components}
    # color_stats samples 2 fps: 120 frames of a 60 s video; 0.004 s per frame.
    color = lines["color_stats"].quote
    assert color.units == 120
    assert color.cpu_s == Decimal("0.480")
    # (0.50 + 0.48 s x 0.05) x 1.15 (1080p) x 1.0 (<= 300 s) x 1.30 = 0.78338 -> 0.78
    assert lines["color_stats"].price == Decimal("0.78")
    # loudness is priced per audio second: (0.50 + 60 x 0.004 x 0.05) x 1.15 x 1.30 = 0.76544
    assert lines["loudness"].quote.units == 60 and lines["loudness"].price == Decimal("0.77")
    assert lines["metadata_features"].quote.units == 1
    # motion samples every frame of the 12 fps timeline: 720 frames.
    assert lines["motion"].quote.units == 720
    assert est.total == sum(c.price for c in est.components)
    assert est.eta is not None and est.eta.runs_ahead == 0
    # Nothing ahead: the admission window, then the decode and the components' seconds.
    assert est.eta.admission_s == Settings().runtime.admission_window_s > 0
    assert est.eta.total_s == pytest.approx(est.eta.admission_s + est.eta.processing_s)
    assert est.to_dict()["eta"]["admission_s"] == round(est.eta.admission_s, 1)


async def test_price_grows_with_resolution_and_duration(sconn: asyncpg.Connection) -> None:
    s = Settings()
    small = await estimate(sconn, profile=await billing_config(sconn),
                           video=VideoParams(60.0, 640, 360), settings=s)
    hd = await estimate(sconn, profile=await billing_config(sconn), video=VIDEO, settings=s)
    long = await estimate(sconn, profile=await billing_config(sconn),
                          video=VideoParams(600.0, 1920, 1080), settings=s)
    assert small.total < hd.total < long.total
    # A vertical 1080x1920 video is priced by its short side, as 1080p.
    vertical = await estimate(sconn, profile=await billing_config(sconn),
                              video=VideoParams(60.0, 1080, 1920), settings=s)
    assert vertical.total == hd.total


async def test_video_outside_the_segmenter_limits_is_refused(sconn: asyncpg.Connection) -> None:
    with pytest.raises(VideoTooShort):
        await estimate(sconn, profile=await billing_config(sconn), video=VideoParams(3.0, 640, 360))
    with pytest.raises(VideoTooLong):
        await estimate(sconn, profile=await billing_config(sconn),
                       video=VideoParams(1300.0, 640, 360))
    with pytest.raises(InputError):
        VideoParams(float("nan"), 640, 360)


async def test_component_without_pricing_is_an_error(sconn: asyncpg.Connection) -> None:
    await sconn.execute("DELETE FROM component_pricing WHERE component_name = 'motion'")
    with pytest.raises(ComponentNotFound) as err:
        await estimate(sconn, profile=await billing_config(sconn), video=VIDEO)
    assert err.value.details["components"] == ["motion"]


async def test_admin_price_change_applies_at_once_and_is_audited(
    sconn: asyncpg.Connection,
) -> None:
    before = await estimate(sconn, profile=await billing_config(sconn), video=VIDEO, with_eta=False)
    price = (await catalog.get_pricing(sconn, component_names=["motion"]))["motion"]
    from dataclasses import replace

    await update_pricing(sconn, price=replace(price, base_cost=Decimal("2.50")),
                         actor="admin@example.com", reason="GPU prices went up")
    after = await estimate(sconn, profile=await billing_config(sconn), video=VIDEO, with_eta=False)
    assert after.prices["motion"] > before.prices["motion"]
    assert after.prices["color_stats"] == before.prices["color_stats"]
    audit = await billing_repo.list_audit(sconn, component_name="motion")
    assert audit[0].action == "pricing_update"
    assert audit[0].before is not None and Decimal(audit[0].before["base_cost"]) == Decimal("0.50")
    assert Decimal(audit[0].after["base_cost"]) == Decimal("2.50")
    assert audit[0].reason == "GPU prices went up"
    with pytest.raises(InputError):
        await update_pricing(sconn, price=replace(price, resolution_factors={}),
                             actor="admin@example.com", reason="oops")
    with pytest.raises(InputError):
        await update_pricing(sconn, price=price, actor="admin@example.com", reason=" ")


def test_rounding_happens_once_half_up() -> None:
    from trendflow.db.repositories.catalog import ComponentPrice

    price = ComponentPrice(
        component_name="metadata_features", unit="run", base_cost=Decimal("0.005"),
        cpu_cost_per_s=Decimal(0), gpu_cost_per_s=Decimal(0), cpu_s_per_unit=Decimal(0),
        gpu_s_per_unit=Decimal(0), resolution_factors={"1080": "1"},
        duration_factor_mode="flat", duration_factor_params={}, markup=Decimal(0),
        cache_price=Decimal(0), source="test",
    )
    assert quote(price, VIDEO, 12.0).price == Decimal("0.01")  # 0.005 -> 0.01, not banker's 0.00
