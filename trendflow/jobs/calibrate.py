"""Recalibrate per-unit costs from measured component times (DESIGN.md §8).

Reads the measured ``duration_ms`` of recent successful components from the index (the
``run_components`` rows that the scheduler writes and ``trendflow index rebuild`` restores from
the manifests), turns each into seconds per pricing unit (frames the component sampled for that
video's duration, seconds of audio, or one per run — the same count the price uses), and sets the
component's ``cpu_s_per_unit + gpu_s_per_unit`` to the median of those ratios. The CPU/GPU split
keeps the current ratio (all to the GPU for a ``gpu`` engine with no figures yet, else the CPU).
Each change goes through :func:`trendflow.billing.pricing.update_pricing`, so it is validated and
leaves a ``billing_audit`` row (action ``calibration``) with the sample size and errors.

It prints, per component, the estimated vs actual time over the samples before and after, as the
median absolute percentage error (MdAPE). Components with fewer than ``calibration_min_runs``
samples are reported and left alone. ``--dry-run`` prints and changes nothing.

    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 \\
        -- python -m trendflow.jobs.calibrate
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import asyncpg

from trendflow import jobs
from trendflow.billing.pricing import units_for, update_pricing, with_costs
from trendflow.db.pool import open_database
from trendflow.db.repositories import catalog
from trendflow.errors import ConfigError
from trendflow.settings import Settings

PER_UNIT_QUANTUM = Decimal("0.000000001")  # component_pricing.*_s_per_unit is NUMERIC(20, 9)


@dataclass(frozen=True, slots=True)
class Sample:
    """One measured component: its wall time and the video it ran on."""

    component_name: str
    seconds: float
    duration_s: float
    fps: float


@dataclass(frozen=True, slots=True)
class ComponentCalibration:
    component_name: str
    samples: int
    unit: str
    old_s_per_unit: Decimal
    new_s_per_unit: Decimal | None  # None: too few samples, unchanged
    mdape_before: float
    mdape_after: float | None
    median_actual_s: float
    median_estimated_s: float

    def line(self) -> str:
        new = "unchanged" if self.new_s_per_unit is None else f"{self.new_s_per_unit:.9f}"
        after = "-" if self.mdape_after is None else f"{self.mdape_after:6.1f}%"
        return (
            f"{self.component_name:<22} {self.samples:>5} {self.unit:<13} "
            f"{self.median_estimated_s:>10.3f} {self.median_actual_s:>10.3f} "
            f"{self.mdape_before:>7.1f}% {after:>7} {self.old_s_per_unit:.9f} -> {new}"
        )


HEADER = (
    f"{'component':<22} {'runs':>5} {'unit':<13} {'est_s':>10} {'actual_s':>10} "
    f"{'MdAPE':>8} {'after':>7} s_per_unit"
)


async def collect_samples(conn: asyncpg.Connection, *, max_runs: int) -> list[Sample]:
    """The newest ``max_runs`` measured successes per component (original runs only)."""
    rows = await conn.fetch(
        """
        SELECT component_name, duration_ms, duration_s, fps FROM (
            SELECT rc.component_name, rc.duration_ms, v.duration_s,
                   (r.profile_config -> 'sampling' ->> 'fps')::float AS fps,
                   row_number() OVER (PARTITION BY rc.component_name
                                      ORDER BY rc.finished_at DESC) AS n
            FROM run_components rc
            JOIN runs r ON r.run_id = rc.run_id
            JOIN videos v ON v.platform_id = r.platform_id AND v.video_id = r.video_id
            WHERE rc.status = 'ok' AND rc.duration_ms IS NOT NULL
              AND r.reused_from_run_id IS NULL AND v.duration_s > 0
              AND r.profile_config -> 'sampling' ? 'fps'
        ) recent WHERE n <= $1
        """,
        max_runs,
    )
    return [
        Sample(r["component_name"], r["duration_ms"] / 1000.0, r["duration_s"], r["fps"])
        for r in rows
    ]


def fit_seconds_per_unit(units: Sequence[float], actual: Sequence[float]) -> Decimal:
    """The calibration rule: the median of measured seconds per unit."""
    ratios = [a / u for a, u in zip(actual, units, strict=True) if u > 0]
    if not ratios:
        raise ValueError("no samples with a positive unit count")
    return Decimal(str(statistics.median(ratios))).quantize(PER_UNIT_QUANTUM, ROUND_HALF_UP)


def mdape(estimated: Sequence[float], actual: Sequence[float]) -> float:
    """Median absolute percentage error of ``estimated`` against ``actual``, in percent."""
    errors = [abs(e - a) / a * 100.0 for e, a in zip(estimated, actual, strict=True) if a > 0]
    if not errors:
        raise ValueError("no positive actual times to compare against")
    return statistics.median(errors)


async def calibrate(
    conn: asyncpg.Connection, *, settings: Settings, apply: bool, actor: str
) -> list[ComponentCalibration]:
    """Fit and (with ``apply``) save per-unit costs; one report line per measured component."""
    samples = await collect_samples(conn, max_runs=settings.billing.calibration_max_runs)
    by_component: dict[str, list[Sample]] = {}
    for s in samples:
        by_component.setdefault(s.component_name, []).append(s)
    if not by_component:
        return []
    prices = await catalog.get_pricing(conn, component_names=list(by_component))
    engines = await catalog.get_resource_requirements(conn)
    report: list[ComponentCalibration] = []
    for name in sorted(by_component):
        price, group = prices[name], by_component[name]
        units = [float(units_for(price, s.duration_s, s.fps)) for s in group]
        actual = [s.seconds for s in group]
        old = price.cpu_s_per_unit + price.gpu_s_per_unit
        before = [u * float(old) for u in units]
        ratios = [a / u for a, u in zip(actual, units, strict=True) if u > 0]
        entry = ComponentCalibration(
            component_name=name, samples=len(group), unit=price.unit, old_s_per_unit=old,
            new_s_per_unit=None, mdape_before=mdape(before, actual), mdape_after=None,
            median_actual_s=statistics.median(actual),
            median_estimated_s=statistics.median(before),
        )
        if len(ratios) < settings.billing.calibration_min_runs:
            report.append(entry)
            continue
        new = fit_seconds_per_unit(units, actual)
        if old > 0:
            cpu = (new * price.cpu_s_per_unit / old).quantize(PER_UNIT_QUANTUM, ROUND_HALF_UP)
        else:
            if name not in engines:
                raise ConfigError(
                    f"{name} has no per-unit costs and no resource requirements to tell CPU "
                    "from GPU; set them (`trendflow db seed`) before calibrating",
                    component=name,
                )
            cpu = Decimal(0) if engines[name].engine == "gpu" else new
        gpu = new - cpu
        after = [u * float(new) for u in units]
        entry = ComponentCalibration(
            component_name=name, samples=len(group), unit=price.unit, old_s_per_unit=old,
            new_s_per_unit=new, mdape_before=entry.mdape_before, mdape_after=mdape(after, actual),
            median_actual_s=entry.median_actual_s, median_estimated_s=entry.median_estimated_s,
        )
        report.append(entry)
        if apply and new != old:
            await update_pricing(
                conn,
                price=with_costs(
                    price, cpu_s_per_unit=cpu, gpu_s_per_unit=gpu,
                    source=f"calibrated from {len(group)} measured runs (median s per "
                    f"{price.unit})",
                ),
                actor=actor,
                reason=f"calibration from {len(group)} measured runs",
                action="calibration",
                details={
                    "samples": len(group),
                    "mdape_before": round(entry.mdape_before, 2),
                    "mdape_after": round(entry.mdape_after or 0.0, 2),
                },
            )
    return report


async def run_job(args: argparse.Namespace, settings: Settings) -> int:
    db = await open_database(settings, migrate=False)
    try:
        async with db.acquire() as conn:
            report = await calibrate(conn, settings=settings, apply=not args.dry_run,
                                     actor=args.actor)
    finally:
        await db.close()
    if not report:
        print("calibrate: no measured components in the index yet; nothing changed", flush=True)
        return 0
    print(HEADER, flush=True)
    for entry in report:
        print(entry.line(), flush=True)
    skipped = [e.component_name for e in report if e.new_s_per_unit is None]
    if skipped:
        print(f"left unchanged (fewer than {settings.billing.calibration_min_runs} runs): "
              f"{', '.join(skipped)}", flush=True)
    print("dry run: nothing written" if args.dry_run else "saved, with billing_audit rows",
          flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trendflow.jobs.calibrate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="print, change nothing")
    parser.add_argument("--actor", default="calibration-job",
                        help="who the audit rows name (default: calibration-job)")
    return parser


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    return jobs.run_job(build_parser(), run_job, argv, settings)


if __name__ == "__main__":
    sys.exit(main())
