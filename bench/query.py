"""Query-service figures on this machine; the last line printed is one JSON object.

    .venv/bin/python bench/query.py [--tweets 100000] [--seconds 10] [--connections 16]

A real dev issuer, a real query service (tantivy backend, 100k indexed tweets, full JWT
validation) and wrk at a fixed concurrency:
- health_rps (and its p50/p99): the bare `/health` endpoint, same process, same run; its
  latency is the floor any endpoint of this one-process service has at this concurrency
- search_rps, search_p50_ms, search_p99_ms: `/documents/search?q=<word>` with a super user's
  token, rotating over a few words, aggregations included
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import run_wrk
from tests.support.issuer import DevIssuer
from tests.support.ports import free_port
from tests.support.services import ServiceProcess
from tweetpipe.search import open_store
from tweetpipe.settings import SearchSettings
from twitter_to_kafka.generator import TweetGenerator
from twitter_to_kafka.settings import GeneratorOptions

WORDS = ["kafka", "java", "microservices", "elasticsearch", "data", "cloud"]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def build_index(path: Path, count: int) -> None:
    store = open_store(SearchSettings(tantivy_path=path), writer=True)
    store.ensure_ready()
    batch = []
    for done, tweet in enumerate(TweetGenerator(GeneratorOptions(seed=3, count=count)), 1):
        batch.append(tweet)
        if len(batch) == 10_000:
            store.bulk_upsert(batch)
            batch.clear()
            say(f"indexed {done:,} tweets")
    store.bulk_upsert(batch)
    store.close()


def start_query_service(work: Path, issuer: DevIssuer, port: int) -> ServiceProcess:
    """The query service over the index in `work`, trusting `issuer`, quiet in its logs."""
    return ServiceProcess(
        "query_service",
        {
            "ADMIN__PORT": str(port),
            "DATA_DIR": str(work),
            "SEARCH__TANTIVY_PATH": str(work / "index"),
            "AUTH__ISSUER_URL": issuer.realm_url,
            "LOG_LEVEL": "WARNING",
        },
        work / "query.log",
    ).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tweets", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build_index(work / "index", args.tweets)
        issuer = DevIssuer(work).start()
        port = free_port()
        service = start_query_service(work, issuer, port)
        try:
            service.wait_healthy(port)
            token = issuer.password_token("app_super_user")
            base = f"http://127.0.0.1:{port}"
            auth = {"Authorization": f"Bearer {token}"}
            say("warming up")
            run_wrk(base, [f"/documents/search?q={w}" for w in WORDS], auth, 2, args.connections)
            say(f"/health for {args.seconds}s at {args.connections} connections")
            health = run_wrk(base, ["/health"], {}, args.seconds, args.connections)
            say(f"/documents/search for {args.seconds}s at {args.connections} connections")
            search = run_wrk(
                base,
                [f"/documents/search?q={w}&size=10" for w in WORDS],
                auth,
                args.seconds,
                args.connections,
            )
        finally:
            service.terminate()
            issuer.stop()
    figures = {
        "tweets": args.tweets,
        "connections": args.connections,
        "health_rps": round(health.rps),
        "health_p50_ms": round(health.p50_ms, 2),
        "health_p99_ms": round(health.p99_ms, 2),
        "search_rps": round(search.rps),
        "search_p50_ms": round(search.p50_ms, 2),
        "search_p99_ms": round(search.p99_ms, 2),
        "search_errors": search.errors,
        "search_to_health": round(search.rps / health.rps, 2),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
