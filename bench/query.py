"""Query-service figures on this machine; the last line printed is one JSON object.

    .venv/bin/python bench/query.py [--tweets 100000] [--seconds 10] [--connections 16]
                                    [--ingest-rate 2000] [--ingest-connections 8]

A real dev issuer, a real query service (tantivy backend, 100k indexed tweets, full JWT
validation) and wrk at a fixed concurrency:
- health_rps (and its p50/p99): the bare `/health` endpoint, same process, same run; its
  latency is the floor any endpoint of this one-process service has at this concurrency
- search_rps, search_p50_ms, search_p99_ms: `/documents/search?q=<word>` with a super user's
  token, rotating over a few words, aggregations included
- search_under_ingest_rps, search_under_ingest_p50_ms, search_under_ingest_p99_ms: the same
  searches at `--ingest-connections` while the pipeline writes into the same index: a broker,
  the generator service at `--ingest-rate` tweets/s and the sink (kafka-to-elastic), as under
  `./dev up --rate 2000`; ingest_indexed_per_s is the rate the index actually grew at meanwhile
  (0 skips this part)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import fresh_topics, run_generator, start_sink
from bench.load import LoadResult, run_wrk
from devstack.broker import TansuBroker
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


def under_ingest(
    work: Path, base: str, auth: dict[str, str], args: argparse.Namespace
) -> tuple[LoadResult, float]:
    """Searches while tweets flow into the index at `args.ingest_rate`; and the rate the index
    grew at while wrk ran."""
    search = SearchSettings(tantivy_path=work / "index")
    with TansuBroker(free_port(), log_path=work / "broker.log") as broker:
        kafka = fresh_topics(broker)
        sink = start_sink(kafka, search, work)
        count = int(args.ingest_rate * (args.seconds + 30))
        generator = run_generator(kafka, count, work / "generator.log", rate=args.ingest_rate)
        store = open_store(search)
        try:
            say(f"  waiting for tweets to flow at {args.ingest_rate:g}/s …")
            before = store.count()
            deadline = time.monotonic() + 60
            while store.count() < before + args.ingest_rate * 3:
                if time.monotonic() > deadline:
                    raise TimeoutError("the sink indexed nothing within 60s")
                time.sleep(0.2)
                store.refresh()
            store.refresh()
            first, started = store.count(), time.perf_counter()
            result = run_searches(base, auth, args.seconds, args.ingest_connections)
            store.refresh()
            indexed_per_s = (store.count() - first) / (time.perf_counter() - started)
        finally:
            store.close()
            generator.terminate()
            sink.terminate()
    return result, indexed_per_s


def run_searches(base: str, auth: dict[str, str], seconds: int, connections: int) -> LoadResult:
    """The measured search: a first page of 10 for each of `WORDS` in turn."""
    searches = [f"/documents/search?q={w}&size=10" for w in WORDS]
    return run_wrk(base, searches, auth, seconds, connections)


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
    parser.add_argument("--ingest-rate", type=float, default=2000)
    parser.add_argument("--ingest-connections", type=int, default=8)
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
            search = run_searches(base, auth, args.seconds, args.connections)
            ingest: tuple[LoadResult, float] | None = None
            if args.ingest_rate > 0:
                say(
                    f"/documents/search for {args.seconds}s at {args.ingest_connections} "
                    f"connections while ingesting {args.ingest_rate:g} tweets/s"
                )
                ingest = under_ingest(work, base, auth, args)
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
    if ingest is not None:
        loaded, indexed_per_s = ingest
        figures |= {
            "ingest_rate": args.ingest_rate,
            "ingest_connections": args.ingest_connections,
            "ingest_indexed_per_s": round(indexed_per_s),
            "search_under_ingest_rps": round(loaded.rps),
            "search_under_ingest_p50_ms": round(loaded.p50_ms, 2),
            "search_under_ingest_p99_ms": round(loaded.p99_ms, 2),
            "search_under_ingest_errors": loaded.errors,
        }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
