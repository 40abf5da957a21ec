"""Resolve a component to the exact model it runs: ``component → ModelRef(name, version, digest)``.

The mapping (``{"faces": "face_detector:1", …}``) comes from the profile (later: the DB's
``profile_model_mapping`` rows) or ``settings.triton.models``. Resolution checks the model
repository — the version's ``weights/BUILD.json`` must exist — and optionally that the server
serves it. A missing entry, model or version is :class:`ModelNotFound`; nothing is substituted.
The run pins the resolved refs in its manifest; ``trendflow.contracts.profile.model_signature``
hashes them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from trendflow.errors import InvalidProfile, ModelNotFound
from trendflow.triton.build import BUILD_FILE
from trendflow.triton.client import InferenceClient


@dataclass(frozen=True, slots=True)
class ModelRef:
    """One resolved model: Triton name, version, and the digest of its weight files."""

    name: str
    version: str
    weights_digest: str

    @property
    def ref(self) -> str:
        """The ``"name:version"`` string components receive as ``ComponentContext.model``."""
        return f"{self.name}:{self.version}"


def parse_ref(ref: str) -> tuple[str, str]:
    """``"face_detector:1"`` → ``("face_detector", "1")``; anything else is InvalidProfile."""
    name, sep, version = ref.partition(":")
    if not sep or not name or not version.isdigit():
        raise InvalidProfile(f"model reference {ref!r} is not of the form name:version", ref=ref)
    return name, version


def weights_digest(repository: Path, name: str, version: str) -> str:
    """sha256 over the recorded file digests of ``<repository>/<name>/<version>/weights``."""
    record_path = repository / name / version / "weights" / BUILD_FILE
    if not record_path.is_file():
        raise ModelNotFound(
            f"model {name}:{version} has no built weights at {record_path.parent} "
            "(run `trendflow models build`, or add the folder for a bring-your-own model)",
            model=f"{name}:{version}",
        )
    files = json.loads(record_path.read_text())["files"]
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def resolve(
    components: Iterable[str],
    mapping: Mapping[str, str],
    repository: Path,
    *,
    client: InferenceClient | None = None,
) -> dict[str, ModelRef]:
    """Resolve every model-backed component; with ``client``, also check the server serves it."""
    out: dict[str, ModelRef] = {}
    for component in components:
        if component not in mapping:
            raise ModelNotFound(
                f"component {component!r} has no model mapping (known: {sorted(mapping)})",
                component=component,
            )
        name, version = parse_ref(mapping[component])
        ref = ModelRef(name, version, weights_digest(repository, name, version))
        if client is not None:
            client.model_config(name, version)  # ModelNotFound when not served
        out[component] = ref
    return out
