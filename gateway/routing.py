"""Where a route's requests go: instances from discovery, taken in turn.

Instances come from the Eureka registry when the gateway has one (cached for a few seconds),
else from the route's fixed `urls`. An instance that refused a connection sits out briefly,
so round-robin skips it until discovery drops it or it answers again.
"""

from __future__ import annotations

import itertools
import posixpath
import time
from collections.abc import Awaitable, Callable, Sequence

from gateway.settings import AdminPathSettings, RouteSettings

Lookup = Callable[[str], Awaitable[list[str]]]
"""Base URLs of the UP instances of an application, from discovery."""
SIT_OUT_S = 5.0


class Route:
    def __init__(self, settings: RouteSettings, lookup: Lookup | None) -> None:
        self.settings = settings
        self.id = settings.id
        self._lookup = lookup
        self._turn = itertools.count()
        self._benched: dict[str, float] = {}

    async def instances(self) -> list[str]:
        """Instances in the order to try them: the next in turn first, benched ones last."""
        found: Sequence[str] = []
        if self._lookup is not None:
            found = await self._lookup(self.settings.service_id)
        if not found:
            found = self.settings.urls
        if not found:
            return []
        start = next(self._turn) % len(found)
        ordered = [u.rstrip("/") for u in [*found[start:], *found[:start]]]
        now = time.monotonic()
        healthy = [u for u in ordered if self._benched.get(u, 0) <= now]
        return healthy + [u for u in ordered if u not in healthy]

    def bench(self, url: str) -> None:
        self._benched[url] = time.monotonic() + SIT_OUT_S

    def restore(self, url: str) -> None:
        self._benched.pop(url, None)


def match(routes: Sequence[Route], path: str) -> tuple[Route, str] | None:
    """The route for `/route-id/rest…` and the path to send upstream (`/rest…`)."""
    head, _, rest = path.lstrip("/").partition("/")
    for route in routes:
        if route.id == head:
            return route, "/" + rest
    return None


class AdminPaths:
    """Which upstream paths are the services' admin endpoints (`/metrics`, `/health`, …).

    Paths are compared as the upstream would route them: percent-decoded (Starlette hands over
    the decoded path), with repeated slashes, `.` and `..` segments and a trailing slash
    resolved, so `//metrics`, `/x/../metrics` and `/metrics/` are the same endpoint.
    """

    def __init__(self, settings: AdminPathSettings) -> None:
        self._prefixes = () if settings.routed else tuple(p.rstrip("/") for p in settings.paths)

    def hidden(self, path: str) -> bool:
        if not self._prefixes:
            return False
        normal = posixpath.normpath("/" + path.lstrip("/"))
        normal = "/" + normal.lstrip("/")  # normpath keeps a leading "//"
        return any(normal == p or normal.startswith(p + "/") for p in self._prefixes)
