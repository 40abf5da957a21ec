"""JSON for the frontend, made from the NPZ on the way out (no JSON is stored beside them).

Every key of a component's NPZ appears with its dtype, shape, unit and description from the
component schema (``schemas/components/<name>.schema.json``) and its values: numbers as JSON
numbers (NaN/±inf as ``null``), strings as strings, arrays as nested lists. ``meta`` becomes the
component's identity block.

**Sized for a browser.** A varying dimension (``n_frames``, ``n_windows``, ``n_faces`` …) longer
than :data:`MAX_POINTS` rows, or than :data:`MAX_CELLS` values over all its keys, is cut into
``m`` equal-count buckets (the most both limits allow), the same for every key on it,
so the keys of one dimension stay aligned: bucket ``i`` holds rows
``floor(i·n/m) … floor((i+1)·n/m) − 1``. A 1-D float key becomes each bucket's mean (a curve keeps
its level; its timestamps are averaged the same way); every other key keeps each bucket's first
row (indices, colours, boxes stay real rows). A ``row`` key that points into a bucketed dimension
points to the bucket holding that row. Such a key carries ``downsampled: {from, to, method}``;
the shape shown is the original's. Arrays (not scalars) are written at float32 precision
(7 significant digits). The NPZ download keeps every row and every digit: a 20-minute video's
page JSON is well under 1 MB, its NPZ files are not.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trendflow.contracts.arrays import ArraySpec
from trendflow.contracts.npz import decode_npz
from trendflow.contracts.schemas import load_component_schema

MAX_POINTS = 2000
"""The most rows of any varying dimension the page's JSON carries (a chart is ~1,000–2,000 px
wide: more points than pixels draw nothing more)."""
MAX_CELLS = 12_000
"""The most values one dimension carries over all its keys (a per-frame palette of 5 colours
counts 15 per row): what keeps a 20-minute video's page JSON under 1 MB."""
# Dimensions that are not series: bytes of text and model vector sizes are never cut.
_WHOLE_DIMS = frozenset({"n_text_bytes", "embedding_dim"})


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def array_json(array: np.ndarray, *, digits: int = 7) -> Any:
    """A numpy array as plain JSON values; float arrays rounded to ``digits`` significant
    digits (scalars whole)."""
    if array.dtype.kind in "US":
        return array.astype(str).tolist()
    if array.dtype.kind == "b":
        return array.tolist()
    if array.dtype.kind in "iu":
        return array.tolist()
    if array.ndim == 0:
        return _plain(float(array))
    # Short text for the wire: 0.1235 instead of 0.12345679104328156.
    as_text = np.char.mod(f"%.{digits}g", array.astype(np.float64))
    return _plain(np.vectorize(float, otypes=[object])(as_text).tolist())


def _digits(spec: ArraySpec | None) -> int:
    """Times keep 7 significant digits (1 ms up to 2.7 h); other measures 4 (0.01 % of their
    value, finer than a chart draws)."""
    return 7 if spec is None or spec.unit in ("s", None) else 4


def bucket_starts(n: int, m: int) -> np.ndarray:
    """First row of each of ``m`` equal-count buckets over ``n`` rows (``m < n``)."""
    return (np.arange(m, dtype=np.int64) * n) // m


def _dims(key: str, array: np.ndarray, spec: ArraySpec | None) -> list[str | None]:
    """The name of each axis of ``array`` that may be bucketed (None: keep it whole)."""
    names: list[str | None] = []
    for axis in range(array.ndim):
        dim = spec.shape[axis] if spec is not None and axis < len(spec.shape) else None
        if isinstance(dim, str):
            names.append(None if dim in _WHOLE_DIMS else dim)
        else:  # a fixed size, or a key the schema does not know: its own dimension
            names.append(None if spec is not None else f"{key}[{axis}]")
    return names


