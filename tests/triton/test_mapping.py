"""Model mapping against the built repository and the real server."""

from __future__ import annotations

import pytest

from tests.fixtures.triton import TritonServer
from trendflow.errors import InvalidProfile, ModelNotFound
from trendflow.settings import Settings
from trendflow.triton.mapping import parse_ref, resolve


def test_default_mapping_resolves_on_the_server(triton_server: TritonServer) -> None:
    mapping = Settings().triton.models
    client = triton_server.client()
    refs = resolve(mapping, mapping, triton_server.repository, client=client)
    assert refs["faces"].ref == "face_detector:1"
    assert len({r.weights_digest for r in refs.values()}) == len(refs)  # distinct weights


def test_missing_version_or_mapping_is_never_substituted(triton_server: TritonServer) -> None:
    with pytest.raises(ModelNotFound):
        resolve(["faces"], {"faces": "face_detector:2"}, triton_server.repository)
    with pytest.raises(ModelNotFound):
        resolve(["faces"], {}, triton_server.repository)
    with pytest.raises(InvalidProfile):
        parse_ref("face_detector")
