"""Whether the database a URL names runs on this machine: a Unix socket (the embedded server's),
``localhost`` or a loopback address. Such a server shares this machine's cores with ours
(:func:`app.cli.default_workers`)."""

from __future__ import annotations

import ipaddress
from urllib.parse import parse_qs, urlsplit

_LOCAL_NAMES = frozenset({"", "localhost"})


def _local_host(host: str) -> bool:
    if host.startswith("/") or host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def on_this_machine(url: str) -> bool:
    """True when every host of the libpq URL ``url`` is this machine (no host at all means
    libpq's default, the local socket); a ``host`` query parameter overrides the URL's."""
    parts = urlsplit(url)
    query = parse_qs(parts.query).get("host")
    if query:
        hosts = ",".join(query).split(",")
    else:
        netloc = parts.netloc.rpartition("@")[2]
        hosts = [_without_port(h) for h in netloc.split(",")]
    return all(_local_host(h.strip()) for h in hosts)


def _without_port(host: str) -> str:
    """``host[:port]``'s host (an IPv6 address comes in brackets)."""
    if host.startswith("["):
        return host[1 : host.find("]")]
    return host.partition(":")[0]
