"""Who is calling, for rate limits: the verified token's subject, else the client address.

Only a token that passes full validation names a user; anything else counts against the
address it came from, so a forged `sub` cannot spend someone else's budget. Verified tokens
are remembered briefly, so the signature is checked once per token, not once per request.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from tweetpipe.auth import InvalidToken, TokenValidator

REMEMBER_S = 30.0
MAX_REMEMBERED = 10_000


class CallerIdentity:
    def __init__(self, validator: TokenValidator) -> None:
        self._validator = validator
        self._known: OrderedDict[str, tuple[str, float]] = OrderedDict()

    async def __call__(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token:
            subject = await self._subject(token.strip())
            if subject is not None:
                return f"user:{subject}"
        return f"ip:{request.client.host if request.client else 'unknown'}"

    async def _subject(self, token: str) -> str | None:
        now = time.monotonic()
        known = self._known.get(token)
        if known is not None and known[1] > now:
            return known[0]
        try:
            principal = await run_in_threadpool(self._validator.validate, token)
        except InvalidToken:
            return None
        self._known[token] = (principal.subject, now + REMEMBER_S)
        if len(self._known) > MAX_REMEMBERED:
            self._known.popitem(last=False)
        return principal.subject
