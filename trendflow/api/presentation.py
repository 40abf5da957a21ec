"""JSON for the frontend, made from the NPZ on the way out (no JSON is stored beside them).

Every key of a component's NPZ appears with its dtype, shape, unit and description from the
component schema (``schemas/components/<name>.schema.json``) and its values: numbers as JSON
numbers (NaN/±inf as ``null``), strings as strings, arrays as nested lists. ``meta`` becomes the
component's identity block.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trendflow.contracts.npz import decode_npz
from trendflow.contracts.schemas import load_component_schema


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def array_json(array: np.ndarray) -> Any:
    """A numpy array as plain JSON values."""
    if array.dtype.kind in "US":
        return array.astype(str).tolist()
    if array.dtype.kind == "b":
        return array.tolist()
    if array.dtype.kind in "iu":
        return array.tolist()
    return _plain(array.astype(np.float64).tolist())


def component_json(name: str, data: bytes) -> dict[str, Any]:
    """The presentation JSON of one component's NPZ bytes."""
    artifact = decode_npz(data, where=f"{name}.npz")
    schema = load_component_schema(name)
    keys: dict[str, Any] = {}
    for key, array in sorted(artifact.arrays.items()):
        spec = schema.specs.get(key)
        keys[key] = {
            "dtype": str(array.dtype),
            "shape": list(array.shape),
            "unit": spec.unit if spec is not None else None,
            "description": spec.description if spec is not None else None,
            "value": array_json(array),
        }
    meta = artifact.meta.model_dump(mode="json")
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
