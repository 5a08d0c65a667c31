"""The request metadata recorded on every event besides the actor: the request id and the client
address, both bounded and clean, since they are copied onto each event a request writes.

- ``X-Request-Id``: at most :data:`MAX_REQUEST_ID_LENGTH` printable ASCII characters, else 400;
  absent, a UUID is generated.
- The client address: the direct peer, unless that peer is one of ``FHIRLEDGER_TRUSTED_PROXIES``
  (IPs or CIDRs, comma-separated); then ``X-Forwarded-For`` is read from the right, skipping
  trusted proxies, and the first other address is the client (addresses further left were written
  by the client itself and prove nothing).
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from fastapi import Request

from app.errors import invalid
from app.identity import new_id

MAX_REQUEST_ID_LENGTH = 128
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def header(request: Request, name: str) -> str | None:
    """The first value of the header ``name`` (lower case), as ``request.headers.get(name)`` gives
    it, read from the ASGI scope's list: no ``Headers`` built, no ``KeyError`` raised and caught
    for an absent header (a write looks up some ten headers, most of them absent)."""
    key = name.encode("latin-1")
    for k, v in request.scope["headers"]:
        if k == key:
            return v.decode("latin-1")
    return None


def request_id_of(request: Request) -> str:
    value = header(request, "x-request-id")
    if not value:
        return new_id()  # a random UUID
    if len(value) > MAX_REQUEST_ID_LENGTH:
        raise invalid(
            f"The X-Request-Id header is {len(value)} characters long; at most {MAX_REQUEST_ID_LENGTH} are accepted"
        )
    if not _PRINTABLE_ASCII.fullmatch(value):
        kind = "a control character" if _CONTROL.search(value) else "a character outside printable ASCII"
        raise invalid(
            f"The X-Request-Id header holds {kind} ({value[:60]!r}); send letters, digits and punctuation only"
        )
    return value


@lru_cache(maxsize=8)
def trusted_networks(setting: str) -> tuple[Network, ...]:
    """``FHIRLEDGER_TRUSTED_PROXIES`` parsed; a bad entry is a configuration error (ValueError)."""
    out = []
    for part in setting.split(","):
        if part.strip():
            try:
                out.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise ValueError(f"FHIRLEDGER_TRUSTED_PROXIES: '{part.strip()}' is not an IP address or CIDR") from None
    return tuple(out)


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(request: Request) -> str | None:
    client = request.scope.get("client")  # what ``request.client`` wraps
    peer = client[0] if client else None
    networks = trusted_networks(request.app.state.settings.trusted_proxies)
    if peer is None or not networks:
        return peer
    forwarded = header(request, "x-forwarded-for")
    if not forwarded or not _trusted(peer, networks):
        return peer
    hops = [hop.strip() for hop in forwarded.split(",")]
    for hop in reversed(hops):
        if _trusted(hop, networks):
            continue
        try:
            return str(ipaddress.ip_address(hop))
        except ValueError:
            raise invalid(
                f"X-Forwarded-For from the trusted proxy {peer} names '{hop[:60]}', not an IP address"
            ) from None
    return hops[0] if hops else peer
