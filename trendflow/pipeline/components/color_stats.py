"""``color_stats``: brightness, contrast, saturation, colorfulness, warmth and palette per frame.

Per sampled frame (default 2 fps), on the frame shrunk to :data:`WORK_WIDTH` px wide:

- ``brightness``: mean luma Y' (BT.601 weights) in [0, 1]; ``contrast``: its standard deviation.
- ``saturation``: mean HSV saturation in [0, 1].
- ``colorfulness``: Hasler & Süsstrunk (2003) ``σ_rgyb + 0.3·μ_rgyb`` on 0–255 RGB, where
  ``rg = R − G`` and ``yb = (R + G)/2 − B``; ~0 for grey, ~33 "moderately", > 100 "extremely".
- ``warm_fraction`` / ``cool_fraction``: share of pixels that are chromatic (S ≥ 0.2, V ≥ 0.2)
  with a warm hue (red–orange–yellow: [330°, 360°) ∪ [0°, 75°)) / a cool hue (cyan–blue:
  [165°, 270°)). Greens and purples count as neither.
- ``palette_rgb`` / ``palette_share``: :data:`PALETTE_SIZE` dominant colours by k-means in CIE
  Lab (k-means++ seeded with :data:`SEED`, at most 10 iterations) on a 32-px-wide thumbnail,
  sorted by share; frames with fewer distinct colours pad with share 0 and colour 0.

Video-level: mean and standard deviation of every per-frame measure, ``warm_cool_balance``
``(W − C)/(W + C)`` over all frames (0 when no pixel is chromatic), and a video palette from a
share-weighted k-means over every frame's palette.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import cv2
import numpy as np

from trendflow.contracts.arrays import ArraySpec
from trendflow.pipeline.components.base import (
    Component,
    ComponentChunk,
    ComponentResult,
    Input,
    Resources,
    frame_outputs,
)
from trendflow.pipeline.sampling import Sampling

WORK_WIDTH = 160
THUMB_WIDTH = 32
PALETTE_SIZE = 5
SEED = 0

_SCALARS = ("brightness", "contrast", "saturation", "colorfulness", "warm_fraction",
            "cool_fraction")
_SCALAR_DOCS: dict[str, tuple[str, str]] = {
    "brightness": ("Mean luma Y' (BT.601).", "0-1"),
    "contrast": ("Standard deviation of luma Y'.", "0-1"),
    "saturation": ("Mean HSV saturation.", "0-1"),
    "colorfulness": ("Hasler–Süsstrunk colourfulness on 0–255 RGB.", "M (H&S)"),
    "warm_fraction": ("Share of chromatic pixels with a warm hue.", "ratio"),
    "cool_fraction": ("Share of chromatic pixels with a cool hue.", "ratio"),
}


def _resize(frame: np.ndarray, width: int) -> np.ndarray:
    h, w = frame.shape[:2]
    return cv2.resize(
        frame, (width, max(2, round(h * width / w))), interpolation=cv2.INTER_AREA
    )


def frame_measures(frame: np.ndarray) -> dict[str, float]:
    """The six scalar measures of one RGB uint8 frame (already shrunk is fine)."""
    rgb = frame.astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luma = (0.299 * r + 0.587 * g + 0.114 * b) / 255.0
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV_FULL)  # H in 0..255 for 0..360°
    hue = hsv[..., 0].astype(np.float32) * (360.0 / 256.0)
    sat = hsv[..., 1].astype(np.float32) / 255.0
    val = hsv[..., 2].astype(np.float32) / 255.0
    rg = r - g
    yb = 0.5 * (r + g) - b
    sigma = float(np.sqrt(rg.std() ** 2 + yb.std() ** 2))
    mu = float(np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))
    chromatic = (sat >= 0.2) & (val >= 0.2)
    warm = chromatic & ((hue >= 330.0) | (hue < 75.0))
    cool = chromatic & (hue >= 165.0) & (hue < 270.0)
    return {
        "brightness": float(luma.mean()),
        "contrast": float(luma.std()),
        "saturation": float(sat.mean()),
        "colorfulness": sigma + 0.3 * mu,
        "warm_fraction": float(warm.mean()),
        "cool_fraction": float(cool.mean()),
    }


def _nearest(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    d2 = ((points[:, None, :] - centers[None]) ** 2).sum(-1)
    return d2.argmin(1)


def kmeans(
    points: np.ndarray, weights: np.ndarray, k: int, *, seed: int = SEED, iters: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted k-means (k-means++ init, fixed seed): centers ``[k', d]`` and shares ``[k']``.

    ``k' = min(k, distinct points)``; shares sum to 1 and are sorted descending. Deterministic for
    identical input.
    """
    uniq, inverse = np.unique(points, axis=0, return_inverse=True)
    w_uniq = np.bincount(inverse.ravel(), weights=weights, minlength=len(uniq))
    if len(uniq) <= k:
        centers, mass = uniq.astype(np.float64), w_uniq
    else:
        rng = np.random.default_rng(seed)
        pts = uniq.astype(np.float64)
        first = int(np.argmax(w_uniq))
        centers = pts[[first]]
        for _ in range(1, k):
            d2 = ((pts[:, None, :] - centers[None]) ** 2).sum(-1).min(1) * w_uniq
            total = d2.sum()
            nxt = int(rng.choice(len(pts), p=d2 / total)) if total > 0 else int(np.argmin(d2))
            centers = np.vstack([centers, pts[nxt]])
        for _ in range(iters):
            labels = _nearest(pts, centers)
            mass = np.bincount(labels, weights=w_uniq, minlength=k)
            sums = np.stack(
                [np.bincount(labels, weights=w_uniq * pts[:, d], minlength=k) for d in range(3)],
                axis=1,
            )
            new = np.where(mass[:, None] > 0, sums / np.maximum(mass, 1e-12)[:, None], centers)
            moved = float(np.abs(new - centers).max())
            centers = new
            if moved < 1e-3:
                break
        labels = _nearest(pts, centers)
        mass = np.bincount(labels, weights=w_uniq, minlength=k)
    order = np.lexsort((np.arange(len(mass)), -mass))
    total = mass.sum()
    return centers[order], (mass[order] / total if total > 0 else mass[order])


