"""The forecast as people read it: JSON for the API and the one display string.

``12 k views (8 k – 19 k, 80 % interval) at 30 days``: the p50 with the p10–p90 interval and the
horizon. A model without an age input (the default one: its labels carry no publish time) cannot
say *when*; its string ends "at the age of its training labels" instead of claiming a horizon.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from trendflow.forecast.tier0 import AGE_FEATURE

TOP_CONTRIBUTIONS = 8
TOP_WHATIFS = 3
"""What-ifs the report and ``trendflow analyze`` show (the largest changes of p50 first)."""


def short_count(value: float) -> str:
    """``12345`` → ``12 k``; ``8240`` → ``8.2 k``; ``3400000`` → ``3.4 M``; below 1000 as is."""
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            scaled = value / size
            text = f"{scaled:.1f}" if scaled < 10 else f"{scaled:.0f}"
            return f"{text.removesuffix('.0')} {unit}"
    return f"{round(value)}"


def display(counts: np.ndarray, what: str, horizon_days: float, age_modelled: bool) -> str:
    """The display string of one target's ``[p10, p50, p90]``."""
    p10, p50, p90 = (float(v) for v in counts)
    when = (f"at {horizon_days:g} days" if age_modelled
            else "at the age of its training labels")
    return (f"{short_count(p50)} {what} ({short_count(p10)} – {short_count(p90)}, "
            f"80 % interval) {when}")


def whatif_text(whatif: Mapping[str, Any]) -> str:
    """One what-if of :func:`forecast_json` as people read it:
    ``With 15 tags, the median forecast would be 14 k views (+17 %, 80 % 9 k – 22 k).``"""
    moved = whatif["views"]
    ratio = whatif["change_p50_ratio"]
    change = f"{100 * (ratio - 1):+.0f} %, " if ratio is not None else ""
    return (f"With {whatif['label']}, the median forecast would be "
            f"{short_count(moved['p50'])} views ({change}80 % {short_count(moved['p10'])} – "
            f"{short_count(moved['p90'])}).")


def _texts(buf: np.ndarray, spans: np.ndarray) -> list[str]:
    raw = bytes(np.asarray(buf, np.uint8))
    return [raw[a:b].decode("utf-8") for a, b in np.asarray(spans).reshape(-1, 2)]


def forecast_json(arrays: Mapping[str, np.ndarray], model: str | None) -> dict[str, Any]:
    """``popularity_prediction``'s arrays → forecast, top contributions and what-ifs."""
    groups = _texts(arrays["contribution_groups_utf8"], arrays["contribution_group_spans"])
    horizon = float(arrays["horizon_days"])
    age_modelled = AGE_FEATURE in groups
    views, likes = np.asarray(arrays["views"]), np.asarray(arrays["likes"])
    contrib = np.asarray(arrays["contributions"])
    order = np.argsort(-np.abs(contrib[0]), kind="stable")[:TOP_CONTRIBUTIONS]
    whatifs = []
    for i, spec in enumerate(_texts(arrays["whatif_utf8"], arrays["whatif_spans"])):
        info = json.loads(spec)
        moved = np.asarray(arrays["whatif_views"][i])
        whatifs.append({
            **info,
            "current": float(arrays["whatif_current"][i]),
            "target": float(arrays["whatif_target"][i]),
            "views": {"p10": float(moved[0]), "p50": float(moved[1]), "p90": float(moved[2])},
            "change_p50_views": float(moved[1] - views[1]),
            "change_p50_ratio": float(moved[1] / views[1]) if views[1] > 0 else None,
        })
    whatifs.sort(key=lambda w: -abs(w["change_p50_views"]))
    return {
        "model": model,
        "horizon_days": horizon,
        "age_modelled": age_modelled,
        "views": {"p10": float(views[0]), "p50": float(views[1]), "p90": float(views[2])},
        "likes": {"p10": float(likes[0]), "p50": float(likes[1]), "p90": float(likes[2])},
        "display": {
            "views": display(views, "views", horizon, age_modelled),
            "likes": display(likes, "likes", horizon, age_modelled),
        },
        "contributions": [
            {"feature": groups[j], "log1p_views": float(contrib[0, j]),
             "log1p_likes": float(contrib[1, j])}
            for j in order
        ],
        "whatifs": whatifs,
    }


__all__ = ["TOP_WHATIFS", "display", "forecast_json", "short_count", "whatif_text"]
