"""Metrics, dashboards and traces: real services, Debian's Prometheus, an in-test Zipkin receiver.

One pipeline runs for the whole module (generator, indexer into the Elasticsearch-API server,
word count, analytics and the gateway in front of the last two), tracing to an in-test Zipkin
collector; Prometheus, started through the same launcher `tweetpipe up` uses, scrapes them every
second.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from devstack.broker import TansuBroker
from devstack.prometheus import PrometheusServer, ScrapeTarget, prometheus_available
from tests.support.elasticsearch import ElasticsearchServer
from tests.support.issuer import DevIssuer, bearer
from tests.support.kafka import produce
from tests.support.ports import free_port
from tests.support.services import ServiceProcess, metric_value
from tests.support.zipkin import Span, ZipkinReceiver
from tweetpipe.kafka import make_producer
from tweetpipe.settings import REPO_ROOT, KafkaSettings
from tweetpipe.waiting import wait_until
from web_client import dashboards

DASHBOARDS = REPO_ROOT / "infra" / "grafana" / "dashboards"

PROMETHEUS_GENERATED = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
"""Series Prometheus itself adds to every target; no service exports them."""

NOT_RUN_BY_THIS_TEST = {
    "tweetpipe_query_word_count_lookups_total": "query_service.enrichment",
}
"""Dashboard metrics of services this test does not run (the query service needs an issuer, a
permissions database and a store), by the module that registers them. Each is checked by
importing that module; a dashboard metric that is neither live nor listed here fails the test."""

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$")


@dataclass
class Pipeline:
    kafka: KafkaSettings
    ports: dict[str, int]
    processes: dict[str, ServiceProcess]
    prometheus: PrometheusServer
    zipkin: ZipkinReceiver
    log_dir: Path
    token: str
    """An `app_user` access token for the APIs behind the gateway."""

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.token)

    def promql(self, expr: str) -> dict[str, Any]:
        response = httpx.get(f"{self.prometheus.url}/api/v1/query", params={"query": expr})
        body: dict[str, Any] = response.json()
        return body

    def scalar(self, expr: str) -> float:
        result = self.promql(expr)
        assert result["status"] == "success", result
        return sum(float(item["value"][1]) for item in result["data"]["result"])


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, dev_issuer: DevIssuer) -> Iterator[Pipeline]:
    assert prometheus_available(), "prometheus is missing (Debian package; ./dev installs it)"
    tmp = tmp_path_factory.mktemp("observability")
    with (
        TansuBroker(free_port(), log_path=tmp / "broker.log") as broker,
        ZipkinReceiver(free_port()) as zipkin,
        ElasticsearchServer(tmp / "elasticsearch") as elasticsearch,
    ):
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, startup_timeout_s=30)
        ports = {
            name: free_port()
            for name in (
                "kafka-to-elastic",
                "kafka-streams-service",
                "analytics-service",
                "gateway-service",
                "twitter-to-kafka",
            )
        }
        base = {
            "PROFILE": "local",
            "DATA_DIR": str(tmp / "data"),
            "KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "ADMIN__HOST": "127.0.0.1",
            "TRACING__ZIPKIN_ENDPOINT": zipkin.endpoint,
            "AUTH__ISSUER_URL": dev_issuer.realm_url,
        }
        routes = [
            {
                "id": "kafka-streams-service",
                "service_id": "KAFKA-STREAMS-SERVICE",
                "urls": [f"http://127.0.0.1:{ports['kafka-streams-service']}"],
            },
            {
                "id": "analytics-service",
                "service_id": "ANALYTICS-SERVICE",
                "urls": [f"http://127.0.0.1:{ports['analytics-service']}"],
            },
        ]
        specific = {
            "kafka-to-elastic": (
                "kafka_to_elastic",
                {
                    "SEARCH__BACKEND": "elasticsearch",
                    "SEARCH__ELASTICSEARCH_HOSTS": elasticsearch.url,
                },
            ),
            "kafka-streams-service": (
                "kafka_streams",
                {"STREAMS__STATE_DIR": str(tmp / "streams"), "STREAMS__EMIT_INTERVAL_S": "0.5"},
            ),
            "analytics-service": ("analytics_service", {}),
            "gateway-service": ("gateway", {"ROUTES": json.dumps(routes)}),
            "twitter-to-kafka": ("twitter_to_kafka", {"GENERATOR__RATE": "40"}),
        }
        processes: dict[str, ServiceProcess] = {}
        try:
            for name, (module, env) in specific.items():
                processes[name] = ServiceProcess(
                    module,
                    {
                        **base,
                        **env,
                        "ADMIN__PORT": str(ports[name]),
                        "LOG_FILE": str(tmp / "logs" / f"{name}.json"),  # as Logstash reads them
                    },
                    tmp / f"{name}.log",
                ).start()
            for name, process in processes.items():
                process.wait_healthy(ports[name], timeout_s=90)
            targets = [
                ScrapeTarget(job=name, address=f"127.0.0.1:{port}") for name, port in ports.items()
            ]
            with PrometheusServer(
                free_port(), targets=targets, data_dir=tmp / "prometheus", scrape_interval_s=1
            ) as prometheus:
                token = dev_issuer.password_token("app_user")
                yield Pipeline(kafka, ports, processes, prometheus, zipkin, tmp / "logs", token)
        finally:
            for process in reversed(processes.values()):
                if process.process is not None:
                    # above the runtime's own bound (workers joined for 30 s, then closed)
                    process.terminate(timeout_s=90)


def metric_sum(port: int, sample: str, **labels: str) -> float:
    """Sum of a service's samples named `sample` whose labels include `labels`."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == sample and labels.items() <= s.labels.items()
    )


