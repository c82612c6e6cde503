"""The client's IP address behind proxies: forwarding headers count only from trusted peers.

The right-most untrusted address of `Forwarded` (RFC 7239), else `X-Forwarded-For`, else
`X-Real-IP` is the client; a spoofed header from an untrusted peer is ignored.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .request import _View

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_PORT = re.compile(r"[0-9]{1,5}")


@lru_cache(maxsize=64)
def trusted_networks(entries: tuple[str, ...]) -> tuple[_Network, ...]:
    """Parsed once per configuration: it runs on every request."""
    networks: list[_Network] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except (ValueError, TypeError, AttributeError):
            raise ValueError(
                f"trusted_proxies entry {entry!r} is not an IP address or CIDR"
            ) from None
    return tuple(networks)


def _is_trusted(ip: _IP, networks: tuple[_Network, ...]) -> bool:
    return any(ip in net for net in networks)


def _parse_ip(text: str) -> _IP | None:
    """Parse one hop: ``1.2.3.4``, ``1.2.3.4:80``, ``2001:db8::1``, ``[2001:db8::1]:80``.

    Ports are dropped and IPv4-mapped IPv6 (``::ffff:1.2.3.4``, what dual-stack sockets
    report) becomes plain IPv4, so one trusted-proxy entry matches both spellings.
    """
    text = text.strip()
    if not text or len(text) > 100:
        return None
    if text.startswith("["):
        end = text.find("]")
        rest = text[end + 1 :]
        if end < 0 or (rest and not (rest[0] == ":" and _PORT.fullmatch(rest[1:]))):
            return None
        host = text[1:end]
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
        if not _PORT.fullmatch(port):
            return None
    else:
        host = text
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def client_ip(view: _View, trusted: tuple[str, ...]) -> str | None:
    """Right-most untrusted address: the standard defence against spoofed forwarding headers.

    Forwarding headers are consulted only when the TCP peer itself is a trusted proxy.
    The chain is walked right to left (nearest hop first), skipping trusted proxies; the
    first untrusted hop is the client.  An unparsable hop stops the walk at the last
    address we could vouch for, and an all-trusted chain yields its left-most hop.
    """
    peer = _parse_ip(view.peer) if view.peer else None
    if peer is None:
        return None
    networks = trusted_networks(trusted)
    if not networks or not _is_trusted(peer, networks):
        return str(peer)
    client = peer
    for hop in reversed(_proxy_chain(view)):
        ip = _parse_ip(hop) if hop is not None else None
        if ip is None:
            break
        client = ip
        if not _is_trusted(ip, networks):
            break
    return str(client)


def _proxy_chain(view: _View) -> list[str | None]:
    """Hops from the first forwarding header present: Forwarded, X-Forwarded-For, X-Real-IP.

    ``None`` marks a hop with no usable address (``for=unknown``, obfuscated, or missing).
    Empty list elements are skipped, as RFC 9110 section 5.6.1 requires.
    """
    forwarded = view.joined("forwarded")
    if forwarded and forwarded.strip():
        hops: list[str | None] = []
        for element in _split_unquoted(forwarded, ","):
            if not element.strip():
                continue
            value: str | None = None
            for pair in _split_unquoted(element, ";"):
                name, sep, raw = pair.partition("=")
                if sep and name.strip().lower() == "for":
                    value = _unquote(raw.strip())
                    break
            hops.append(value)
        return hops
    xff = view.joined("x-forwarded-for")
    if xff and xff.strip():
        return [hop for hop in xff.split(",") if hop.strip()]
    real_ip = view.first("x-real-ip")
    if real_ip and real_ip.strip():
        return [real_ip]
    return []


def _split_unquoted(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside RFC 7230 quoted-strings (Forwarded quotes IPv6 and ports)."""
    if '"' not in text:
        return text.split(sep)
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == sep and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value
