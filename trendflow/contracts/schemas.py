"""Machine schemas: ``schemas/manifest.schema.json`` and ``schemas/components/<name>.schema.json``.

Both are generated from code (``trendflow schemas generate``) and checked against it
(``trendflow schemas check``, and a test): the manifest schema from the pydantic model, one
component schema per registered component from its class. A component schema document is::

    {"$schema": "https://json-schema.org/draft/2020-12/schema",
     "$id": "trendflow/components/<name>/v<schema_version>",
     "title": name, "component": name, "schema_version": int, "producer_version": str,
     "tier": 0 | 1, "frame_based": bool, "sampling": str | null, "description": str,
     "keys": {key: ArraySpec.to_json()}, "type": "object"}

``keys`` lists every NPZ key of an ``ok`` result (``frame_indices``/``timestamps_s`` included for
frame-based components); the reserved ``meta`` key is not listed, it is in every NPZ.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trendflow.contracts.arrays import ArraySpec
from trendflow.contracts.manifest import manifest_json_schema
from trendflow.contracts.profile import COMPONENT_NAME_RE
from trendflow.errors import ConfigError, ContractViolation
from trendflow.pipeline.components.base import Component, frame_outputs

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
MANIFEST_SCHEMA_FILE = "manifest.schema.json"
COMPONENTS_DIR = "components"
RESERVED_KEYS = frozenset({"meta"})


@dataclass(frozen=True, slots=True)
class ComponentSchema:
    """A parsed component schema: what a valid NPZ of the component holds."""

    name: str
    schema_version: int
    producer_version: str
    tier: int
    frame_based: bool
    sampling: str | None
    description: str
    specs: dict[str, ArraySpec]

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], *, where: str = "schema") -> ComponentSchema:
        """Parse a schema document; a malformed one → :class:`ContractViolation`."""
        try:
            name = doc["component"]
            schema = cls(
                name=name,
                schema_version=int(doc["schema_version"]),
                producer_version=str(doc["producer_version"]),
                tier=int(doc["tier"]),
                frame_based=bool(doc["frame_based"]),
                sampling=doc["sampling"],
                description=str(doc["description"]),
                specs={k: ArraySpec.from_json(v) for k, v in doc["keys"].items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ContractViolation(f"{where}: malformed component schema: {exc!r}") from None
        if doc.get("$id") != _schema_id(name, schema.schema_version):
            raise ContractViolation(f"{where}: $id {doc.get('$id')!r} does not match its content")
        return schema

    @classmethod
    def from_component(cls, component: type[Component]) -> ComponentSchema:
        return cls.from_document(component_schema_document(component), where=component.NAME)


def _schema_id(name: str, schema_version: int) -> str:
    return f"trendflow/components/{name}/v{schema_version}"


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
        "$id": _schema_id(name, int(cls.SCHEMA_VERSION)),
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


def repo_schemas_dir() -> Path:
    """Where the repository's ``schemas/`` directory belongs: next to the ``trendflow`` package."""
    import trendflow

    return Path(trendflow.__file__).resolve().parent.parent / "schemas"


def default_schemas_dir() -> Path:
    """The repository's ``schemas/`` directory; :class:`ConfigError` if it is missing."""
    path = repo_schemas_dir()
    if not path.is_dir():
        raise ConfigError(
            f"schemas directory {path} is missing; TrendFlow reads component schemas from the "
            "checkout it runs from (run `trendflow schemas generate` there)",
            path=str(path),
        )
    return path


def dump_json(doc: Mapping[str, Any]) -> str:
    """How schema files are written: 2-space indent, non-ASCII kept, trailing newline."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def load_component_schema(name: str, schemas_dir: Path | None = None) -> ComponentSchema:
    """Read ``<schemas_dir>/components/<name>.schema.json`` (default: the repo's schemas dir)."""
    if not COMPONENT_NAME_RE.fullmatch(name):
        raise ContractViolation(f"invalid component name {name!r}")
    base = schemas_dir if schemas_dir is not None else default_schemas_dir()
    path = base / COMPONENTS_DIR / f"{name}.schema.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContractViolation(
            f"no schema for component {name!r}: {path} does not exist", component=name
        ) from None
    except (OSError, ValueError) as exc:
        raise ContractViolation(f"cannot read schema {path}: {exc}", component=name) from None
    schema = ComponentSchema.from_document(doc, where=str(path))
    if schema.name != name:
        raise ContractViolation(f"{path} describes component {schema.name!r}, not {name!r}")
    return schema


def _registered() -> dict[str, type[Component]]:
    from trendflow.pipeline.components.registry import all_components

    return all_components()


def _expected_files(
    schemas_dir: Path, components: Mapping[str, type[Component]] | None
) -> dict[Path, str]:
    from trendflow.pipeline.components.registry import catalog_markdown

    comps = _registered() if components is None else components
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


__all__ = [
    "ComponentSchema",
    "check_schema_files",
    "component_schema_document",
    "default_schemas_dir",
    "generate_schema_files",
    "load_component_schema",
    "repo_schemas_dir",
]