def exported_names(metrics_text: str) -> set[str]:
    """Every series name a `/metrics` page can produce, including labelled metrics without
    samples yet (their HELP/TYPE lines declare them)."""
    suffixes = {
        "counter": ["_total", "_created"],
        "histogram": ["_bucket", "_count", "_sum", "_created"],
        "summary": ["_count", "_sum", "_created", ""],
        "gauge": [""],
        "info": ["_info"],
    }
    names = set()
    for family in text_string_to_metric_families(metrics_text):
        names.update(family.name + suffix for suffix in suffixes.get(family.type, [""]))
        names.update(sample.name for sample in family.samples)
    return names


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (not functions, keywords, labels or strings)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    keywords = {"by", "without", "on", "ignoring", "bool", "and", "or", "unless", "offset"}
    tokens = re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", text)
    return {t for t in tokens if t not in keywords and t.lower() not in {"inf", "nan"}}


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL) of every panel target, its variables replaced as
    Grafana replaces them (all jobs and instances; this test's Prometheus scrapes every 1 s)."""
    queries = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = dashboards.load(path)
        for panel in dashboard.panels:
            for target in panel.targets:
                expr = dashboards.render(
                    target.expr,
                    rate_interval=dashboards.rate_interval(step_s=1, scrape_interval_s=1),
                    variables=dashboard.variables,
                )
                queries.append((path.name, panel.title, expr))
    return queries


def test_dashboards_follow_grafana_conventions() -> None:
    """`job` and `instance` variables on every dashboard, every selector filtered by them, and
    `$__rate_interval` for every rate (fixed windows only where a panel names its period)."""
    for path in sorted(DASHBOARDS.glob("*.json")):
        raw = json.loads(path.read_text())
        variables = {v["name"]: v for v in raw["templating"]["list"]}
        assert set(variables) == {"job", "instance"}, path.name
        assert variables["job"]["query"]["query"] == "label_values(up, job)"
        assert variables["instance"]["query"]["query"] == 'label_values(up{job=~"$job"}, instance)'
        assert all(
            v["includeAll"] and v["multi"] and v["allValue"] == ".*" for v in variables.values()
        )
        for panel in raw["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                for window in re.findall(r"\[([^\]]+)\]", expr):
                    fixed = {"1h": "last hour", "24h": "last 24 hours"}.get(window)
                    assert window == "$__rate_interval" or (fixed and fixed in panel["title"]), (
                        f"{path.name}: {panel['title']}: {expr}"
                    )
                for name in metric_names(expr):
                    bare = re.search(rf"(?<![\w:]){name}(?![\w:{{(])", expr)
                    assert bare is None, f"{path.name}: {name} without a selector in {expr}"
                for selector in re.findall(r"\b[a-z_:]+\{([^}]*)\}", expr):
                    assert 'instance=~"$instance"' in selector, f"{path.name}: {expr}"
                    assert "job" in selector, f"{path.name}: {expr}"
    assert dashboards.rate_interval(step_s=60, scrape_interval_s=10) == "70s"
    assert dashboards.rate_interval(step_s=5, scrape_interval_s=10) == "40s"


def test_dashboards_exist_for_each_concern() -> None:
    titles = {path.stem for path in DASHBOARDS.glob("*.json")}
    assert {
        "tweetpipe-pipeline",
        "tweetpipe-http",
        "tweetpipe-dead-letters",
        "tweetpipe-processes",
    } <= titles
    assert metric_names('sum by (job) (rate(http_requests_total{status=~"5.."}[5m]))') == {
        "http_requests_total"
    }
    assert metric_names("time() - max by (job) (process_start_time_seconds)") == {
        "process_start_time_seconds"
    }


def test_prometheus_scrapes_every_service(pipeline: Pipeline) -> None:
    def all_up() -> bool:
        targets = httpx.get(f"{pipeline.prometheus.url}/api/v1/targets").json()["data"]
        health = {t["labels"]["job"]: t["health"] for t in targets["activeTargets"]}
        return health == dict.fromkeys(pipeline.ports, "up")

    wait_until(all_up, 60, "every target up")
    up = pipeline.promql("up")["data"]["result"]
    assert {item["metric"]["job"]: item["value"][1] for item in up} == dict.fromkeys(
        pipeline.ports, "1"
    )


def test_pipeline_throughput_query_is_non_zero_after_tweets_flow(pipeline: Pipeline) -> None:
    sink_port = pipeline.ports["kafka-to-elastic"]
    wait_until(
        lambda: metric_value(sink_port, "tweetpipe_tweets_indexed_total"), 90, "tweets indexed"
    )
    for expr in (
        "sum(rate(tweetpipe_tweets_produced_total[1m]))",
        "sum(rate(tweetpipe_tweets_indexed_total[1m]))",
        "sum(rate(tweetpipe_streams_tweets_processed_total[1m]))",
        'sum(rate(tweetpipe_records_consumed_total{group="kafka-to-elastic"}[1m]))',
    ):
        wait_until(lambda expr=expr: pipeline.scalar(expr) > 0, 60, f"{expr} > 0")
    lag = pipeline.promql("tweetpipe_consumer_lag")["data"]["result"]
    groups = {item["metric"]["group"] for item in lag}
    assert {"kafka-to-elastic", "kafka-streams"} <= groups, groups


def test_http_metrics_count_requests_through_the_gateway(pipeline: Pipeline) -> None:
    gateway = f"http://127.0.0.1:{pipeline.ports['gateway-service']}"
    streams = pipeline.ports["kafka-streams-service"]
    word_count = f"http://127.0.0.1:{streams}/get-word-count-by-word/kafka"
    wait_until(
        lambda: httpx.get(word_count, headers=pipeline.auth).status_code == 200,
        90,
        "word counts answerable",
    )
    before = metric_sum(streams, "http_requests_total", method="GET", status="200")
    for _ in range(3):
        found = httpx.get(
            f"{gateway}/kafka-streams-service/get-word-count-by-word/kafka", headers=pipeline.auth
        )
        assert found.status_code == 200, found.text
    missing = httpx.get(f"{gateway}/no-such-route/anything")
    assert missing.status_code == 404
    # Route templates, not raw paths, so label sets stay bounded.
    route = "/get-word-count-by-word/{word}"
    assert metric_sum(streams, "http_requests_total", status="200", handler=route) >= before + 3
    gateway_port = pipeline.ports["gateway-service"]
    assert metric_sum(gateway_port, "tweetpipe_gateway_requests_total", status="200") >= 3
    assert metric_sum(gateway_port, "http_requests_total", status="200") >= 3
    assert metric_sum(gateway_port, "http_requests_total", status="404") >= 1
    assert metric_sum(gateway_port, "http_request_duration_seconds_count") >= 4
    wait_until(
        lambda: pipeline.scalar('sum(tweetpipe_gateway_requests_total{status="200"})') >= 3,
        30,
        "gateway requests in Prometheus",
    )


def test_a_request_through_the_gateway_is_one_trace(pipeline: Pipeline) -> None:
    """gateway (server span, then its httpx client span) → the service's server span."""
    gateway = f"http://127.0.0.1:{pipeline.ports['gateway-service']}"
    answer = httpx.get(f"{gateway}/kafka-streams-service/words/top?n=3", headers=pipeline.auth)
    assert answer.status_code == 200, answer.text

    def joined(spans: list[Span]) -> bool:
        return bool(_gateway_to_streams(spans))

    spans = pipeline.zipkin.wait_for(joined, timeout_s=30)
    for server in _gateway_to_streams(spans):
        by_id = {s["id"]: s for s in spans if s["traceId"] == server["traceId"]}
        client = by_id[server["parentId"]]
        assert (_service(client), client["kind"]) == ("gateway-service", "CLIENT")
        entry = by_id[client["parentId"]]
        while entry.get("parentId") in by_id:  # the ASGI send/receive spans nest in between
            entry = by_id[entry["parentId"]]
        assert (_service(entry), entry["kind"]) == ("gateway-service", "SERVER")


def _gateway_to_streams(spans: list[Span]) -> list[Span]:
    """Streams' server spans for /words/top whose parent is a span the gateway exported."""
    gateway_ids = {s["id"] for s in spans if _service(s) == "gateway-service"}
    return [
        s
        for s in spans
        if _service(s) == "kafka-streams-service"
        and s.get("kind") == "SERVER"
        and "/words/top" in s["name"]
        and s.get("parentId") in gateway_ids
    ]


def test_every_dashboard_metric_is_exported_by_a_live_service(pipeline: Pipeline) -> None:
    exported: set[str] = set()
    for port in pipeline.ports.values():
        exported |= exported_names(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
    used: dict[str, list[str]] = {}
    for dashboard, title, expr in dashboard_queries():
        for name in metric_names(expr):
            used.setdefault(name, []).append(f"{dashboard}: {title}")
    assert len(used) >= 30, sorted(used)
    for module in set(NOT_RUN_BY_THIS_TEST.values()):
        __import__(module)
    registered = exported_names(generate_latest(REGISTRY).decode())
    pending_missing = {
        name: module
        for name, module in NOT_RUN_BY_THIS_TEST.items()
        if name in used and name not in registered
    }
    assert not pending_missing, f"not registered by their modules: {pending_missing}"
    missing = {
        name: panels
        for name, panels in used.items()
        if name not in exported
        and name not in PROMETHEUS_GENERATED
        and name not in NOT_RUN_BY_THIS_TEST
    }
    assert not missing, f"dashboard metrics no running service exports: {missing}"


def test_every_dashboard_query_is_valid_promql(pipeline: Pipeline) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 40
    errors = {}
    for dashboard, title, expr in queries:
        result = pipeline.promql(expr)
        if result.get("status") != "success":
            errors[f"{dashboard}: {title}: {expr}"] = result.get("error")
    assert not errors, errors
    # A query Prometheus rejects is reported as such (the check above can fail).
    assert pipeline.promql("sum(rate(tweetpipe_tweets_indexed_total[1m])")["status"] == "error"


def _tags(span: Span) -> dict[str, str]:
    tags: dict[str, str] = span.get("tags", {})
    return tags


def _service(span: Span) -> str:
    return str(span["localEndpoint"].get("serviceName"))


def test_generator_and_sink_spans_for_a_tweet_share_a_trace(pipeline: Pipeline) -> None:
    def both_sides(spans: list[Span]) -> bool:
        produced = {_tags(s).get("tweet.id") for s in spans if _service(s) == "twitter-to-kafka"}
        indexed = {_tags(s).get("tweet.id") for s in spans if _service(s) == "kafka-to-elastic"}
        return len((produced & indexed) - {None}) >= 20

    spans = pipeline.zipkin.wait_for(both_sides, timeout_s=90)
    assert not pipeline.zipkin.rejected
    by_id = {span["id"]: span for span in spans}
    publish = {
        _tags(s)["tweet.id"]: s
        for s in spans
        if _service(s) == "twitter-to-kafka" and s["name"] == "publish tweet"
    }
    index = {
        _tags(s)["tweet.id"]: s
        for s in spans
        if _service(s) == "kafka-to-elastic" and s["name"] == "index tweet"
    }
    common = set(publish) & set(index)
    assert len(common) >= 20
    for tweet_id in common:
        produced, indexed = publish[tweet_id], index[tweet_id]
        assert indexed["traceId"] == produced["traceId"], tweet_id
        assert indexed["kind"] == "CONSUMER"
        assert _tags(indexed)["messaging.destination.name"] == pipeline.kafka.tweets_topic
        # The sink's span hangs off the generator's Kafka send span, inside its publish span.
        parent = by_id.get(indexed.get("parentId", ""))
        if parent is not None:
            assert _service(parent) == "twitter-to-kafka"
            assert parent["traceId"] == produced["traceId"]
    parents = [by_id.get(index[t].get("parentId", "")) for t in common]
    assert sum(p is not None for p in parents) >= len(common) // 2, "sink spans lack parents"
    # Different tweets are different traces.
    assert len({publish[t]["traceId"] for t in common}) == len(common)
    # The store write is in a tweet's trace too: each batch continues its first tweet's trace,
    # and the Elasticsearch client's own spans (its native OpenTelemetry support) sit inside.
    produced_traces = {s["traceId"] for s in publish.values()}
    bulk = [
        s
        for s in spans
        if _service(s) == "kafka-to-elastic" and _tags(s).get("db.system") == "elasticsearch"
    ]
    assert any(s["traceId"] in produced_traces and s["name"] == "bulk" for s in bulk), bulk[:3]


def test_log_lines_inside_a_traced_batch_carry_its_trace(pipeline: Pipeline) -> None:
    trace_id, span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    header = f"00-{trace_id}-{span_id}-01".encode()
    assert TRACEPARENT.match(header.decode())
    producer_settings = pipeline.kafka
    produce(producer_settings, producer_settings.tweets_topic, [(b"1", b"{not json")])
    # Also one with a caller's trace context: its consumer span joins that trace.
    producer = make_producer(producer_settings, client_id="test-traced")
    producer.send(
        producer_settings.tweets_topic, key=b"2", value=b"[]", headers=[("traceparent", header)]
    )
    producer.flush()
    producer.close()
    sink = pipeline.processes["kafka-to-elastic"]
    sink.wait_for_log(r"dead-lettered .*SchemaViolation", timeout_s=60)
    sink.wait_for_log(r"dead-lettered .*MalformedJson", timeout_s=60)
    log_file = (pipeline.log_dir / "kafka-to-elastic.json").read_text().splitlines()
    lines = [_json(line) for line in log_file]
    assert all(lines), "every line of the log file is one JSON object"
    dead = [line for line in lines if line and str(line.get("message", "")).startswith("dead-let")]
    assert len(dead) >= 2
    assert all(line["message"] in sink.output for line in dead)  # the same lines on stdout
    for line in dead:
        assert re.fullmatch(r"[0-9a-f]{32}", _field(line, "trace.id") or ""), line
        assert re.fullmatch(r"[0-9a-f]{16}", _field(line, "span.id") or ""), line
        assert _field(line, "service.name") == "kafka-to-elastic"
    spans = pipeline.zipkin.wait_for(
        lambda spans: any(s["traceId"] == trace_id for s in spans), timeout_s=30
    )
    joined = [s for s in spans if s["traceId"] == trace_id and s["name"] == "index tweet"]
    assert joined, "no span in the caller's trace"
    assert joined[0]["parentId"] == span_id
    assert _tags(joined[0])["dlq.error"] == "SchemaViolation"


def _json(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _field(line: dict[str, Any], dotted: str) -> Any:
    """ECS JSON may nest dotted keys (`{"trace": {"id": …}}`) or keep them flat."""
    if dotted in line:
        return line[dotted]
    node: Any = line
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def test_prometheus_launcher_refuses_public_addresses(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="loopback"):
        PrometheusServer(9090, targets=[], data_dir=tmp_path, host="0.0.0.0")
    with pytest.raises(ValueError, match="duplicate"):
        PrometheusServer(
            9090,
            targets=[
                ScrapeTarget(job="a", address="127.0.0.1:1"),
                ScrapeTarget(job="a", address="x:2"),
            ],
            data_dir=tmp_path,
        )


def test_traced_sends_carry_one_traceparent_each(pipeline: Pipeline) -> None:
    """The Kafka instrumentation appends its `traceparent` to the headers list a send is given:
    a list shared by the records of one changelog transaction grew by one header per record
    (quadratic: the cluster's word count stalled for minutes on one batch)."""
    consumer = KafkaConsumer(
        bootstrap_servers=pipeline.kafka.servers, enable_auto_commit=False, consumer_timeout_ms=5000
    )
    topic = "kafka-streams-word-counts-changelog"
    wait_until(lambda: consumer.partitions_for_topic(topic), 60, f"topic {topic}")
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    wait_until(lambda: sum(consumer.end_offsets(partitions).values()) >= 200, 90, "changelog rows")
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    records = [record for _, record in zip(range(2000), consumer, strict=False)]
    consumer.close()
    assert len(records) >= 200
    for record in records:
        names = [name for name, _ in record.headers]
        assert names.count("writer") == 1, (record.key, names[:10])
        assert names.count("traceparent") <= 1, (record.key, len(names))
