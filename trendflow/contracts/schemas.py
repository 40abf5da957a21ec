"""Machine schemas: ``schemas/manifest.schema.json`` and ``schemas/components/<name>.schema.json``.

Both are generated from code (``trendflow schemas generate``) and checked against it
(``trendflow schemas check``, and a test): the manifest schema from the pydantic model, one
component schema per registered component from its class — the generation lives beside the
registry (:mod:`trendflow.pipeline.components.schemas`); this module only reads them. A
component schema document is::

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

from trendflow.contracts.arrays import ArraySpec
from trendflow.contracts.profile import COMPONENT_NAME_RE
from trendflow.errors import ConfigError, ContractViolation

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
        if doc.get("$id") != schema_id(name, schema.schema_version):
            raise ContractViolation(f"{where}: $id {doc.get('$id')!r} does not match its content")
        return schema


def schema_id(name: str, schema_version: int) -> str:
    """The ``$id`` of a component schema document."""
    return f"trendflow/components/{name}/v{schema_version}"


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


__all__ = [
    "COMPONENTS_DIR",
    "JSON_SCHEMA_DIALECT",
    "MANIFEST_SCHEMA_FILE",
    "RESERVED_KEYS",
    "ComponentSchema",
    "default_schemas_dir",
    "dump_json",
    "load_component_schema",
    "repo_schemas_dir",
    "schema_id",
]
