"""The price of one component for one video (DESIGN.md §8), and changing prices.

::

    units  = frames this component samples | seconds of audio | 1 per run   (pricing.unit)
    cpu_s  = units × cpu_s_per_unit          gpu_s = units × gpu_s_per_unit
    price  = (base_cost + cpu_s × cpu_cost_per_s + gpu_s × gpu_cost_per_s)
             × resolution_factor × duration_factor × (1 + markup)

Everything is exact :class:`~decimal.Decimal` arithmetic (1 credit = 1 RUB). The only rounding
happens once, on each component's final price: :data:`PRICE_QUANTUM` (0.01 credit) with
``ROUND_HALF_UP``. A run's total is the sum of its rounded component prices, so the total the
user sees always equals the sum of the lines they see, and settlement charges exactly those lines.

- **frames**: the analysis timeline has ``round(duration_s × fps)`` frames (as the Segmenter
  builds it); the component's declared :class:`~trendflow.pipeline.sampling.Sampling` picks its
  frames from them, so ``color_stats`` (2 fps) pays for 2 frames a second and ``motion`` (every
  frame) for 12.
- **resolution_factor**: ``resolution_factors`` maps a maximum height to a factor; the first
  height >= the video's short side applies (a vertical 1080×1920 video is priced as 1080p).
  Larger videos get the largest entry's factor: the Segmenter clamps them to 1080p.
- **duration_factor**: ``flat`` → 1; ``linear`` → ``base + per_minute × minutes`` (params
  ``base``, default 1, and ``per_minute``); ``tiered`` → the first of ``tiers`` (sorted by
  ``up_to_s``) whose ``up_to_s`` >= the duration.

Prices live in ``component_pricing`` and change without a deploy through :func:`update_pricing`
(the admin route), which validates the row and writes a ``billing_audit`` entry.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import asyncpg

from trendflow.db.repositories import billing as billing_repo
from trendflow.db.repositories import catalog
from trendflow.db.repositories.catalog import ComponentPrice
from trendflow.errors import ConfigError, InputError
from trendflow.pipeline.components.registry import get_component

PRICE_QUANTUM = Decimal("0.01")
SECONDS_QUANTUM = Decimal("0.001")
UNITS = ("frame", "audio_second", "run")
DURATION_MODES = ("flat", "linear", "tiered")


@dataclass(frozen=True, slots=True)
class VideoParams:
    """What the price depends on: duration in seconds and the source frame size."""

    duration_s: float
    width: int
    height: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise InputError(
                f"duration_s must be a positive number of seconds, got {self.duration_s!r}",
                field="duration_s",
            )
        for name in ("width", "height"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise InputError(f"{name} must be a positive integer, got {value!r}", field=name)

    @property
    def short_side(self) -> int:
        return min(self.width, self.height)


@dataclass(frozen=True, slots=True)
class ComponentQuote:
    """One component's price for one video, with the figures it came from."""

    component_name: str
    unit: str
    units: Decimal
    cpu_s: Decimal
    gpu_s: Decimal
    resolution_factor: Decimal
    duration_factor: Decimal
    price: Decimal  # rounded once, to PRICE_QUANTUM
    cache_price: Decimal

    @property
    def seconds(self) -> Decimal:
        """Estimated compute seconds (CPU + GPU) of this component."""
        return self.cpu_s + self.gpu_s


def _dec(value: Any, where: str) -> Decimal:
    try:
        out = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ConfigError(f"{where}: {value!r} is not a decimal number", where=where) from exc
    if not out.is_finite() or out < 0:
        raise ConfigError(f"{where}: {value!r} must be a finite number >= 0", where=where)
    return out


def timeline_frames(duration_s: float, fps: float) -> int:
    """Frames of the analysis timeline for a video of ``duration_s`` (as the Segmenter counts)."""
    return int(round(duration_s * fps))


