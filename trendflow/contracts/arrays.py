"""Array specs: the keys, dtypes and shapes a component writes into its NPZ.

A shape is a tuple of fixed sizes (``384``) and symbolic dimensions (``"n_frames"``). A symbolic
dimension may take any size, but the same symbol must have the same size across every key of one
artifact; ``n_frames`` is, by contract, the length of ``frame_indices``.
The JSON form of a component's specs is ``schemas/components/<name>.schema.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Dim = int | str


@dataclass(frozen=True, slots=True)
class ArraySpec:
    """One NPZ key: dtype (numpy name, e.g. ``"float32"``, ``"<U64"``), shape, and its meaning."""

    dtype: str
    shape: tuple[Dim, ...]
    description: str
    unit: str | None = None

    def __post_init__(self) -> None:
        np.dtype(self.dtype)  # raises TypeError on an unknown dtype name
        for dim in self.shape:
            if isinstance(dim, int) and dim < 0:
                raise ValueError(f"negative dimension in shape {self.shape}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dtype": self.dtype,
            "shape": list(self.shape),
            "description": self.description,
        }
        if self.unit is not None:
            out["unit"] = self.unit
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ArraySpec:
        return cls(
            dtype=data["dtype"],
            shape=tuple(data["shape"]),
            description=data["description"],
            unit=data.get("unit"),
        )


def check_arrays(
    specs: Mapping[str, ArraySpec], arrays: Mapping[str, np.ndarray], *, where: str
) -> list[str]:
    """Every problem of ``arrays`` against ``specs``, one line each (empty list = valid).

    Keys must match exactly; dtypes exactly; ranks and fixed sizes exactly; symbolic sizes
    consistently across keys.
    """
    problems: list[str] = []
    missing = sorted(set(specs) - set(arrays))
    extra = sorted(set(arrays) - set(specs))
    if missing:
        problems.append(f"{where}: missing keys {missing}")
    if extra:
        problems.append(f"{where}: unexpected keys {extra}")
    bound: dict[str, tuple[int, str]] = {}
    for key in sorted(set(specs) & set(arrays)):
        spec, arr = specs[key], arrays[key]
        if arr.dtype != np.dtype(spec.dtype):
            problems.append(f"{where}: key {key!r} has dtype {arr.dtype}, expected {spec.dtype}")
        if arr.ndim != len(spec.shape):
            problems.append(
                f"{where}: key {key!r} has shape {arr.shape}, expected rank {len(spec.shape)} "
                f"{tuple(spec.shape)}"
            )
            continue
        for axis, (dim, size) in enumerate(zip(spec.shape, arr.shape, strict=True)):
            if isinstance(dim, int):
                if size != dim:
                    problems.append(
                        f"{where}: key {key!r} axis {axis} has size {size}, expected {dim}"
                    )
            elif dim in bound and bound[dim][0] != size:
                other_size, other_key = bound[dim]
                problems.append(
                    f"{where}: dimension {dim!r} is {size} in key {key!r} "
                    f"but {other_size} in key {other_key!r}"
                )
            else:
                bound.setdefault(dim, (size, key))
    return problems
