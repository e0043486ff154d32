"""The `tweetpipe` command: run the local stack and look into the search store."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import ClassVar

from pydantic import BaseModel

from tweetpipe.local.stack import LocalStack, ServiceSpec
from tweetpipe.search import PageRequest, SearchQuery, open_store
from tweetpipe.settings import SearchSettings, ServiceSettings


class LocalPorts(BaseModel):
    broker: int = 9092
    issuer: int = 8180
    gateway: int = 8080
    query_service: int = 8183
    twitter_to_kafka: int = 8081
    kafka_to_elastic: int = 8082
    kafka_streams: int = 8083
    analytics_service: int = 8084


class StackSettings(ServiceSettings):
    """What `tweetpipe up` needs; the services read their own settings as usual."""

    application: ClassVar[str] = "tweetpipe"

    ports: LocalPorts = LocalPorts()
    search: SearchSettings = SearchSettings()


def _services(settings: StackSettings, args: argparse.Namespace) -> list[ServiceSpec]:
    generator_env = {"GENERATOR__RATE": str(args.rate)}
    if args.count is not None:
        generator_env["GENERATOR__COUNT"] = str(args.count)
    if args.seed is not None:
        generator_env["GENERATOR__SEED"] = str(args.seed)
    streams_env = {"STREAMS__STATE_DIR": str(settings.data_dir.resolve() / "streams")}
    ports = settings.ports
    issuer_url = f"http://127.0.0.1:{ports.issuer}/realms/microservices-realm"
    return [
        ServiceSpec("dev-issuer", "tweetpipe.local.issuer", ports.issuer),
        ServiceSpec("kafka-to-elastic", "kafka_to_elastic", settings.ports.kafka_to_elastic),
        ServiceSpec(
            "kafka-streams", "kafka_streams", settings.ports.kafka_streams, env=streams_env
        ),
        ServiceSpec("analytics", "analytics_service", settings.ports.analytics_service),
        ServiceSpec(
            "query-service",
            "query_service",
            ports.query_service,
            env={
                "AUTH__ISSUER_URL": issuer_url,
                "ENRICHMENT__KAFKA_STREAMS_URL": f"http://127.0.0.1:{ports.kafka_streams}",
                "ENRICHMENT__ANALYTICS_URL": f"http://127.0.0.1:{ports.analytics_service}",
            },
        ),
        ServiceSpec(
            "gateway",
            "gateway",
            ports.gateway,
            env={"AUTH__ISSUER_URL": issuer_url, "ROUTES": _routes(ports)},
        ),
        ServiceSpec(
            "twitter-to-kafka",
            "twitter_to_kafka",
            settings.ports.twitter_to_kafka,
            env=generator_env,
            one_shot=args.count is not None,
        ),
    ]


def _routes(ports: LocalPorts) -> str:
    """The gateway's fixed instances on this machine (discovery, when running, wins)."""
    routes = [
        ("elastic-query-service", "ELASTIC-QUERY-SERVICE", ports.query_service),
        ("analytics-service", "ANALYTICS-SERVICE", ports.analytics_service),
        ("kafka-streams-service", "KAFKA-STREAMS-SERVICE", ports.kafka_streams),
    ]
    return json.dumps(
        [{"id": i, "service_id": s, "urls": [f"http://127.0.0.1:{p}"]} for i, s, p in routes]
    )


def up(args: argparse.Namespace) -> int:
    settings = StackSettings()
    data_dir = settings.data_dir.resolve()
    index_path = settings.search.tantivy_path
    if not index_path.is_absolute():
        index_path = Path.cwd() / index_path
    base_env = {
        "PROFILE": "local",
        "DATA_DIR": str(data_dir),
        "KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{settings.ports.broker}",
        "SEARCH__TANTIVY_PATH": str(index_path),
    }
    stack = LocalStack(_services(settings, args), data_dir, settings.ports.broker, base_env)

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stack.request_stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def ready() -> None:
        print(
            "\n".join(
                [
                    "",
                    "tweetpipe is running (single-machine profile). Ctrl-C stops everything.",
                    f"  entry point       http://127.0.0.1:{settings.ports.gateway}"
                    "/elastic-query-service/documents/search?q=kafka  (gateway; bearer token)",
                    f"  get a token       curl -s -d grant_type=password -d username=app_super_user"
                    f" -d password=welcome -d client_id=elastic-query-web-client"
                    f" -d client_secret=elastic-query-web-client-secret"
                    f" http://127.0.0.1:{settings.ports.issuer}/realms/microservices-realm"
                    "/protocol/openid-connect/token",
                    f"  query API docs    http://127.0.0.1:{settings.ports.query_service}/docs",
                    f"  Kafka broker      127.0.0.1:{settings.ports.broker}",
                    f"  search index      {index_path}",
                    f"  generator admin   http://127.0.0.1:{settings.ports.twitter_to_kafka}"
                    "/health  /metrics",
                    f"  sink admin        http://127.0.0.1:{settings.ports.kafka_to_elastic}"
                    "/health  /metrics",
                    f"  word counts       http://127.0.0.1:{settings.ports.kafka_streams}"
                    "/get-word-count-by-word/kafka  /words/top  /docs",
                    f"  analytics         http://127.0.0.1:{settings.ports.analytics_service}"
                    "/analytics/top?window=latest  /docs",
                    f"  logs (JSON)       {data_dir / 'logs'}",
                    "  count tweets:     .venv/bin/tweetpipe search count",
                    "  search tweets:    .venv/bin/tweetpipe search query kafka",
                    "",
                ]
            ),
            flush=True,
        )

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
