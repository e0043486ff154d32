"""The `tweetpipe` command: run the local stack and look into the search store."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import ClassVar

from tweetpipe.search import PageRequest, SearchQuery, open_store
from tweetpipe.settings import SearchSettings, ServiceSettings


class SearchCommandSettings(ServiceSettings):
    """`tweetpipe search` reads the store the way the stack's services are told to."""

    application: ClassVar[str] = "tweetpipe"

    search: SearchSettings = SearchSettings()


def up(args: argparse.Namespace) -> int:
    """Run the whole pipeline with the single-machine stand-ins, which only a development
    install has (the `local` extra); the production image does not."""
    try:
        from devstack.up import run_stack
    except ImportError as exc:
        print(f"tweetpipe up needs the single-machine stand-ins (devstack): {exc}", file=sys.stderr)
        return 1
    return run_stack(rate=args.rate, count=args.count, seed=args.seed)


def search(args: argparse.Namespace) -> int:
    settings = SearchCommandSettings().search
    store = open_store(settings)
    try:
        query = SearchQuery(text=args.text or None, user_id=args.user, hashtag=args.hashtag)
        if args.action == "count":
            print(store.count(query))
            return 0
        page = store.search(query, PageRequest(size=args.size, sort=args.sort))
        print(f"{page.total} matching tweets")
        for hit in page.hits:
            tweet = hit.tweet
            text = hit.highlights[0] if hit.highlights else tweet.text
            print(
                f"{tweet.created_at:%Y-%m-%d %H:%M:%S} user {tweet.user_id} [{tweet.lang}] {text}"
            )
        return 0
    finally:
        store.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tweetpipe", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("up", help="run the whole pipeline on this machine")
    run.add_argument("--rate", type=float, default=20.0, help="tweets per second (0 = flat out)")
    run.add_argument("--count", type=int, default=None, help="stop generating after N tweets")
    run.add_argument("--seed", type=int, default=None, help="random seed for reproducible runs")
    run.set_defaults(handler=up)

    find = commands.add_parser("search", help="count or search indexed tweets")
    find.add_argument("action", choices=["count", "query"])
    find.add_argument("text", nargs="?", default="")
    find.add_argument("--user", type=int, default=None)
    find.add_argument("--hashtag", default=None)
    find.add_argument("--size", type=int, default=10)
    find.add_argument("--sort", choices=["relevance", "newest", "oldest"], default="relevance")
    find.set_defaults(handler=search)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
