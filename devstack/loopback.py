"""The stand-ins' one safety rule: they listen on loopback unless explicitly told otherwise.

The broker, the registry, the dev issuer and the Prometheus launcher have no authentication
worth the name; bound to a reachable address they would be open to the network.
"""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """`localhost`, or an address in 127.0.0.0/8 or ::1 (bracketed or not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def refusal(what: str, host: str, *, allowed: bool, override: str) -> str | None:
    """Why `what` must not bind `host` (None when it may): not loopback, and not `allowed` by
    the setting named in `override`."""
    if allowed or is_loopback(host):
        return None
    return f"refusing to bind {host}: {what} listens on loopback only; set {override} to override"
