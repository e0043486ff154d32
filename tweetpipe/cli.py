"""The `tweetpipe` command: run the local stack and look into the search store."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from tweetpipe.local import plan
from tweetpipe.local.plan import GeneratorRun, StackSettings
from tweetpipe.local.prometheus import PrometheusServer, prometheus_available
from tweetpipe.local.stack import LocalStack
from tweetpipe.search import PageRequest, SearchQuery, open_store


def up(args: argparse.Namespace) -> int:
    settings = StackSettings()
    index_path = settings.search.tantivy_path
    if not index_path.is_absolute():
        index_path = Path.cwd() / index_path
    data_dir = settings.data_dir.resolve()
    specs = plan.services(settings, GeneratorRun(rate=args.rate, count=args.count, seed=args.seed))
    prometheus = None
    if settings.monitoring and prometheus_available():
        options = settings.prometheus
        prometheus = PrometheusServer(
            settings.ports.prometheus,
            plan.scrape_targets(specs),
            data_dir / "prometheus",
            scrape_interval_s=options.scrape_interval_s,
            retention=options.retention,
            log_path=data_dir / "logs" / "prometheus.log",
        )
    stack = LocalStack(
        specs,
        data_dir,
        settings.ports.broker,
        plan.base_env(settings, index_path),
        prometheus=prometheus,
    )

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stack.request_stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def ready() -> None:
        url = prometheus.url if prometheus else None
        print(plan.banner(settings, index_path, url), flush=True)

    try:
        stack.start()
        return stack.wait(on_ready=ready)
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"tweetpipe up failed: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop()


def search(args: argparse.Namespace) -> int:
    settings = StackSettings().search
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
