"""Run identity: YouTube URL parsing and refusal, upload ids, run ids, RunIdentity."""

from __future__ import annotations

import hashlib
import pickle
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from trendflow.contracts.identity import (
    RunIdentity,
    UploadHasher,
    canonical_run_id,
    dataprocessor_version,
    new_run_id,
    parse_youtube_video_id,
    sha256_file,
    upload_video_id,
    validate_video_id,
)
from trendflow.errors import InvalidIdentifier, InvalidVideoUrl

ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
video_ids = st.text(alphabet=ID_ALPHABET, min_size=11, max_size=11)

# Every form a user pastes, with {id} where the video id goes.
URL_FORMS = [
    "https://www.youtube.com/watch?v={id}",
    "http://www.youtube.com/watch?v={id}",
    "www.youtube.com/watch?v={id}",
    "youtube.com/watch?v={id}",
    "https://youtube.com/watch?v={id}&t=42s",
    "https://m.youtube.com/watch?v={id}&feature=share",
    "https://music.youtube.com/watch?v={id}&list=RDAMVM{id}",
    "https://www.youtube.com/watch?feature=youtu.be&v={id}#t=1m2s",
    "https://www.youtube.com/watch?v={id}&list=PLabcdefghijkl&index=3",
    "https://youtu.be/{id}",
    "youtu.be/{id}?si=AbCdEf123",
    "https://youtu.be/{id}?t=10#frag",
    "https://www.youtube.com/shorts/{id}",
    "https://youtube.com/shorts/{id}?feature=share",
    "https://www.youtube.com/embed/{id}?start=5&autoplay=1",
    "https://www.youtube-nocookie.com/embed/{id}",
    "youtube-nocookie.com/embed/{id}?rel=0",
    "https://www.youtube.com/live/{id}?si=xyz",
    "https://www.youtube.com/v/{id}",
    "https://www.youtube.com/shorts/{id}/",
    "HTTPS://WWW.YOUTUBE.COM/watch?v={id}",
    "https://www.youtube.com:443/watch?v={id}",
    "http://youtu.be:80/{id}",
    "//www.youtube.com/watch?v={id}",
    "  https://youtu.be/{id}  \n",
]


@pytest.mark.parametrize("form", URL_FORMS)
def test_every_pasted_form_gives_the_id(form: str) -> None:
    assert parse_youtube_video_id(form.format(id="dQw4w9WgXcQ")) == "dQw4w9WgXcQ"


@given(video_id=video_ids, form=st.sampled_from(URL_FORMS))
def test_generated_ids_round_trip_in_every_form(video_id: str, form: str) -> None:
    assert parse_youtube_video_id(form.format(id=video_id)) == video_id


