"""Component schema documents generated from the registered classes (``trendflow schemas
generate``/``check``): the format and the reader are :mod:`trendflow.contracts.schemas`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from trendflow.contracts.manifest import manifest_json_schema
from trendflow.contracts.profile import COMPONENT_NAME_RE
from trendflow.contracts.schemas import (
    COMPONENTS_DIR,
    JSON_SCHEMA_DIALECT,
    MANIFEST_SCHEMA_FILE,
    RESERVED_KEYS,
    ComponentSchema,
    dump_json,
    schema_id,
)
from trendflow.errors import ContractViolation
from trendflow.pipeline.components.base import Component, frame_outputs
from trendflow.pipeline.components.registry import all_components, catalog_markdown


def component_schema_document(cls: type[Component]) -> dict[str, Any]:
    """The schema document of a component class (see the module docstring for the format).

    Refuses a class whose outputs break the NPZ contract: a reserved key, an object dtype, or a
    frame-based component without ``frame_indices``/``timestamps_s`` of the reserved specs.
    """
    name = cls.NAME
    if not COMPONENT_NAME_RE.fullmatch(name):
        raise ContractViolation(f"component name {name!r} is not a valid canonical name")
    outputs = cls.outputs()
    where = f"component {name}"
    reserved = sorted(RESERVED_KEYS & set(outputs))
    if reserved:
        raise ContractViolation(f"{where}: outputs use reserved keys {reserved}")
    for key, spec in outputs.items():
        if np.dtype(spec.dtype).hasobject:
            raise ContractViolation(f"{where}: key {key!r} has an object dtype")
    if cls.frame_based():
        for key, spec in frame_outputs().items():
            have = outputs.get(key)
            if have is None or (have.dtype, have.shape) != (spec.dtype, spec.shape):
                raise ContractViolation(
                    f"{where} reads frames, so its outputs need {key!r} "
                    f"({spec.dtype}, {list(spec.shape)}) — add frame_outputs() to outputs()"
                )
    if cls.TIER not in (0, 1):
        raise ContractViolation(f"{where}: TIER must be 0 or 1, got {cls.TIER!r}")
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": schema_id(name, int(cls.SCHEMA_VERSION)),
        "title": name,
        "component": name,
        "schema_version": int(cls.SCHEMA_VERSION),
        "producer_version": str(cls.PRODUCER_VERSION),
        "tier": int(cls.TIER),
        "frame_based": cls.frame_based(),
        "sampling": cls.SAMPLING.describe() if cls.SAMPLING is not None else None,
        "description": cls.DESCRIPTION or (cls.__doc__ or "").strip().split("\n")[0],
        "keys": {key: outputs[key].to_json() for key in sorted(outputs)},
        "type": "object",
    }


def schema_of(cls: type[Component]) -> ComponentSchema:
    """The parsed schema of a component class."""
    return ComponentSchema.from_document(component_schema_document(cls), where=cls.NAME)


def _expected_files(
    schemas_dir: Path, components: Mapping[str, type[Component]] | None
) -> dict[Path, str]:
    comps = all_components() if components is None else components
    files = {
        schemas_dir / MANIFEST_SCHEMA_FILE: dump_json(manifest_json_schema()),
        schemas_dir / "SCHEMA.md": catalog_markdown(comps),
    }
    for name in sorted(comps):
        cls = comps[name]
        if name != cls.NAME:
            raise ContractViolation(f"component registered as {name!r} is named {cls.NAME!r}")
        path = schemas_dir / COMPONENTS_DIR / f"{name}.schema.json"
        files[path] = dump_json(component_schema_document(cls))
    return files


def generate_schema_files(
    schemas_dir: Path, components: Mapping[str, type[Component]] | None = None
) -> list[Path]:
    """Write the manifest schema, one schema per component and ``SCHEMA.md`` (for humans);
    returns the files written.

    ``components`` defaults to every registered component. Component schema files of
    components that are no longer registered are removed.
    """
    expected = _expected_files(schemas_dir, components)
    (schemas_dir / COMPONENTS_DIR).mkdir(parents=True, exist_ok=True)
    for orphan in sorted((schemas_dir / COMPONENTS_DIR).glob("*.schema.json")):
        if orphan not in expected:
            orphan.unlink()
    written = []
    for path, text in expected.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def check_schema_files(
    schemas_dir: Path, components: Mapping[str, type[Component]] | None = None
) -> list[str]:
    """Every schema file that is missing, stale or orphaned, one line each (empty = up to date)."""
    expected = _expected_files(schemas_dir, components)
    problems = []
    for path, text in expected.items():
        if not path.exists():
            problems.append(f"{path}: missing (run `trendflow schemas generate`)")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: out of date with the code (run `trendflow schemas generate`)")
    comp_dir = schemas_dir / COMPONENTS_DIR
    if comp_dir.is_dir():
        for path in sorted(comp_dir.glob("*.schema.json")):
            if path not in expected:
                problems.append(f"{path}: no registered component has this schema")
    return problems


__all__ = ["check_schema_files", "component_schema_document", "generate_schema_files",
           "schema_of"]
