"""Which of the stack's ports are taken, checked before `tweetpipe up` starts anything."""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping


def in_use(ports: Mapping[str, int], host: str = "127.0.0.1") -> dict[str, int]:
    """The entries of `ports` (name → port) that something already holds on `host`.

    A port is free when a socket can bind it (with SO_REUSEADDR, as servers bind, so a
    connection lingering in TIME_WAIT does not count as a holder)."""
    taken: dict[str, int] = {}
    for name, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                    raise
                taken[name] = port
    return taken


def shared(ports: Mapping[str, int]) -> dict[int, list[str]]:
    """Ports given to more than one service (port → names): the second to start would fail
    late and far from the setting that caused it."""
    names: dict[int, list[str]] = {}
    for name, port in ports.items():
        names.setdefault(port, []).append(name)
    return {port: owners for port, owners in names.items() if len(owners) > 1}


def describe_shared(clashes: Mapping[int, list[str]]) -> str:
    """One line naming every port set for two services and the settings that set it."""
    listed = "; ".join(
        f"{port} for {' and '.join(f'{name} (PORTS__{name.upper()})' for name in names)}"
        for port, names in clashes.items()
    )
    return f"tweetpipe up: one port for two services: {listed}; give each service its own port"


def describe(taken: Mapping[str, int]) -> str:
    """One line naming every taken port and the setting that moves it."""
    listed = ", ".join(f"{port} ({name}, PORTS__{name.upper()})" for name, port in taken.items())
    return (
        f"tweetpipe up: port{'s' if len(taken) > 1 else ''} already in use: {listed}; "
        "stop what holds them or choose other ports with those settings"
    )
