"""Price and time of a run before it starts — the same function prices the run at creation.

:func:`estimate` prices every enabled component of a profile for a video
(:func:`trendflow.billing.pricing.quote`), sums the rounded prices, and estimates when the result
will be ready:

- ``processing_s`` = decode time (``decode_s_per_video_s`` × duration) + the estimated compute
  seconds of every component (a conservative sum: components of one run share its workers);
- ``queue_wait_s`` = runs ahead of it (``queued`` + ``running``) ÷ ``max_concurrent_runs`` ×
  the mean wall time of the last ``eta_recent_runs`` finished runs. With no finished run yet,
  each run ahead is assumed to take as long as this one; ``eta_basis`` says which was used;
- ``admission_s`` = the scheduler's admission window (``runtime.admission_window_s``): a queued
  run waits that long before it is planned, so that runs arriving together are planned together
  (measured: the 5 s "queue" stage of every run in ``bench_e2e.py``); 0 for a cache hit.

There is no cold-start term: the scheduler takes no run before its worker pools are warm
(:meth:`trendflow.actors.pools.Pools.warm`, ``runtime.warm_workers``), so the first run after
``trendflow up`` is estimated like any other (``bench_estimate.py --eta`` measures both).

A profile that renders with ``engine: llm`` has one more line, :data:`RENDER_LINE`: the render
stage after the components, priced from its own ``component_pricing`` row (unit ``run``),
reserved and settled like an optional component — charged when the render succeeded, released
when it failed (the run still ends ``ok`` with the components' results).

The run's creation (:func:`trendflow.runs.admission.create_billed_run`) calls the same function
on the profile config pinned to the run, so the user reserves — and at most pays — exactly the
total they were shown, unless an admin changed a price in between; ``max_total`` guards that.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from trendflow.billing.pricing import ComponentQuote, VideoParams, quote
from trendflow.contracts.profile import ProfileConfig
from trendflow.db.repositories import catalog
from trendflow.db.repositories import runs as runs_repo
from trendflow.errors import VideoTooLong, VideoTooShort
from trendflow.settings import Settings, get_settings

# The priced line (and ``run_components`` row) of the render stage of ``engine: llm`` profiles.
RENDER_LINE = "render"


@dataclass(frozen=True, slots=True)
class ComponentEstimate:
    """One line of an estimate."""

    component_name: str
    required: bool
    quote: ComponentQuote
    reused: bool  # priced at the component's cache price (the result is reused)

    @property
    def price(self) -> Decimal:
        return self.quote.cache_price if self.reused else self.quote.price

    def to_dict(self) -> dict[str, Any]:
        q = self.quote
        return {
            "component": self.component_name,
            "required": self.required,
            "price": str(self.price),
            "reused": self.reused,
            "unit": q.unit,
            "units": str(q.units),
            "cpu_s": float(q.cpu_s),
            "gpu_s": float(q.gpu_s),
            "seconds": float(q.seconds),
            "resolution_factor": str(q.resolution_factor),
            "duration_factor": str(q.duration_factor),
        }


@dataclass(frozen=True, slots=True)
class Eta:
    processing_s: float
    queue_wait_s: float
    runs_ahead: int
    basis: str
    admission_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.admission_s + self.queue_wait_s + self.processing_s


@dataclass(frozen=True, slots=True)
class Estimate:
    """Total price (credits), per-component lines and, when asked for, the ETA."""

    video: VideoParams
    components: tuple[ComponentEstimate, ...]
    total: Decimal
    eta: Eta | None

    @property
    def prices(self) -> dict[str, Decimal]:
        return {c.component_name: c.price for c in self.components}

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``POST /api/estimate`` (credits as decimal strings)."""
        out: dict[str, Any] = {
            "total": str(self.total),
            "currency": "credits",
            "video": {
                "duration_s": self.video.duration_s,
                "width": self.video.width,
                "height": self.video.height,
            },
            "components": [c.to_dict() for c in self.components],
        }
        if self.eta is not None:
            out["eta"] = {
                "total_s": round(self.eta.total_s, 1),
                "processing_s": round(self.eta.processing_s, 1),
                "queue_wait_s": round(self.eta.queue_wait_s, 1),
                "admission_s": round(self.eta.admission_s, 1),
                "runs_ahead": self.eta.runs_ahead,
                "basis": self.eta.basis,
            }
        return out