def units_for(price: ComponentPrice, duration_s: float, timeline_fps: float) -> Decimal:
    """How many of ``price.unit`` this component processes for a video of ``duration_s``."""
    match price.unit:
        case "run":
            return Decimal(1)
        case "audio_second":
            return Decimal(str(duration_s))
        case "frame":
            cls = get_component(price.component_name)
            if cls.SAMPLING is None:
                raise ConfigError(
                    f"{price.component_name} is priced per frame but reads no frames; set its "
                    "pricing unit to 'audio_second' or 'run'",
                    component=price.component_name,
                )
            n = timeline_frames(duration_s, timeline_fps)
            return Decimal(len(cls.SAMPLING.indices(n, timeline_fps)))
    raise ConfigError(
        f"pricing of {price.component_name}: unknown unit {price.unit!r}; one of {UNITS}",
        component=price.component_name,
    )


def resolution_factor(price: ComponentPrice, video: VideoParams) -> Decimal:
    """The factor of the first height >= the video's short side (else the largest height's)."""
    where = f"pricing of {price.component_name}: resolution_factors"
    table = _resolution_table(price.resolution_factors, where)
    for height, factor in table:
        if video.short_side <= height:
            return factor
    return table[-1][1]


def _resolution_table(factors: dict[str, Any], where: str) -> list[tuple[int, Decimal]]:
    if not factors:
        raise ConfigError(f"{where} is empty; give at least one height", where=where)
    table: list[tuple[int, Decimal]] = []
    for key, value in factors.items():
        if not str(key).isdigit() or int(key) <= 0:
            raise ConfigError(f"{where}: key {key!r} must be a positive height", where=where)
        table.append((int(key), _dec(value, f"{where}[{key}]")))
    return sorted(table)


def duration_factor(price: ComponentPrice, duration_s: float) -> Decimal:
    """The duration factor of ``price``'s mode (see the module docstring)."""
    where = f"pricing of {price.component_name}: duration_factor_params"
    params = price.duration_factor_params or {}
    match price.duration_factor_mode:
        case "flat":
            return Decimal(1)
        case "linear":
            base = _dec(params.get("base", "1"), f"{where}.base")
            if "per_minute" not in params:
                raise ConfigError(f"{where}: linear mode needs per_minute", where=where)
            per_minute = _dec(params["per_minute"], f"{where}.per_minute")
            return base + per_minute * Decimal(str(duration_s)) / Decimal(60)
        case "tiered":
            for up_to_s, factor in _tiers(params, where):
                if Decimal(str(duration_s)) <= up_to_s:
                    return factor
            raise ConfigError(
                f"{where}: no tier covers a {duration_s:g} s video; add a longer tier",
                where=where,
                duration_s=duration_s,
            )
    raise ConfigError(
        f"pricing of {price.component_name}: unknown duration_factor_mode "
        f"{price.duration_factor_mode!r}; one of {DURATION_MODES}",
        component=price.component_name,
    )


def _tiers(params: dict[str, Any], where: str) -> list[tuple[Decimal, Decimal]]:
    tiers = params.get("tiers")
    if not isinstance(tiers, list) or not tiers:
        raise ConfigError(f"{where}: tiered mode needs a non-empty 'tiers' list", where=where)
    out: list[tuple[Decimal, Decimal]] = []
    for i, tier in enumerate(tiers):
        if not isinstance(tier, dict) or {"up_to_s", "factor"} - set(tier):
            raise ConfigError(f"{where}.tiers[{i}] needs up_to_s and factor", where=where)
        out.append(
            (_dec(tier["up_to_s"], f"{where}.tiers[{i}].up_to_s"),
             _dec(tier["factor"], f"{where}.tiers[{i}].factor"))
        )
    return sorted(out)


