"""Outbound URL policy for webhooks: http(s) only, never internal or private addresses.

A host name is resolved and every address it resolves to must be public: globally routable
(``ipaddress``'s ``is_global``, which also excludes the shared address space 100.64.0.0/10 of
carrier-grade NAT and cloud VPC internals, documentation and benchmarking ranges) and not
multicast. ``api.webhook_allow_loopback`` (development)
additionally admits 127.0.0.0/8 and ::1 — still no other internal range.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from trendflow.errors import InvalidCallbackUrl


def _refuse(url: str, why: str) -> InvalidCallbackUrl:
    shown = url if len(url) <= 200 else url[:200] + "…"
    return InvalidCallbackUrl(f"callback_url refused ({why}): {shown!r}", reason=why)


def _public(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_loopback: bool) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.is_loopback:
        return allow_loopback
    return addr.is_global and not addr.is_multicast


def check_callback_syntax(url: str) -> tuple[str, int]:
    """``(host, port)`` of a well-formed http(s) URL without credentials."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise _refuse(url, "only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None:
        raise _refuse(url, "credentials in the URL are not allowed")
    if not parts.hostname:
        raise _refuse(url, "no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise _refuse(url, "invalid port") from None
    return parts.hostname, port


@dataclass(frozen=True, slots=True)
class CheckedTarget:
    """A callback URL and the address it was checked at: connect to ``address`` only, so a
    name that resolves differently a moment later (DNS rebinding) cannot redirect the request."""

    url: str
    host: str
    port: int
    address: str

    @property
    def pinned_url(self) -> str:
        """``url`` with its host replaced by the checked address (send ``Host: host``)."""
        parts = urlsplit(self.url)
        ip = f"[{self.address}]" if ":" in self.address else self.address
        return urlunsplit(parts._replace(netloc=f"{ip}:{self.port}"))

    @property
    def host_header(self) -> str:
        return urlsplit(self.url).netloc


async def check_callback_url(url: str, *, allow_loopback: bool) -> str:
    """``url`` if it may receive webhooks; :class:`InvalidCallbackUrl` saying why not."""
    return (await resolve_callback_url(url, allow_loopback=allow_loopback)).url


async def resolve_callback_url(url: str, *, allow_loopback: bool) -> CheckedTarget:
    """Check ``url`` as :func:`check_callback_url` does; the address to connect to."""
    host, port = check_callback_syntax(url)
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        if host.lower() == "localhost" or host.lower().endswith(".localhost"):
            addresses = [ipaddress.ip_address("127.0.0.1")]
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
            except OSError:
                raise _refuse(url, "the host name does not resolve") from None
            addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for addr in addresses:
        if not _public(addr, allow_loopback):
            raise _refuse(url, f"{addr} is an internal or private address")
    return CheckedTarget(url=url, host=host, port=port, address=str(addresses[0]))
