"""The catalog of components by canonical name (DESIGN.md §4).

Each entry maps a canonical ``NAME`` to ``"module:Class"`` inside this package and is imported
only when asked for, so listing the CPU components never loads a model-backed one. Adding a
component is one module plus one line in :data:`_CATALOG`.
"""

from __future__ import annotations

import importlib
from functools import cache

from trendflow.errors import ComponentNotFound, ConfigError
from trendflow.pipeline.components.base import Component

_PACKAGE = "trendflow.pipeline.components"

_CATALOG: dict[str, str] = {
    "metadata_features": "metadata_features:MetadataFeatures",
    "shot_detection": "shot_detection:ShotDetection",
    "color_stats": "color_stats:ColorStats",
    "motion": "motion:Motion",
    "loudness": "loudness:Loudness",
    "audio_features": "audio_features:AudioFeatures",
}


def component_names() -> tuple[str, ...]:
    """Every canonical name, in catalog order (cheap: imports nothing)."""
    return tuple(_CATALOG)


@cache
def get_component(name: str) -> type[Component]:
    """The class registered under ``name``; :class:`ComponentNotFound` if there is none."""
    try:
        target = _CATALOG[name]
    except KeyError:
        raise ComponentNotFound(
            f"no component named {name!r}; known: {sorted(_CATALOG)}", component=name
        ) from None
    module_name, _, class_name = target.partition(":")
    module = importlib.import_module(f"{_PACKAGE}.{module_name}")
    cls = getattr(module, class_name)
    if not (isinstance(cls, type) and issubclass(cls, Component)) or cls.NAME != name:
        raise ConfigError(
            f"registry entry {name!r} -> {target} is not a Component named {name!r}",
            component=name,
        )
    return cls


def all_components() -> dict[str, type[Component]]:
    """Every registered component class by name (imports each module once)."""
    return {name: get_component(name) for name in _CATALOG}


__all__ = ["all_components", "component_names", "get_component"]
