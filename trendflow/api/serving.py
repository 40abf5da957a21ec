"""How Ray Serve carries the API: the environment its processes need, and the URLs it answers on.

Ray Serve reads its mode from environment variables once, at import, in every one of its
processes (controller, proxy, replicas). :func:`serve_environment` derives them from
:class:`~trendflow.settings.ApiSettings`, so the local stack (``trendflow.stack``) sets them
before Ray starts and a cluster operator sets the same on ``ray start`` (docs/api.md).

**Direct ingress** (``api.serve_direct_ingress``): each ingress replica runs its own HTTP server
(uvicorn) on the configured host, ports taken from ``[api.port, api.port + replicas)``, so a
request no longer crosses the proxy actor nor makes the replica's actor call back to the proxy
for the request body. Serve's proxy keeps running on the head node (its port is
``api.serve_proxy_port``) and still routes to every replica.
"""

from __future__ import annotations

from typing import Any

from trendflow.errors import ConfigError
from trendflow.settings import ApiSettings

# Every replica also starts Serve's inter-deployment gRPC server, hard-coded on "[::]:0" (all
# interfaces, plaintext). This app never calls another deployment, so the replica binds it to
# loopback instead (see `bind_internal_grpc_to_loopback`).
_ALL_INTERFACES = "[::]:"
_LOOPBACK = "127.0.0.1:"


def serve_environment(api: ApiSettings) -> dict[str, str]:
    """The ``RAY_SERVE_*`` variables Serve's processes must see for these settings."""
    inline = "0" if api.serve_user_code_in_main_loop else "1"
    env = {
        "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": inline,
        "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": inline,
        "RAY_SERVE_LOG_TO_STDERR": "1" if api.serve_log_to_stderr else "0",
        "RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE": str(api.serve_log_buffer_lines),
    }
    if not api.serve_direct_ingress:
        return {**env, "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0"}
    return {
        **env,
        "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
        # Serve hands replica ports out of [MIN, MAX) lowest first: replica i gets port + i.
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(api.port),
        "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(api.port + api.replicas),
        # A restarted replica takes its predecessor's port at once (the quarantine exists for
        # HAProxy, which is not used), and a stopping replica stops serving within a second
        # instead of draining 30 s for an external load balancer.
        "RAY_SERVE_PORT_QUARANTINE_S": "0",
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "1",
    }


def check_serve_environment(api: ApiSettings) -> None:
    """:class:`ConfigError` unless this process's Ray Serve runs in the mode the settings ask.

    Serve fixes its mode at import from the environment; a cluster started without
    ``trendflow serve-env``'s variables would otherwise serve through the proxy unnoticed.
    """
    from ray.serve._private import constants

    enabled = constants.RAY_SERVE_ENABLE_DIRECT_INGRESS
    if enabled != api.serve_direct_ingress:
        raise ConfigError(
            f"TRENDFLOW_API__SERVE_DIRECT_INGRESS is {api.serve_direct_ingress} but this Ray "
            f"Serve runs with direct ingress {'on' if enabled else 'off'}: start Ray with the "
            "variables `trendflow serve-env` prints (docs/api.md)")
    if enabled:
        low = constants.RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT
        high = constants.RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT
        if (low, high) != (api.port, api.port + api.replicas):
            raise ConfigError(
                f"Ray Serve hands replicas ports [{low}, {high}) but the settings ask for "
                f"[{api.port}, {api.port + api.replicas}) (TRENDFLOW_API__PORT, "
                "TRENDFLOW_API__REPLICAS): start Ray with `trendflow serve-env`'s variables")


def direct_ports(api: ApiSettings) -> list[int]:
    """Ports the ingress replicas listen on in direct-ingress mode (replica i: ``port + i``)."""
    return [api.port + i for i in range(api.replicas)] if api.serve_direct_ingress else []


def bind_internal_grpc_to_loopback() -> None:
    """Make this replica process bind Serve's inter-deployment gRPC server to 127.0.0.1.

    Called from the replica's constructor, which Serve runs before it starts that server.
    Raises if Ray no longer has the hook, so an upgrade cannot silently reopen the port.
    """
    from ray.serve._private import replica

    original: Any = getattr(replica, "add_port_to_grpc_server", None)
    if original is None:
        raise RuntimeError("ray.serve._private.replica.add_port_to_grpc_server is gone: "
                           "check which address this Ray version's replicas bind")
    if getattr(original, "_trendflow_loopback", False):
        return

    def add_port(server: Any, address: str) -> int:
        if address.startswith(_ALL_INTERFACES):
            address = _LOOPBACK + address[len(_ALL_INTERFACES):]
        port: int = original(server, address)
        return port

    add_port._trendflow_loopback = True  # type: ignore[attr-defined]
    replica.add_port_to_grpc_server = add_port
