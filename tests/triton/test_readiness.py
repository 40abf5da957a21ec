"""The readiness fact run creation checks: no server → 503 model_serving_unavailable with a
Retry-After; a deployment without models → 422 model_serving_disabled; a real server that is
ready passes, and the answer is cached for ``ttl_s``."""

from __future__ import annotations

import pytest

from tests.fixtures.triton import TritonServer
from trendflow.errors import ModelServingDisabled, ModelServingUnavailable
from trendflow.settings import TritonSettings
from trendflow.triton.readiness import ModelServingProbe
from trendflow.triton.server import free_port


async def test_no_server_is_unavailable_with_retry_after() -> None:
    probe = ModelServingProbe(TritonSettings(url=f"127.0.0.1:{free_port()}", timeout_s=2))
    with pytest.raises(ModelServingUnavailable) as err:
        await probe.require_ready(["faces"])
    assert err.value.status == 503 and err.value.details["components"] == ["faces"]
    assert err.value.details["retry_after_s"] > 0
    await probe.require_ready([])  # nothing model-backed: nothing to check


async def test_a_deployment_without_models_is_disabled() -> None:
    probe = ModelServingProbe(TritonSettings(enabled=False))
    with pytest.raises(ModelServingDisabled):
        await probe.require_ready(["transcript"])


async def test_a_ready_server_passes_and_is_cached(triton_server: TritonServer) -> None:
    probe = ModelServingProbe(TritonSettings(url=triton_server.info.grpc_url), ttl_s=60)
    await probe.require_ready(["faces"])
    assert await probe.ready()
