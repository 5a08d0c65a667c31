"""This machine: the cores this process may run on, and whether the database a URL names runs here
(a Unix socket, the embedded server's; ``localhost`` or a loopback address). Such a server shares
this machine's cores with ours (:func:`app.cli.default_workers`)."""

from __future__ import annotations

import ipaddress
import os
import re
from urllib.parse import parse_qs, unquote, urlsplit


def cores_available() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


_LOCAL_NAMES = frozenset({"", "localhost"})


def _local_host(host: str) -> bool:
    if host.startswith("/") or host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_KEYWORD_HOST = re.compile(r"(?:^|\s)host\s*=\s*(?:'([^']*)'|(\S+))")


def on_this_machine(url: str) -> bool:
    """True when every host of the libpq connection string ``url`` is this machine: a URL's hosts
    (a ``host`` query parameter overrides them; percent-encoded socket directories are decoded), or
    a ``key=value`` string's ``host``; no host at all means libpq's default, the local socket."""
    if "://" not in url:
        found = _KEYWORD_HOST.search(url)
        hosts = (found.group(1) or found.group(2)).split(",") if found else [""]
        return all(_local_host(h.strip()) for h in hosts)
    parts = urlsplit(url)
    query = parse_qs(parts.query).get("host")
    if query:
        hosts = ",".join(query).split(",")
    else:
        netloc = parts.netloc.rpartition("@")[2]
        hosts = [unquote(_without_port(h)) for h in netloc.split(",")]
    return all(_local_host(h.strip()) for h in hosts)


def _without_port(host: str) -> str:
    """``host[:port]``'s host (an IPv6 address comes in brackets)."""
    if host.startswith("["):
        return host[1 : host.find("]")]
    return host.partition(":")[0]
