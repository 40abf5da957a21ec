"""Outbound URL policy for webhooks: http(s) only, never internal or private addresses.

A host name is resolved and every address it resolves to must be public (not loopback, private,
link-local, multicast, reserved or unspecified). ``api.webhook_allow_loopback`` (development)
additionally admits 127.0.0.0/8 and ::1 — still no other internal range.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from trendflow.errors import InvalidCallbackUrl


def _refuse(url: str, why: str) -> InvalidCallbackUrl:
    shown = url if len(url) <= 200 else url[:200] + "…"
    return InvalidCallbackUrl(f"callback_url refused ({why}): {shown!r}", reason=why)


def _public(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_loopback: bool) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.is_loopback:
        return allow_loopback
    return not (
        addr.is_private
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
    )


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


async def check_callback_url(url: str, *, allow_loopback: bool) -> str:
    """``url`` if it may receive webhooks; :class:`InvalidCallbackUrl` saying why not."""
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
    return url