REFUSED = {
    "https://vimeo.com/123456789": "host",
    "https://youtube.com.evil.org/watch?v=dQw4w9WgXcQ": "host",
    "https://evil.org/youtube.com/watch?v=dQw4w9WgXcQ": "host",
    "https://notyoutube.com/watch?v=dQw4w9WgXcQ": "host",
    "https://youtube.co/watch?v=dQw4w9WgXcQ": "host",
    "https://www.youtube.com/playlist?list=PLabcdefghijklmnop": "playlist",
    "https://www.youtube.com/watch?list=PLabcdefghijklmnop": "playlist",
    "https://www.youtube.com/@SomeChannel": "channel",
    "https://www.youtube.com/channel/UCabcdefghijklmnopqrstuv": "channel",
    "https://www.youtube.com/c/SomeName": "channel",
    "https://www.youtube.com/user/SomeName": "channel",
    "file:///etc/passwd": "scheme",
    "file://youtube.com/watch?v=dQw4w9WgXcQ": "scheme",
    "ftp://youtube.com/watch?v=dQw4w9WgXcQ": "scheme",
    "javascript:alert(1)": "scheme",
    "http://127.0.0.1/watch?v=dQw4w9WgXcQ": "IP address",
    "http://[::1]/watch?v=dQw4w9WgXcQ": "IP address",
    "https://user:pw@youtube.com/watch?v=dQw4w9WgXcQ": "user info",
    "https://youtube.com@evil.org/watch?v=dQw4w9WgXcQ": "user info",
    "https://www.youtube.com:8080/watch?v=dQw4w9WgXcQ": "port",
    "http://www.youtube.com:443/watch?v=dQw4w9WgXcQ": "port",
    "https://www.youtube.com/watch?v=dQw4w9WgXc": "video id",
    "https://www.youtube.com/watch?v=dQw4w9WgXcQQ": "video id",
    "https://www.youtube.com/watch?v=dQw4w9WgX.Q": "video id",
    "https://youtu.be/dQw4w9WgXc%51": "video id",
    "https://www.youtube.com/watch?v=": "video id",
    "https://www.youtube.com/watch?v=dQw4w9WgXcQ&v=aaaaaaaaaaa": "several",
    "https://www.youtube.com/watch": "v=",
    "https://youtu.be/": "one path segment",
    "https://youtu.be/dQw4w9WgXcQ/extra": "one path segment",
    "https://www.youtube.com/shorts/dQw4w9WgXcQ/extra": "path",
    "https://www.youtube.com/": "path",
    "https://www.youtube-nocookie.com/watch?v=dQw4w9WgXcQ": "embed",
    "https://youtu.be/dQw4w\n9WgXcQ": "whitespace",
    "https://youtu.be/dQw4w\t9WgXcQ": "whitespace",
    "https://youtube.com\\@evil.org/watch?v=dQw4w9WgXcQ": "backslash",
    "": "empty",
    "   ": "empty",
    "dQw4w9WgXcQ": "host",
}


@pytest.mark.parametrize(("url", "why"), REFUSED.items())
def test_everything_else_is_refused_saying_why(url: str, why: str) -> None:
    with pytest.raises(InvalidVideoUrl) as info:
        parse_youtube_video_id(url)
    assert why in info.value.message
    assert info.value.code == "invalid_video_url"
    assert info.value.status == 400


@given(st.text(max_size=80))
def test_junk_is_refused_or_yields_an_id_it_contains(text: str) -> None:
    try:
        video_id = parse_youtube_video_id(text)
    except InvalidVideoUrl:
        return
    assert len(video_id) == 11 and video_id in text


@given(
    video_id=video_ids,
    host=st.sampled_from(
        ["youtube.com.evil.org", "youtubee.com", "wwww.youtube.com", "youtu.be.co", "yt.be"]
    ),
)
def test_look_alike_hosts_are_refused(video_id: str, host: str) -> None:
    with pytest.raises(InvalidVideoUrl, match="not YouTube"):
        parse_youtube_video_id(f"https://{host}/watch?v={video_id}")


@given(
    bad_id=st.one_of(
        st.text(alphabet=ID_ALPHABET, min_size=0, max_size=10),
        st.text(alphabet=ID_ALPHABET, min_size=12, max_size=20),
        st.text(alphabet=ID_ALPHABET + "!$.~*'()", min_size=11, max_size=11).filter(
            lambda s: any(c not in ID_ALPHABET for c in s)
        ),
    ),
    form=st.sampled_from(URL_FORMS),
)
def test_malformed_ids_are_refused_in_every_form(bad_id: str, form: str) -> None:
    with pytest.raises(InvalidVideoUrl):
        parse_youtube_video_id(form.format(id=bad_id))


def test_refusal_pickles_with_its_details() -> None:
    with pytest.raises(InvalidVideoUrl) as info:
        parse_youtube_video_id("https://vimeo.com/1")
    again = pickle.loads(pickle.dumps(info.value))
    assert again.code == "invalid_video_url" and again.details == info.value.details


