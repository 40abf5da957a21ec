"""The deterministic ``template`` report of a run: data-driven sentences about its findings.

Every number comes from the run's NPZ artifacts; nothing is invented and no LLM is called
(``engine = "template"``). Components without a sentence rule still contribute their scalar
keys as plain findings; an ``empty`` component says why it is empty.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

ENGINE = "template"
TEMPLATE_VERSION = "template-v1"


@dataclass(frozen=True, slots=True)
class Finding:
    component: str
    key: str
    value: float | int | bool | str
    unit: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"component": self.component, "key": self.key, "value": self.value,
                "unit": self.unit}


Arrays = Mapping[str, np.ndarray]


def _f(arrays: Arrays, key: str) -> float | None:
    if key not in arrays or arrays[key].shape != ():
        return None
    value = float(arrays[key])
    return None if np.isnan(value) else value


def _shots(a: Arrays) -> list[str]:
    cpm, n = _f(a, "cuts_per_minute"), _f(a, "n_cuts")
    out = []
    if cpm is not None and n is not None:
        pace = "fast" if cpm >= 20 else "moderate" if cpm >= 6 else "slow"
        out.append(f"The edit has {int(n)} cuts, {cpm:.1f} per minute: a {pace} pace.")
    mean = _f(a, "mean_shot_length_s")
    if mean is not None:
        out.append(f"Shots last {mean:.1f} s on average.")
    return out


def _color(a: Arrays) -> list[str]:
    b, s, c = _f(a, "brightness_mean"), _f(a, "saturation_mean"), _f(a, "contrast_mean")
    out = []
    if b is not None:
        tone = "bright" if b >= 0.6 else "dark" if b < 0.3 else "mid-toned"
        out.append(f"The picture is {tone} (mean brightness {b:.2f} on a 0-1 scale).")
    if s is not None and c is not None:
        out.append(f"Mean saturation is {s:.2f} and contrast {c:.2f}.")
    return out


def _motion(a: Arrays) -> list[str]:
    m, static = _f(a, "motion_mean"), _f(a, "static_ratio")
    out = []
    if m is not None:
        out.append(f"Mean motion is {m:.3g} frame heights per second.")
    if static is not None:
        out.append(f"{static * 100:.0f} % of the frames are nearly static.")
    return out


def _loudness(a: Arrays) -> list[str]:
    lufs, peak = _f(a, "integrated_lufs"), _f(a, "true_peak_dbtp")
    out = []
    if lufs is not None:
        if lufs <= -70:
            out.append("The soundtrack is silent or nearly so.")
        else:
            target = ("louder than" if lufs > -13 else "quieter than" if lufs < -15
                      else "close to")
            out.append(f"Integrated loudness is {lufs:.1f} LUFS, {target} the -14 LUFS that "
                       "streaming platforms normalise to.")
    if peak is not None and peak > -1.0:
        out.append(f"The true peak reaches {peak:.1f} dBTP: above -1 dBTP it may clip after "
                   "encoding.")
    return out


def _audio(a: Arrays) -> list[str]:
    tempo, onsets = _f(a, "tempo_bpm"), _f(a, "onset_rate_per_s")
    out = []
    if tempo is not None and tempo > 0:
        out.append(f"The estimated tempo is {tempo:.0f} BPM.")
    if onsets is not None:
        out.append(f"There are {onsets:.1f} sound onsets per second.")
    return out


def _metadata(a: Arrays) -> list[str]:
    d, w, h = _f(a, "duration_s"), _f(a, "width"), _f(a, "height")
    out = []
    if d is not None and w is not None and h is not None:
        shape = "vertical" if h > w else "square" if h == w else "horizontal"
        out.append(f"The video lasts {d:.1f} s at {int(w)}x{int(h)} ({shape}).")
    return out


def _forecast(a: Arrays) -> list[str]:
    from trendflow.forecast.present import TOP_WHATIFS, forecast_json, whatif_text

    doc = forecast_json(a, None)
    out = [f"Forecast: {doc['display']['views']}; {doc['display']['likes']}."]
    return out + [whatif_text(w) for w in doc["whatifs"][:TOP_WHATIFS]]


RULES: dict[str, Callable[[Arrays], list[str]]] = {
    "popularity_prediction": _forecast,
    "metadata_features": _metadata,
    "shot_detection": _shots,
    "color_stats": _color,
    "motion": _motion,
    "loudness": _loudness,
    "audio_features": _audio,
}

_SKIP = frozenset({"frame_indices", "timestamps_s"})


def findings(component: str, arrays: Arrays, units: Mapping[str, str | None]) -> list[Finding]:
    """Every scalar key of one component's NPZ as a finding."""
    out = []
    for key in sorted(arrays):
        arr = arrays[key]
        if key in _SKIP or arr.shape != () or arr.dtype.kind not in "biuf":
            continue
        raw = arr.item()
        if isinstance(raw, float) and np.isnan(raw):
            continue
        out.append(Finding(component, key, raw, units.get(key)))
    return out


def render(components: Mapping[str, tuple[str, str | None, Arrays]]) -> list[str]:
    """Sentences for ``{component: (status, empty_reason, arrays)}``, in a stable order."""
    sentences: list[str] = []
    for name in sorted(components, key=lambda n: (n not in RULES, list(RULES).index(n)
                                                  if n in RULES else 0, n)):
        status, empty_reason, arrays = components[name]
        if status == "empty":
            sentences.append(f"{name}: no result ({empty_reason}).")
            continue
        rule = RULES.get(name)
        if rule is not None:
            sentences += rule(arrays)
    return sentences
