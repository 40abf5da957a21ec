"""Whole-run validation: does a run in a result store keep every contract of DESIGN.md §3?

:func:`validate_run` reads the run's ``manifest.json`` and every file under the run prefix and
reports each problem as one line (empty list = valid):

- the manifest exists, parses, and its identity matches the prefix it lives under;
- every artifact it lists sits at its component's key, exists, and has the listed size and sha256;
- every NPZ reads with ``allow_pickle=False`` and is valid against its component schema;
- every NPZ ``meta`` carries the manifest's identity and the component record's versions,
  model, status and empty reason;
- a finished run has no component left pending or running, and each ok/empty component lists
  its artifact;
- nothing else lies under the prefix: no stray ``*.json``, no unlisted file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from trendflow.contracts.keys import MANIFEST_NAME, artifact_key, parse_run_key
from trendflow.contracts.manifest import ArtifactRecord, Manifest
from trendflow.contracts.npz import check_artifact, decode_npz
from trendflow.contracts.schemas import load_component_schema
from trendflow.errors import ArtifactNotFound, ContractViolation, UnsafeStorageKey

if TYPE_CHECKING:  # the store is any ResultStore; contracts never import storage at run time
    from trendflow.storage.base import ResultStore


async def validate_run(
    store: ResultStore, prefix: str, *, schemas_dir: Path | None = None
) -> list[str]:
    """Every problem of the run under ``prefix`` (``result_store/<platform>/<video>/<run>/``)."""
    if not prefix.endswith("/"):
        prefix += "/"
    where = f"{store.describe()}:{prefix}"
    manifest_key = prefix + MANIFEST_NAME
    try:
        expected = parse_run_key(manifest_key)
    except UnsafeStorageKey as exc:
        return [f"{where}: not a run prefix ({exc.message})"]
    keys = await store.list(prefix)
    if not keys:
        return [f"{where}: no files under this prefix"]

    problems: list[str] = []
    if manifest_key not in keys:
        problems.append(f"{manifest_key}: missing")
        problems += [_unlisted(key) for key in keys]
        return problems
    try:
        manifest = Manifest.from_json_bytes(await store.get_bytes(manifest_key), where=manifest_key)
    except ContractViolation as exc:
        problems += list(exc.details.get("problems") or [exc.message])
        problems += [_unlisted(key) for key in keys if key != manifest_key]
        return problems

    run = manifest.run
    for name in ("platform_id", "video_id", "run_id"):
        if getattr(run, name) != getattr(expected, name):
            problems.append(
                f"{manifest_key}: run.{name} {getattr(run, name)!r} does not match the "
                f"prefix's {getattr(expected, name)!r}"
            )

    listed: dict[str, str] = {}
    for component, record in sorted(manifest.components.items()):
        label = f"{manifest_key}: component {component}"
        if run.status == "ok" and record.status in ("pending", "running"):
            problems.append(f"{label} is {record.status} in a run marked ok")
        if run.status == "ok" and record.required and record.status == "error":
            problems.append(f"{label} is required but failed in a run marked ok")
        own_key = artifact_key(run.platform_id, run.video_id, run.run_id, component)
        for artifact in record.artifacts:
            if artifact.key in listed:
                problems.append(f"{artifact.key}: listed twice in the manifest")
                continue
            listed[artifact.key] = component
            if artifact.key != own_key:
                problems.append(f"{artifact.key}: listed under {component}, whose key is {own_key}")
                continue
            problems += await _check_artifact(store, manifest, component, artifact, schemas_dir)
        if record.status in ("ok", "empty") and not record.artifacts:
            problems.append(f"{label} is {record.status} but lists no artifact")

    for key in keys:
        if key != manifest_key and key not in listed:
            problems.append(_unlisted(key))
    return problems


def _unlisted(key: str) -> str:
    if key.lower().endswith(".json"):
        return f"{key}: stray JSON file (only manifest.json may be stored in a run)"
    return f"{key}: file not listed in the manifest"


async def _check_artifact(
    store: ResultStore,
    manifest: Manifest,
    component: str,
    artifact: ArtifactRecord,
    schemas_dir: Path | None,
) -> list[str]:
    key = artifact.key
    try:
        data = await store.get_bytes(key)
    except ArtifactNotFound:
        return [f"{key}: missing (listed in the manifest under {component})"]
    problems: list[str] = []
    if len(data) != artifact.size:
        problems.append(f"{key}: size {len(data)} bytes, the manifest says {artifact.size}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != artifact.sha256:
        problems.append(
            f"{key}: sha256 {digest[:12]}… does not match the manifest's {artifact.sha256[:12]}…"
        )
    try:
        decoded = decode_npz(data, where=key)
    except ContractViolation as exc:
        return problems + list(exc.details.get("problems") or [exc.message])
    try:
        schema = load_component_schema(component, schemas_dir)
    except ContractViolation as exc:
        return problems + [f"{key}: {exc.message}"]
    problems += check_artifact(decoded, schema, expected_identity=manifest.identity, where=key)
    record = manifest.components[component]
    for name in ("schema_version", "producer_version", "model", "status", "empty_reason"):
        got, want = getattr(decoded.meta, name), getattr(record, name)
        if got != want:
            problems.append(f"{key}: meta {name} {got!r} differs from the manifest's {want!r}")
    return problems


__all__ = ["validate_run"]