def _lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    lab8 = np.clip(np.rint(lab), 0, 255).astype(np.uint8).reshape(-1, 1, 3)
    return cv2.cvtColor(lab8, cv2.COLOR_Lab2RGB).reshape(-1, 3)


def palette(frame: np.ndarray, k: int = PALETTE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """``(rgb uint8 [k, 3], share float32 [k])`` dominant colours of one frame (padded)."""
    thumb = _resize(frame, THUMB_WIDTH)
    lab = cv2.cvtColor(thumb, cv2.COLOR_RGB2Lab).reshape(-1, 3)
    centers, shares = kmeans(lab, np.ones(len(lab)), k)
    return _pad(_lab_to_rgb(centers), shares, k)


def _pad(rgb: np.ndarray, shares: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    out_rgb = np.zeros((k, 3), dtype=np.uint8)
    out_share = np.zeros(k, dtype=np.float32)
    out_rgb[: len(rgb)] = rgb
    out_share[: len(shares)] = shares
    return out_rgb, out_share


class ColorStats(Component):
    """Per-frame colour measures and palettes plus video summaries (see the module docstring).

    ``RESOURCES`` were measured by ``benchmarks/bench_components.py`` on a 60 s 1080p clip: one
    core; memory = peak RSS growth (0.6 MB) rounded up to 16 MB with a 64 MB floor. The chunk's
    frames are not counted: the runtime hands them over zero-copy from the object store.
    """

    NAME: ClassVar[str] = "color_stats"
    SCHEMA_VERSION: ClassVar[int] = 1
    PRODUCER_VERSION: ClassVar[str] = "1.0.0"
    RESOURCES: ClassVar[Resources] = Resources(cpus=1.0, memory_mb=64)
    TIER: ClassVar[int] = 0
    INPUTS: ClassVar[frozenset[Input]] = frozenset({Input.FRAMES})
    SAMPLING: ClassVar[Sampling | None] = Sampling.at_fps(2.0)
    DESCRIPTION: ClassVar[str] = (
        "Brightness, contrast, saturation, colourfulness, warmth and dominant colours."
    )

    @classmethod
    def outputs(cls) -> dict[str, ArraySpec]:
        specs = frame_outputs()
        for name in _SCALARS:
            desc, unit = _SCALAR_DOCS[name]
            specs[name] = ArraySpec("float32", ("n_frames",), f"Per frame: {desc}", unit)
        for name in _SCALARS:
            desc, unit = _SCALAR_DOCS[name]
            specs[f"{name}_mean"] = ArraySpec("float64", (), f"Video mean of: {desc}", unit)
            specs[f"{name}_std"] = ArraySpec(
                "float64", (), f"Video standard deviation of: {desc}", unit
            )
        specs |= {
            "palette_rgb": ArraySpec(
                "uint8", ("n_frames", PALETTE_SIZE, 3),
                "Per frame: dominant colours (RGB), most common first; padding is 0.", "RGB 0-255",
            ),
            "palette_share": ArraySpec(
                "float32", ("n_frames", PALETTE_SIZE),
                "Per frame: pixel share of each palette colour (0 for padding).", "ratio",
            ),
            "video_palette_rgb": ArraySpec(
                "uint8", (PALETTE_SIZE, 3), "Dominant colours of the whole video (RGB).",
                "RGB 0-255",
            ),
            "video_palette_share": ArraySpec(
                "float32", (PALETTE_SIZE,), "Share of each video palette colour.", "ratio"
            ),
            "warm_cool_balance": ArraySpec(
                "float64", (), "(warm − cool)/(warm + cool) over all frames; 0 if neither.",
                "-1..1",
            ),
        }
        return specs

    def map(self, chunk: ComponentChunk) -> dict[str, np.ndarray]:
        n = len(chunk.frame_indices)
        values = {name: np.zeros(n, dtype=np.float32) for name in _SCALARS}
        pal_rgb = np.zeros((n, PALETTE_SIZE, 3), dtype=np.uint8)
        pal_share = np.zeros((n, PALETTE_SIZE), dtype=np.float32)
        for i, frame in enumerate(chunk.frames):
            small = _resize(frame, WORK_WIDTH)
            for name, value in frame_measures(small).items():
                values[name][i] = value
            pal_rgb[i], pal_share[i] = palette(small)
        return values | {"palette_rgb": pal_rgb, "palette_share": pal_share}

    def reduce(self, partials: Sequence[Any]) -> ComponentResult:
        ctx = self.context
        assert ctx.frame_indices is not None and ctx.timestamps_s is not None
        keys = (*_SCALARS, "palette_rgb", "palette_share")
        if partials:
            per = {key: np.concatenate([p[key] for p in partials]) for key in keys}
        else:
            per = {key: np.zeros(0, np.float32) for key in _SCALARS}
            per["palette_rgb"] = np.zeros((0, PALETTE_SIZE, 3), np.uint8)
            per["palette_share"] = np.zeros((0, PALETTE_SIZE), np.float32)
        if len(per["brightness"]) != len(ctx.frame_indices):
            raise ValueError(
                f"{self.NAME}: {len(per['brightness'])} frames measured, "
                f"{len(ctx.frame_indices)} sampled"
            )
        arrays: dict[str, np.ndarray] = {
            "frame_indices": ctx.frame_indices.astype(np.int64),
            "timestamps_s": ctx.timestamps_s.astype(np.float64),
            **per,
        }
        for name in _SCALARS:
            v = per[name].astype(np.float64)
            arrays[f"{name}_mean"] = np.array(v.mean() if len(v) else 0.0)
            arrays[f"{name}_std"] = np.array(v.std() if len(v) else 0.0)
        warm, cool = float(per["warm_fraction"].sum()), float(per["cool_fraction"].sum())
        arrays["warm_cool_balance"] = np.array(
            (warm - cool) / (warm + cool) if warm + cool > 0 else 0.0
        )
        arrays["video_palette_rgb"], arrays["video_palette_share"] = self._video_palette(
            per["palette_rgb"], per["palette_share"]
        )
        return ComponentResult(arrays)

    @staticmethod
    def _video_palette(rgb: np.ndarray, share: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mask = share.ravel() > 0
        if not mask.any():
            return _pad(np.zeros((0, 3), np.uint8), np.zeros(0, np.float32), PALETTE_SIZE)
        colours = rgb.reshape(-1, 3)[mask]
        lab = cv2.cvtColor(colours.reshape(-1, 1, 3), cv2.COLOR_RGB2Lab).reshape(-1, 3)
        centers, shares = kmeans(lab, share.ravel()[mask].astype(np.float64), PALETTE_SIZE)
        return _pad(_lab_to_rgb(centers), shares, PALETTE_SIZE)
