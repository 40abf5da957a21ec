"""NPZ artifacts: round trip, meta, determinism, and refusal of everything off-contract."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trendflow.contracts.empty import EmptyReason
from trendflow.contracts.identity import RunIdentity, new_run_id
from trendflow.contracts.npz import decode_npz, encode_npz, encode_result, validate_npz
from trendflow.contracts.schemas import load_component_schema
from trendflow.errors import ContractViolation
from trendflow.pipeline.components.base import ComponentResult

from .conftest import CREATED, AudioLevel, Brightness, brightness_arrays


def _encode(identity: RunIdentity, arrays: dict[str, Any] | None = None, **kw: Any) -> bytes:
    args: dict[str, Any] = {
        "component": "brightness",
        "schema_version": Brightness.SCHEMA_VERSION,
        "producer_version": Brightness.PRODUCER_VERSION,
        "model": None,
        "status": "ok",
        "empty_reason": None,
        "arrays": brightness_arrays() if arrays is None else arrays,
        "specs": Brightness.outputs(),
        "created_at": CREATED,
    }
    args.update(kw)
    return encode_npz(identity, **args)


def test_round_trip_keeps_arrays_and_meta(identity: RunIdentity) -> None:
    arrays = brightness_arrays(7)
    artifact = decode_npz(_encode(identity, arrays, model="luma:3"))
    assert set(artifact.arrays) == set(arrays)
    for key, value in arrays.items():
        np.testing.assert_array_equal(artifact.arrays[key], value, strict=True)
    meta = artifact.meta
    assert meta.identity == identity
    assert (meta.component, meta.schema_version, meta.producer_version) == (
        "brightness",
        2,
        "1.1.0",
    )
    assert (meta.model, meta.status, meta.empty_reason) == ("luma:3", "ok", None)
    assert meta.created_at == CREATED


def test_plain_numpy_reads_it_without_pickle(identity: RunIdentity) -> None:
    with np.load(io.BytesIO(_encode(identity)), allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(["meta", *brightness_arrays()])
        meta = npz["meta"]
        assert meta.ndim == 0 and meta.dtype.kind == "U"
        doc = json.loads(str(meta[()]))
    assert {k: doc[k] for k in identity.fields()} == identity.fields()
    assert doc["component"] == "brightness" and doc["status"] == "ok"
    assert doc["created_at"] == "2026-01-02T03:04:05Z"


def test_equal_inputs_give_identical_bytes(identity: RunIdentity) -> None:
    first = _encode(identity)
    fortran = brightness_arrays()
    fortran["histogram"] = np.asfortranarray(fortran["histogram"])
    assert _encode(identity) == first
    assert _encode(identity, fortran) == first
    assert _encode(identity, created_at=CREATED + timedelta(seconds=1)) != first
    for info in zipfile.ZipFile(io.BytesIO(first)).infolist():
        assert info.date_time == (1980, 1, 1, 0, 0, 0)


def test_an_empty_result_holds_only_meta(identity: RunIdentity) -> None:
    data = encode_npz(
        identity,
        component="audio_level",
        schema_version=1,
        producer_version="0.3.0",
        model=None,
        status="empty",
        empty_reason=EmptyReason.AUDIO_MISSING_OR_EXTRACT_FAILED,
        arrays={},
        specs=AudioLevel.outputs(),
        created_at=CREATED,
    )
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["meta.npy"]
    artifact = decode_npz(data)
    assert artifact.arrays == {}
    assert artifact.meta.status == "empty"
    assert artifact.meta.empty_reason == "audio_missing_or_extract_failed"


def test_encode_result_takes_versions_and_specs_from_the_class(identity: RunIdentity) -> None:
    data = encode_result(
        identity,
        Brightness,
        ComponentResult(arrays=brightness_arrays()),
        model=None,
        created_at=CREATED,
    )
    assert data == _encode(identity)
    empty = encode_result(
        identity,
        AudioLevel,
        ComponentResult.empty(EmptyReason.AUDIO_MISSING_OR_EXTRACT_FAILED),
        model=None,
        created_at=CREATED,
    )
    assert decode_npz(empty).meta.status == "empty"


def _with(**changes: Any) -> dict[str, Any]:
    arrays = brightness_arrays()
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    return arrays


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (_with(brightness=np.zeros(5, dtype=np.float64)), "dtype float64, expected float32"),
        (_with(histogram=np.zeros((5, 15), dtype=np.int32)), "axis 1 has size 15, expected 16"),
        (_with(histogram=np.zeros((4, 16), dtype=np.int32)), "dimension 'n_frames'"),
        (_with(brightness=np.zeros((5, 1), dtype=np.float32)), "expected rank 1"),
        (_with(label=None), "missing keys ['label']"),
        (_with(surprise=np.zeros(3)), "unexpected keys ['surprise']"),
        (_with(frame_indices=np.array([0, 6, 6, 18, 24])), "strictly increasing"),
        (_with(frame_indices=np.arange(5, dtype=np.int32)), "dtype int32, expected int64"),
        (_with(timestamps_s=np.array([0, 1, np.nan, 3, 4.0])), "timestamps_s must be finite"),
        (_with(label=np.array(["a", 1], dtype=object)), "object dtype"),
        (_with(meta=np.array("{}")), "reserved"),
        (_with(brightness=[1.0, 2.0, 3.0, 4.0, 5.0]), "not a numpy array"),
        (_with(**{"bad/key": np.zeros(1)}), "not a plain identifier"),
    ],
)
def test_off_contract_arrays_are_refused(
    identity: RunIdentity, arrays: dict[str, Any], message: str
) -> None:
    with pytest.raises(ContractViolation) as info:
        _encode(identity, arrays)
    assert message in info.value.message
    assert info.value.code == "contract_violation"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"status": "empty", "empty_reason": EmptyReason.NO_FACES_IN_VIDEO}, "holds only meta"),
        ({"status": "empty", "empty_reason": None, "arrays": {}}, "empty_reason"),
        ({"empty_reason": EmptyReason.NO_FACES_IN_VIDEO}, "empty_reason"),
        ({"status": "error"}, "status"),
        ({"component": "../x"}, "component"),
        ({"schema_version": 0}, "schema_version"),
        ({"created_at": CREATED.replace(tzinfo=None)}, "created_at"),
    ],
)
def test_inconsistent_meta_is_refused(
    identity: RunIdentity, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ContractViolation, match="meta|only meta") as info:
        _encode(identity, **changes)
    assert message in info.value.message


def test_pickled_object_arrays_are_not_loaded(identity: RunIdentity) -> None:
    buf = io.BytesIO()
    np.savez(buf, meta=np.array("{}"), evil=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ContractViolation, match="'evil' cannot be read"):
        decode_npz(buf.getvalue())


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda data: data[: len(data) // 2], "not a readable NPZ"),
        (lambda data: b"", "not a readable NPZ"),
        (lambda data: b"PK\x03\x04" + b"\x00" * 100, "not a readable NPZ"),
        (lambda data: data[:200] + bytes(b ^ 0xFF for b in data[200:400]) + data[400:], "NPZ"),
    ],
)
def test_damaged_files_are_reported(identity: RunIdentity, mangle: Any, message: str) -> None:
    with pytest.raises(ContractViolation, match=message):
        decode_npz(mangle(_encode(identity)))


def test_single_npy_and_missing_meta_are_refused() -> None:
    buf = io.BytesIO()
    np.save(buf, np.zeros(3))
    with pytest.raises(ContractViolation, match="not an NPZ archive"):
        decode_npz(buf.getvalue())
    buf = io.BytesIO()
    np.savez(buf, x=np.zeros(3))
    with pytest.raises(ContractViolation, match="no 'meta' key"):
        decode_npz(buf.getvalue())
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(["{}", "{}"]))
    with pytest.raises(ContractViolation, match="0-d unicode"):
        decode_npz(buf.getvalue())


def test_validate_against_the_schema_file(identity: RunIdentity, schemas_dir: Path) -> None:
    schema = load_component_schema("brightness", schemas_dir)
    data = _encode(identity)
    assert validate_npz(data, schema, expected_identity=identity) == []

    other = identity.model_copy(update={"run_id": new_run_id()})
    problems = validate_npz(data, schema, expected_identity=other, where="b.npz")
    assert problems == [
        f"b.npz: meta run_id {identity.run_id!r} differs from the run's {other.run_id!r}"
    ]

    old = _encode(identity, schema_version=1)
    assert any("schema_version 1" in p for p in validate_npz(old, schema))
    wrong = load_component_schema("title_stats", schemas_dir)
    problems = validate_npz(data, wrong)
    assert any("not 'title_stats'" in p for p in problems)
    assert any("unexpected keys" in p for p in problems)
    assert validate_npz(b"junk", schema, where="j.npz")[0].startswith("j.npz: not a readable NPZ")