def downsample(
    arrays: dict[str, np.ndarray],
    specs: dict[str, ArraySpec],
    *,
    max_points: int = MAX_POINTS,
    max_cells: int = MAX_CELLS,
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    """The arrays with every varying dimension bucketed to at most ``max_points`` rows and
    ``max_cells`` values over all its keys (see the module docstring), and per changed key
    ``{from, to, method}``."""
    dims = {k: _dims(k, a, specs.get(k)) for k, a in arrays.items()}
    sizes: dict[str, int] = {}
    row_cells: dict[str, int] = {}
    for key, names in dims.items():
        for axis, name in enumerate(names):
            if name is not None:
                sizes[name] = arrays[key].shape[axis]
                width = arrays[key].size // max(arrays[key].shape[axis], 1)
                row_cells[name] = row_cells.get(name, 0) + max(width, 1)
    rows = {name: min(max_points, max(1, max_cells // row_cells[name])) for name in sizes}
    starts = {name: bucket_starts(n, rows[name]) for name, n in sizes.items() if n > rows[name]}
    if not starts:
        return arrays, {}
    others = list(starts)
    out = dict(arrays)
    notes: dict[str, dict[str, Any]] = {}
    for key, array in arrays.items():
        names = dims[key]
        value = array
        method = None
        for axis, name in enumerate(names):
            if name not in starts:
                continue
            if value.ndim == 1 and value.dtype.kind == "f":
                counts = np.diff(np.append(starts[name], value.shape[0]))
                value = np.add.reduceat(value.astype(np.float64), starts[name]) / counts
                method = "mean"
            else:
                value = np.take(value, starts[name], axis=axis)
                method = method or "first"
            notes[key] = {"from": int(array.shape[axis]), "to": int(value.shape[axis]),
                          "method": method}
        spec = specs.get(key)
        if spec is not None and spec.unit == "row" and value.dtype.kind == "i":
            own = {n for n in names if n is not None}
            target = [n for n in others if n not in own]
            if len(target) == 1:  # a row of the component's other (bucketed) dimension
                mapped = np.searchsorted(starts[target[0]], value, side="right") - 1
                value = np.where(value < 0, value, mapped).astype(value.dtype)
                notes.setdefault(key, {})["rows_of"] = target[0]
        out[key] = value
    return out, notes


def component_json(
    name: str, data: bytes, *, max_points: int = MAX_POINTS, max_cells: int = MAX_CELLS,
    run_id: str | None = None,
) -> dict[str, Any]:
    """The presentation JSON of one component's NPZ bytes, bucketed (:func:`downsample`);
    ``run_id``: the run it is shown for (a reuse never shows the cached run's id)."""
    artifact = decode_npz(data, where=f"{name}.npz")
    schema = load_component_schema(name)
    shown, notes = downsample(dict(artifact.arrays), schema.specs, max_points=max_points,
                              max_cells=max_cells)
    keys: dict[str, Any] = {}
    for key, array in sorted(artifact.arrays.items()):
        spec = schema.specs.get(key)
        keys[key] = {
            "dtype": str(array.dtype),
            "shape": list(array.shape),
            "unit": spec.unit if spec is not None else None,
            "description": spec.description if spec is not None else None,
            "value": array_json(shown[key], digits=_digits(spec)),
        }
        if key in notes:
            keys[key]["downsampled"] = notes[key]
    meta = artifact.meta.model_dump(mode="json")
    if run_id is not None and "run_id" in meta:
        meta["run_id"] = run_id
    return {
        "component": name,
        "status": meta.get("status"),
        "empty_reason": meta.get("empty_reason"),
        "schema_version": meta.get("schema_version"),
        "meta": meta,
        "keys": keys,
    }


def headline(doc: dict[str, Any], *, limit: int = 4) -> list[str]:
    """A few scalar findings of a component (for CLI summaries): ``key = value unit``."""
    lines: list[str] = []
    for key, item in doc["keys"].items():
        if item["shape"] == [] and item["value"] is not None:
            value = item["value"]
            shown = f"{value:.3g}" if isinstance(value, float) else str(value)
            unit = f" {item['unit']}" if item.get("unit") else ""
            lines.append(f"{key} = {shown}{unit}")
        if len(lines) >= limit:
            break
    return lines