def quote(price: ComponentPrice, video: VideoParams, timeline_fps: float) -> ComponentQuote:
    """Price one component for one video (the formula in the module docstring)."""
    units = units_for(price, video.duration_s, timeline_fps)
    cpu_s = units * price.cpu_s_per_unit
    gpu_s = units * price.gpu_s_per_unit
    rf = resolution_factor(price, video)
    df = duration_factor(price, video.duration_s)
    raw = (
        (price.base_cost + cpu_s * price.cpu_cost_per_s + gpu_s * price.gpu_cost_per_s)
        * rf
        * df
        * (1 + price.markup)
    )
    return ComponentQuote(
        component_name=price.component_name,
        unit=price.unit,
        units=units,
        cpu_s=cpu_s.quantize(SECONDS_QUANTUM, rounding=ROUND_HALF_UP),
        gpu_s=gpu_s.quantize(SECONDS_QUANTUM, rounding=ROUND_HALF_UP),
        resolution_factor=rf,
        duration_factor=df,
        price=raw.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP),
        cache_price=price.cache_price.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP),
    )


def validate_pricing(price: ComponentPrice) -> None:
    """Refuse a pricing row the formula could not use (:class:`InputError`, stable codes)."""
    try:
        if price.unit not in UNITS:
            raise ConfigError(f"unit must be one of {UNITS}, got {price.unit!r}")
        for name in ("base_cost", "cpu_cost_per_s", "gpu_cost_per_s", "cpu_s_per_unit",
                     "gpu_s_per_unit", "markup", "cache_price"):
            _dec(getattr(price, name), name)
        _resolution_table(price.resolution_factors, "resolution_factors")
        probe = VideoParams(duration_s=1.0, width=1, height=1)
        duration_factor(price, probe.duration_s)
    except ConfigError as exc:
        raise InputError(
            f"pricing of {price.component_name} is invalid: {exc.message}",
            component=price.component_name,
        ) from exc


def pricing_json(price: ComponentPrice) -> dict[str, Any]:
    """The pricing row as JSON for the audit trail (decimals as strings)."""
    out = asdict(price)
    out.pop("updated_at", None)
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in out.items()}


async def update_pricing(
    conn: asyncpg.Connection,
    *,
    price: ComponentPrice,
    actor: str,
    reason: str,
    action: str = "pricing_update",
    details: dict[str, Any] | None = None,
) -> ComponentPrice:
    """Save a component's pricing and its ``billing_audit`` row, in one transaction.

    New estimates use it at once; runs already created keep the price they reserved.
    """
    if not reason.strip():
        raise InputError("a pricing change needs a reason", field="reason")
    validate_pricing(price)
    async with conn.transaction():
        before = await conn.fetchval(
            "SELECT 1 FROM component_pricing WHERE component_name = $1 FOR UPDATE",
            price.component_name,
        )
        old = (
            (await catalog.get_pricing(conn, component_names=[price.component_name]))[
                price.component_name
            ]
            if before
            else None
        )
        saved = await catalog.upsert_pricing(conn, price=price)
        await billing_repo.add_audit(
            conn,
            action=action,  # type: ignore[arg-type]
            component_name=price.component_name,
            actor=actor,
            reason=reason.strip(),
            before=None if old is None else pricing_json(old),
            after=pricing_json(saved),
            details=details,
        )
    return saved


def with_costs(price: ComponentPrice, *, cpu_s_per_unit: Decimal, gpu_s_per_unit: Decimal,
               source: str) -> ComponentPrice:
    """A copy of ``price`` with new per-unit seconds (calibration)."""
    return replace(price, cpu_s_per_unit=cpu_s_per_unit, gpu_s_per_unit=gpu_s_per_unit,
                   source=source)


__all__ = [
    "PRICE_QUANTUM",
    "ComponentQuote",
    "VideoParams",
    "duration_factor",
    "pricing_json",
    "quote",
    "resolution_factor",
    "timeline_frames",
    "units_for",
    "update_pricing",
    "validate_pricing",
    "with_costs",
]
