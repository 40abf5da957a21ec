"""Feature components: one module, one class each; see :mod:`.base` for the contract and
:mod:`.registry` for the catalog by canonical name."""

from trendflow.pipeline.components.base import (
    Component,
    ComponentChunk,
    ComponentContext,
    ComponentResult,
    Input,
    Resources,
    frame_outputs,
    select_chunk,
)
from trendflow.pipeline.components.registry import (
    all_components,
    component_names,
    get_component,
)

__all__ = [
    "Component",
    "ComponentChunk",
    "ComponentContext",
    "ComponentResult",
    "Input",
    "Resources",
    "all_components",
    "component_names",
    "frame_outputs",
    "get_component",
    "select_chunk",
]
