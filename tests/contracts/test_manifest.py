"""manifest.json: model, deterministic JSON, consistency rules, JSON Schema, store round trip."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest

from trendflow.contracts.empty import EmptyReason
from trendflow.contracts.identity import RunIdentity, new_run_id
from trendflow.contracts.keys import manifest_key
from trendflow.contracts.manifest import (
    ArtifactRecord,
    ComponentRecord,
    ErrorInfo,
    Manifest,
    RunError,
    VideoSection,
    load_manifest,
    manifest_json_schema,
    save_manifest,
)
from trendflow.contracts.profile import ModelRef, model_signature
from trendflow.errors import ContractViolation, ExecutionLost
from trendflow.pipeline.types import PreprocessingStep, VideoInfo
from trendflow.storage.local import LocalStore

from .conftest import CREATED

FACES = ModelRef(name="face_detector", version="1", weights_digest="cd" * 32)


def _manifest(identity: RunIdentity) -> Manifest:
    return Manifest.new(
        identity,
        components={
            "faces": ComponentRecord.pending(
                schema_version=1, producer_version="1.0.0", model=FACES.tag
            ),
            "motion": ComponentRecord.pending(
                schema_version=2, producer_version="2.1.0", required=False
            ),
        },
        model_mapping={"faces": FACES},
        profile_id="default",
        user_id="42",
        created_at=CREATED,
    )


def _finished(identity: RunIdentity) -> Manifest:
    manifest = _manifest(identity)
    manifest.video = VideoSection.from_info(
        VideoInfo(
            duration_s=12.5,
            fps=29.97,
            width=1920,
            height=1080,
            has_audio=True,
            video_codec="h264",
            audio_codec="aac",
            container="mp4",
            source="youtube",
            preprocessing=(
                PreprocessingStep("downscale", "2160p → 1080p", {"from_height": 2160}),
                PreprocessingStep("remux", "moov moved to the front"),
            ),
        )
    )
    key = f"result_store/youtube/{identity.video_id}/{identity.run_id}/faces/faces.npz"
    manifest.components["faces"] = ComponentRecord(
        status="empty",
        schema_version=1,
        producer_version="1.0.0",
        model=FACES.tag,
        started_at=CREATED,
        finished_at=CREATED + timedelta(seconds=3),
        duration_ms=3000,
        device_used="triton:gpu",
        peak_ram_mb=512.5,
        gpu_memory_mb=900.0,
        empty_reason=EmptyReason.NO_FACES_IN_VIDEO,
        notes=["no face above 0.9 confidence"],
        artifacts=[ArtifactRecord(key=key, size=321, sha256="ab" * 32)],
    )
    manifest.components["motion"] = ComponentRecord(
        status="error",
        required=False,
        schema_version=2,
        producer_version="2.1.0",
        started_at=CREATED,
        finished_at=CREATED + timedelta(seconds=1),
        duration_ms=1000,
        device_used="cpu",
        error=ErrorInfo(code="out_of_memory", message="ran out of memory twice"),
    )
    manifest.run.status = "ok"
    manifest.run.warnings = ["optional component motion failed: out_of_memory"]
    manifest.run.started_at = CREATED
    manifest.run.finished_at = CREATED + timedelta(seconds=5)
    return manifest


def test_new_manifest_carries_the_identity_and_the_pinned_models(identity: RunIdentity) -> None:
    manifest = _manifest(identity)
    assert manifest.identity == identity
    assert manifest.run.status == "queued"
    assert manifest.run.model_signature == model_signature({"faces": FACES})
    assert {n: c.status for n, c in manifest.components.items()} == {
        "faces": "pending",
        "motion": "pending",
    }


def test_json_is_deterministic_sorted_and_round_trips(identity: RunIdentity) -> None:
    manifest = _finished(identity)
    data = manifest.to_json_bytes()
    assert data == _finished(identity).to_json_bytes()
    assert data.endswith(b"\n")
    doc = json.loads(data)
    assert list(doc) == sorted(doc) and list(doc["run"]) == sorted(doc["run"])
    assert doc["run"]["created_at"] == "2026-01-02T03:04:05Z"
    assert doc["video"]["preprocessing"][0] == {
        "kind": "downscale",
        "detail": "2160p → 1080p",
        "params": {"from_height": 2160},
    }
    assert doc["components"]["faces"]["empty_reason"] == "no_faces_in_video"
    assert doc["run"]["model_mapping"]["faces"]["weights_digest"] == "cd" * 32
    assert Manifest.from_json_bytes(data) == manifest


def test_the_json_schema_accepts_real_manifests_and_rejects_broken_ones(
    identity: RunIdentity,
) -> None:
    schema = manifest_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for manifest in (_manifest(identity), _finished(identity)):
        validator.validate(json.loads(manifest.to_json_bytes()))
    doc = json.loads(_finished(identity).to_json_bytes())
    doc["components"]["faces"]["status"] = "done"
    doc["run"]["run_id"] = "../../etc"
    doc["components"]["faces"]["artifacts"][0]["sha256"] = "xyz"
    errors = {".".join(map(str, e.absolute_path)) for e in validator.iter_errors(doc)}
    assert {"components.faces.status", "run.run_id"} <= errors
    assert "components.faces.artifacts.0.sha256" in errors


def test_a_manifest_carries_what_the_index_holds_of_the_run(identity: RunIdentity) -> None:
    """The pinned profile, the source and the run error's details travel in the manifest (a
    rebuilt index has them); manifests written before those fields still load."""
    profile = {"components": [{"name": "motion"}], "sampling": {"fps": 2.0}}
    source = {"kind": "youtube", "url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ"}
    manifest = Manifest.new(
        identity, components={}, profile_id="fast", profile_config=profile, source=source,
        created_at=CREATED,
    )
    manifest.run.status, manifest.run.finished_at = "error", CREATED
    lost = ExecutionLost("gone", run_id=identity.run_id, attempts=3, where=("a", Path("b")))
    manifest.run.error = RunError.of(lost)
    back = Manifest.from_json_bytes(manifest.to_json_bytes())
    assert (back.run.profile_config, back.run.source) == (profile, source)
    assert back.run.error is not None
    # Exactly the runs.error JSON (TrendflowError.to_dict, through the JSON codec).
    row = json.loads(json.dumps(lost.to_dict(), default=str))
    assert back.run.error.model_dump(mode="json") == row
    assert RunError.from_row(row) == back.run.error

    old = json.loads(manifest.to_json_bytes())
    del old["run"]["profile_config"], old["run"]["source"], old["run"]["error"]["details"]
    older = Manifest.from_json_bytes(json.dumps(old).encode())
    assert (older.run.profile_config, older.run.source) == (None, None)
    assert older.run.error is not None and older.run.error.details == {}
    jsonschema.Draft202012Validator(manifest_json_schema()).validate(old)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("components", "faces", "empty_reason"), None, "empty_reason is set exactly"),
        (("components", "faces", "empty_reason"), "bored", "empty_reason"),
        (("components", "motion", "error"), None, "error is set exactly"),
        (("components", "faces", "finished_at"), None, "needs finished_at"),
        (("components", "faces", "artifacts"), [], "lists its artifact"),
        (("components", "faces", "status"), "done", "status"),
        (("components", "faces", "started_at"), "2026-01-02T03:04:05", "timezone"),
        (("run", "finished_at"), None, "needs finished_at"),
        (("run", "model_signature"), "00" * 32, "model_signature does not match"),
        (("run", "video_id"), "up-0123456789abcdef", "YouTube video_id"),
        (("run", "status"), "finished", "run.status"),
        (("run", "surprise"), 1, "Extra inputs"),
    ],
)
def test_inconsistent_manifests_are_refused_on_read(
    identity: RunIdentity, path: tuple[str, ...], value: object, message: str
) -> None:
    doc = json.loads(_finished(identity).to_json_bytes())
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    with pytest.raises(ContractViolation) as info:
        Manifest.from_json_bytes(json.dumps(doc).encode(), where="m.json")
    assert message in info.value.message
    assert info.value.message.startswith("m.json: ")


def test_an_inconsistent_manifest_is_never_serialized(identity: RunIdentity) -> None:
    manifest = _finished(identity)
    manifest.components["faces"].empty_reason = None
    with pytest.raises(ContractViolation, match="empty_reason is set exactly"):
        manifest.to_json_bytes()


async def test_save_and_load_through_the_store(identity: RunIdentity, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    manifest = _finished(identity)
    info = await save_manifest(store, manifest)
    key = manifest_key(identity.platform_id, identity.video_id, identity.run_id)
    assert info.key == key and info.size == len(manifest.to_json_bytes())
    assert (tmp_path / "store" / key).read_bytes() == manifest.to_json_bytes()
    assert await load_manifest(store, key) == manifest

    manifest.run.status = "error"
    manifest.run.error = ErrorInfo(code="component_failed", message="faces failed")
    await save_manifest(store, manifest)
    assert (await load_manifest(store, key)).run.status == "error"


async def test_a_manifest_under_another_runs_key_is_refused(
    identity: RunIdentity, tmp_path: Path
) -> None:
    store = LocalStore(tmp_path / "store")
    other = manifest_key(identity.platform_id, identity.video_id, new_run_id())
    await store.put_bytes(other, _manifest(identity).to_json_bytes())
    with pytest.raises(ContractViolation, match="does not match its key"):
        await load_manifest(store, other)


def test_the_model_mapping_names_only_the_runs_components(identity: RunIdentity) -> None:
    with pytest.raises(ContractViolation, match="model_mapping names components"):
        Manifest.new(
            identity,
            components={},
            model_mapping={"faces": FACES},
            created_at=CREATED,
        )
