"""`python -m tweetpipe.healthcheck URL`: exit 0 when URL answers 200, else 1 (container probes).

The service image has no curl; this keeps container health checks to one short command.
"""

from __future__ import annotations

import sys

import httpx


def probe(url: str, timeout_s: float = 3.0) -> int:
    try:
        response = httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        print(f"{url}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"{url}: HTTP {response.status_code}: {response.text[:500]}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tweetpipe.healthcheck URL", file=sys.stderr)
        return 2
    return probe(argv[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