def test_upload_id_is_the_same_from_digest_bytes_path_and_stream(tmp_path: Path) -> None:
    content = b"\x00\x01fake mp4 payload" * 100_000
    path = tmp_path / "clip.mp4"
    path.write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    expected = "up-" + digest[:16]
    hasher = UploadHasher()
    for start in range(0, len(content), 65_536):
        hasher.update(content[start : start + 65_536])
    assert sha256_file(path, chunk_size=4096) == digest
    assert upload_video_id(digest) == expected
    assert upload_video_id(digest.upper()) == expected
    assert upload_video_id(content) == expected
    assert upload_video_id(path) == expected
    assert hasher.video_id == expected and hasher.size == len(content)
    validate_video_id("upload", expected)


def test_identical_uploads_share_an_id_and_different_ones_do_not() -> None:
    assert upload_video_id(b"same bytes") == upload_video_id(b"same bytes")
    assert upload_video_id(b"same bytes") != upload_video_id(b"same bytes!")


@pytest.mark.parametrize("bad", ["", "abc", "g" * 64, "a" * 63, "a" * 65, "/etc/passwd"])
def test_upload_id_refuses_what_is_not_a_digest(bad: str) -> None:
    with pytest.raises(InvalidIdentifier):
        upload_video_id(bad)


def test_upload_id_refuses_empty_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InvalidIdentifier, match="empty"):
        upload_video_id(empty)
    with pytest.raises(InvalidIdentifier, match="does not exist"):
        upload_video_id(tmp_path / "missing.mp4")
    with pytest.raises(InvalidIdentifier, match="empty"):
        upload_video_id(b"")
    with pytest.raises(InvalidIdentifier, match="empty"):
        UploadHasher().video_id  # noqa: B018


@pytest.mark.parametrize(
    ("platform", "video_id"),
    [
        ("youtube", "up-0123456789abcdef"),
        ("upload", "dQw4w9WgXcQ"),
        ("upload", "up-0123456789ABCDEF"),
        ("youtube", "../../etc/pa"),
        ("youtube", "dQw4w9WgXc/"),
        ("vimeo", "dQw4w9WgXcQ"),
    ],
)
def test_video_ids_are_checked_per_platform(platform: str, video_id: str) -> None:
    with pytest.raises(InvalidIdentifier):
        validate_video_id(platform, video_id)


def test_run_ids_are_canonical_uuid4() -> None:
    run_id = new_run_id()
    assert uuid.UUID(run_id).version == 4 and run_id == run_id.lower()
    assert new_run_id() != run_id
    assert canonical_run_id(run_id.upper()) == run_id
    assert canonical_run_id("{" + run_id + "}") == run_id
    with pytest.raises(InvalidIdentifier, match="UUID4"):
        canonical_run_id(str(uuid.uuid1()))
    with pytest.raises(InvalidIdentifier, match="not a UUID"):
        canonical_run_id("../../x")


def test_run_identity_fills_versions_and_is_frozen() -> None:
    identity = RunIdentity.create(
        platform_id="youtube", video_id="dQw4w9WgXcQ", config_hash="ab" * 32
    )
    assert identity.dataprocessor_version == dataprocessor_version()
    assert dataprocessor_version() == __import__("importlib.metadata").metadata.version("trendflow")
    assert identity.sampling_policy_version
    with pytest.raises(ValidationError):
        identity.video_id = "aaaaaaaaaaa"  # type: ignore[misc]
    assert RunIdentity.model_validate_json(identity.model_dump_json()) == identity


@pytest.mark.parametrize(
    "change",
    [
        {"platform_id": "vimeo"},
        {"platform_id": "upload"},
        {"video_id": "short"},
        {"run_id": "not-a-uuid"},
        {"config_hash": "ABC"},
        {"config_hash": "A" * 64},
        {"dataprocessor_version": ""},
        {"sampling_policy_version": " v1"},
        {"extra_field": 1},
    ],
)
def test_run_identity_refuses_bad_fields(change: dict[str, object]) -> None:
    good = RunIdentity.create(
        platform_id="youtube", video_id="dQw4w9WgXcQ", config_hash="ab" * 32
    ).model_dump()
    with pytest.raises(ValidationError):
        RunIdentity(**{**good, **change})
