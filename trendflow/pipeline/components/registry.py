"""The catalog of components by canonical name (DESIGN.md §4).

Each entry maps a canonical ``NAME`` to ``"module:Class"`` inside this package and is imported
only when asked for, so listing the CPU components never loads a model-backed one. Adding a
component is one module plus one line in :data:`_CATALOG`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
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
    "text_embeddings": "text_embeddings:TextEmbeddings",
    "faces": "faces:Faces",
    "face_emotion": "face_emotion:FaceEmotion",
    "ocr_text": "ocr_text:OcrText",
    "speech_activity": "speech_activity:SpeechActivity",
    "transcript": "transcript:Transcript",
    "image_embeddings": "image_embeddings:ImageEmbeddings",
    "popularity_prediction": "popularity_prediction:PopularityPrediction",
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
    if not (isinstance(cls, type) and issubclass(cls, Component)) or name != cls.NAME:
        raise ConfigError(
            f"registry entry {name!r} -> {target} is not a Component named {name!r}",
            component=name,
        )
    return cls


def all_components() -> dict[str, type[Component]]:
    """Every registered component class by name (imports each module once)."""
    return {name: get_component(name) for name in _CATALOG}


REGENERATE = "trendflow schemas generate"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def catalog_markdown(components: Mapping[str, type[Component]] | None = None) -> str:
    """``schemas/SCHEMA.md``: every NPZ key of every component, for humans.

    Generated from the same ``outputs()`` as the JSON schemas (command: see
    :data:`REGENERATE`); a test fails when the file is stale.
    """
    comps = all_components() if components is None else components
    lines = [
        "# Component artifacts",
        "",
        f"Generated from the component classes (`{REGENERATE}`); the machine-readable form is "
        "`components/<name>.schema.json`.",
        "",
        "Every artifact is `<component>/<component>.npz`, readable with "
        "`np.load(path, allow_pickle=False)`. Besides the keys below it holds `meta`: a 0-d "
        "string array with JSON — the run identity (`platform_id`, `video_id`, `run_id`, "
        "`config_hash`, `sampling_policy_version`, `dataprocessor_version`), `component`, "
        "`schema_version`, `producer_version`, `model`, `status` (`ok` | `empty`), "
        "`empty_reason` and `created_at`. An `empty` artifact holds only `meta`.",
        "",
        "Shapes: numbers are fixed sizes; names are sizes that vary per video but are equal "
        "across the keys of one artifact (`n_frames` = the length of `frame_indices`); `[]` is a "
        "scalar. Frame indices refer to the analysis timeline (12 fps, 320 px high).",
        "",
    ]
    for name in sorted(comps):
        cls = comps[name]
        inputs = ", ".join(sorted(i.value for i in cls.INPUTS))
        sampling = cls.SAMPLING.describe() if cls.SAMPLING is not None else "—"
        lines += [
            f"## `{name}` (schema v{cls.SCHEMA_VERSION}, producer {cls.PRODUCER_VERSION}, "
            f"tier {cls.TIER})",
            "",
            cls.DESCRIPTION,
            "",
            f"Inputs: {inputs}. Sampling: {sampling}. Resources per task: "
            f"{cls.RESOURCES.cpus:g} CPU, {cls.RESOURCES.memory_mb} MB RAM"
            + (f", {cls.RESOURCES.gpu_memory_mb} MB GPU" if cls.RESOURCES.gpu_memory_mb else "")
            + ".",
            "",
            "| key | dtype | shape | unit | meaning |",
            "|---|---|---|---|---|",
        ]
        for key, spec in sorted(cls.outputs().items()):
            shape = "[" + ", ".join(str(d) for d in spec.shape) + "]"
            lines.append(
                f"| `{key}` | {spec.dtype} | {shape} | {_cell(spec.unit or '—')} "
                f"| {_cell(spec.description)} |"
            )
        lines.append("")
    return "\n".join(lines)


__all__ = ["all_components", "catalog_markdown", "component_names", "get_component"]