def check_duration(video: VideoParams, settings: Settings) -> None:
    """The Segmenter's limits, refused before anything is priced or reserved."""
    seg = settings.segmenter
    if video.duration_s < seg.min_duration_s:
        raise VideoTooShort(
            f"the video lasts {video.duration_s:g} s; at least {seg.min_duration_s:g} s needed",
            duration_s=video.duration_s,
            min_duration_s=seg.min_duration_s,
        )
    if video.duration_s > seg.max_duration_s:
        raise VideoTooLong(
            f"the video lasts {video.duration_s:g} s; at most {seg.max_duration_s:g} s allowed",
            duration_s=video.duration_s,
            max_duration_s=seg.max_duration_s,
        )


def priced_lines(config: ProfileConfig) -> list[tuple[str, bool]]:
    """``(line, required)`` of everything a run of ``config`` pays for: each enabled component,
    then the render stage (:data:`RENDER_LINE`, optional) when it renders with ``engine: llm``."""
    lines = [(c.name, c.required) for c in config.enabled]
    if config.render.engine == "llm":
        lines.append((RENDER_LINE, False))
    return lines


async def estimate(
    conn: asyncpg.Connection,
    *,
    profile: ProfileConfig,
    video: VideoParams,
    settings: Settings | None = None,
    reuse: bool = False,
    with_eta: bool = True,
) -> Estimate:
    """Price ``profile`` (resolved by :func:`trendflow.runs.request.resolve_profile`) for
    ``video``.

    ``reuse=True`` prices every component at its cache price (the result of an earlier run is
    reused). Errors: ``video_too_short``/``video_too_long`` (the one duration check of a
    request), ``component_not_found`` (no pricing row), ``config_error`` (a pricing row the
    formula cannot use).
    """
    settings = settings or get_settings()
    check_duration(video, settings)
    config = profile
    priced = priced_lines(config)
    prices = await catalog.get_pricing(conn, component_names=[name for name, _ in priced])
    lines = tuple(
        ComponentEstimate(
            component_name=name,
            required=required,
            quote=quote(prices[name], video, config.sampling.fps),
            reused=reuse,
        )
        for name, required in priced
    )
    total = sum((line.price for line in lines), Decimal(0))
    eta = await _eta(conn, video, lines, settings, reuse) if with_eta else None
    return Estimate(video=video, components=lines, total=total, eta=eta)


async def _eta(
    conn: asyncpg.Connection,
    video: VideoParams,
    lines: tuple[ComponentEstimate, ...],
    settings: Settings,
    reuse: bool,
) -> Eta:
    if reuse:
        processing = 0.0
    else:
        processing = video.duration_s * settings.billing.decode_s_per_video_s + float(
            sum((line.quote.seconds for line in lines), Decimal(0))
        )
    ahead, mean_run_s = await runs_repo.eta_inputs(conn, recent=settings.billing.eta_recent_runs)
    if mean_run_s is not None:
        per_run = mean_run_s
        basis = f"mean wall time of the last {settings.billing.eta_recent_runs} finished runs"
    else:
        per_run = processing
        basis = "no finished runs yet: each run ahead assumed to take as long as this one"
    wait = ahead / settings.runtime.max_concurrent_runs * per_run
    admission = 0.0 if reuse else settings.runtime.admission_window_s
    return Eta(processing_s=processing, queue_wait_s=wait, runs_ahead=ahead, basis=basis,
               admission_s=admission)


__all__ = ["RENDER_LINE", "ComponentEstimate", "Estimate", "Eta", "check_duration", "estimate",
           "priced_lines"]
