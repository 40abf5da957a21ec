"""Storage keys: the layout, and refusal of anything that could escape the store or the contract."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trendflow.contracts import keys
from trendflow.errors import UnsafeStorageKey

RUN = "0b7d3c1e-9f7a-4c2b-8e1d-3f5a6b7c8d9e"
VIDEO = "dQw4w9WgXcQ"
UPLOAD_VIDEO = "up-0123456789abcdef"


def test_layout_matches_the_design() -> None:
    assert keys.manifest_key("youtube", VIDEO, RUN) == (
        f"result_store/youtube/{VIDEO}/{RUN}/manifest.json"
    )
    assert keys.artifact_key("youtube", VIDEO, RUN, "color_stats") == (
        f"result_store/youtube/{VIDEO}/{RUN}/color_stats/color_stats.npz"
    )
    assert keys.video_prefix("youtube", UPLOAD_VIDEO) == f"result_store/youtube/{UPLOAD_VIDEO}/"
    assert keys.frames_prefix(uuid.UUID(RUN)) == f"frames/{RUN}/"
    assert keys.upload_key(UPLOAD_VIDEO, "clip.mp4") == f"uploads/{UPLOAD_VIDEO}/clip.mp4"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: keys.run_prefix("vimeo", VIDEO, RUN), "platform_id"),
        (lambda: keys.run_prefix("youtube", "../../etc", RUN), "video_id"),
        (lambda: keys.run_prefix("youtube", "dQw4w9WgXc", RUN), "video_id"),  # 10 chars
        (lambda: keys.run_prefix("youtube", "up-0123456789ABCDEF", RUN), "video_id"),
        (lambda: keys.run_prefix("youtube", VIDEO, RUN.upper()), "run_id"),
        (lambda: keys.run_prefix("youtube", VIDEO, "../" + RUN), "run_id"),
        (lambda: keys.artifact_key("youtube", VIDEO, RUN, "Faces"), "component"),
        (lambda: keys.artifact_key("youtube", VIDEO, RUN, "a/../b"), "component"),
        (lambda: keys.upload_key(UPLOAD_VIDEO, "../secret"), "filename"),
        (lambda: keys.upload_key(UPLOAD_VIDEO, ".hidden"), "filename"),
        (lambda: keys.upload_key("someone", "clip.mp4"), "upload_id"),
    ],
)
def test_invalid_segments_are_refused(call: object, field: str) -> None:
    with pytest.raises(UnsafeStorageKey) as info:
        call()  # type: ignore[operator]
    assert info.value.details["field"] == field
    assert info.value.code == "unsafe_storage_key"


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "C:/Windows/x",
        "frames/../../etc/passwd",
        "frames/./x",
        "frames//x",
        "frames/x/",
        "frames\\x",
        "frames/x\x00.npz",
        "frames/x\n",
        "frames/.x.tmp",
        "a" * 1100,
    ],
)
def test_check_key_refuses_unsafe_keys(key: str) -> None:
    with pytest.raises(UnsafeStorageKey):
        keys.check_key(key)


@pytest.mark.parametrize(
    "key",
    [
        f"result_store/youtube/{VIDEO}/{RUN}/extra.json",
        f"result_store/youtube/{VIDEO}/{RUN}/faces/faces.json",
        f"result_store/youtube/{VIDEO}/manifest.json",
        f"result_store/youtube/{VIDEO}/{RUN}/faces/manifest.json",
        f"result_store/youtube/{VIDEO}/{RUN}/MANIFEST.JSON",
        "result_store/report.JSON",
    ],
)
def test_only_run_manifests_may_be_json_in_the_result_store(key: str) -> None:
    with pytest.raises(UnsafeStorageKey) as info:
        keys.check_key(key)
    assert info.value.details["reason"] == "stray_json"


def test_json_outside_the_result_store_and_manifests_are_accepted() -> None:
    keys.check_key(keys.manifest_key("youtube", VIDEO, RUN))
    keys.check_key(f"uploads/{UPLOAD_VIDEO}/meta.json")


def test_parse_run_key_refuses_other_keys() -> None:
    for key in (
        f"result_store/youtube/{VIDEO}/{RUN}/faces/other.npz",
        f"result_store/youtube/{VIDEO}/{RUN}",
        f"frames/{RUN}/0001.npy",
        f"result_store/youtube/{VIDEO}/{RUN}/faces/faces.npz/x",
    ):
        with pytest.raises(UnsafeStorageKey):
            keys.parse_run_key(key)


def test_prefixes_must_be_folders_and_delete_refuses_the_whole_store() -> None:
    assert keys.check_prefix("") == ""
    assert keys.check_prefix("frames/") == "frames/"
    for bad in ("frames", "../", "frames/../", "/frames/"):
        with pytest.raises(UnsafeStorageKey):
            keys.check_prefix(bad)
    with pytest.raises(UnsafeStorageKey):
        keys.check_prefix("", for_delete=True)


_video_ids = st.one_of(
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
        min_size=11,
        max_size=11,
    ),
    st.text(alphabet="0123456789abcdef", min_size=16, max_size=16).map(lambda h: "up-" + h),
)
_components = st.from_regex(r"[a-z][a-z0-9_]{0,63}", fullmatch=True)


@given(
    platform=st.sampled_from(sorted(keys.PLATFORM_IDS)),
    video=_video_ids,
    run=st.uuids(),
    component=st.one_of(st.none(), _components),
)
def test_parse_run_key_inverts_the_builders(
    platform: str, video: str, run: uuid.UUID, component: str | None
) -> None:
    key = (
        keys.manifest_key(platform, video, run)
        if component is None
        else keys.artifact_key(platform, video, run, component)
    )
    assert keys.check_key(key) == key
    assert keys.parse_run_key(key) == keys.RunKey(platform, video, str(run), component)
