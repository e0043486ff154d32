"""Who is calling, for rate limits: the verified token's subject, else the client address.

Only a token that passes full validation names a user; anything else counts against the
address it came from, so a forged `sub` cannot spend someone else's budget. The validator
remembers accepted tokens, so the signature is checked once per token, not once per request.
"""

from __future__ import annotations

from fastapi import Request

from tweetpipe.auth import InvalidToken, TokenValidator


class CallerIdentity:
    def __init__(self, validator: TokenValidator) -> None:
        self._validator = validator

    async def __call__(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token:
            try:
                principal = await self._validator.validate_async(token.strip())
            except InvalidToken:
                pass
            else:
                return f"user:{principal.subject}"
        return f"ip:{request.client.host if request.client else 'unknown'}"
