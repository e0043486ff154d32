"""Token-bucket rate limits per caller and route (pyrate-limiter's `TokenBucket`).

A caller is the verified token's subject, or the client address when anonymous. Buckets live
in Redis when `redis_url` is set, so every gateway instance draws from the same bucket (the
check-and-take runs as one Lua script); otherwise in this process.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from inspect import isawaitable

from pyrate_limiter import (
    Duration,
    InMemoryStateStore,
    Rate,
    RedisStateStore,
    StateStore,
    TokenBucket,
    WallClock,
)
from redis.asyncio import Redis

from gateway.settings import RateLimitSettings

MAX_LOCAL_BUCKETS = 100_000
"""Idle callers' in-process buckets are dropped beyond this (Redis keys expire by TTL)."""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_s: int = 0


class RateLimiter:
    def __init__(self, settings: RateLimitSettings, redis: Redis | None = None) -> None:
        self.settings = settings
        self._rates = [Rate(settings.replenish_per_s, Duration.SECOND, burst=settings.burst)]
        self._algorithm = TokenBucket()
        self._redis = redis
        self._clock = WallClock()
        self._stores: OrderedDict[str, StateStore] = OrderedDict()
        # A full bucket refills in burst / rate seconds; keep Redis keys a little longer.
        self._ttl_ms = math.ceil(settings.burst / settings.replenish_per_s * 1000) + 1000

    def _store(self, key: str) -> StateStore:
        store = self._stores.get(key)
        if store is None:
            if self._redis is not None:
                store = RedisStateStore(self._redis, f"tweetpipe:gateway:rate:{key}", self._ttl_ms)
            else:
                store = InMemoryStateStore()
            self._stores[key] = store
            if len(self._stores) > MAX_LOCAL_BUCKETS:
                self._stores.popitem(last=False)
        else:
            self._stores.move_to_end(key)
        return store

    async def check(self, route: str, caller: str) -> Verdict:
        """Take one token from the caller's bucket for `route`, if there is one."""
        if not self.settings.enabled:
            return Verdict(allowed=True)
        decision = self._store(f"{route}:{caller}").check(
            self._algorithm, self._rates, self._clock.now(), self.settings.requested_tokens
        )
        if isawaitable(decision):
            decision = await decision
        if decision.allowed:
            return Verdict(allowed=True)
        wait_ms = decision.retry_after_ms or 1000
        return Verdict(allowed=False, retry_after_s=max(1, math.ceil(wait_ms / 1000)))

    @property
    def headers(self) -> dict[str, str]:
        """The limits, advertised on every answer like the classic gateway does."""
        return {
            "X-RateLimit-Replenish-Rate": str(self.settings.replenish_per_s),
            "X-RateLimit-Burst-Capacity": str(self.settings.burst),
            "X-RateLimit-Requested-Tokens": str(self.settings.requested_tokens),
        }
