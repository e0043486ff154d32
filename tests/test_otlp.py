"""OpenTelemetry's standard `OTEL_*` variables: which exporters a service picks, and an OTLP/HTTP
export from real services (generator → broker → indexer) to a receiver this test runs, beside
Zipkin, which stays."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.broker import TansuBroker
from tests.support.otlp import OtlpReceiver, OtlpSpan
from tests.support.ports import free_port
from tests.support.services import ServiceProcess
from tests.support.zipkin import ZipkinReceiver
from tweetpipe.settings import TracingSettings
from tweetpipe.trace_exporters import chosen

ZIPKIN = TracingSettings(zipkin_endpoint="http://zipkin:9411/api/v2/spans")
OFF = TracingSettings()


@pytest.mark.parametrize(
    ("settings", "environ", "exporters"),
    [
        (OFF, {}, []),
        (ZIPKIN, {}, ["zipkin"]),
        (OFF, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
        (ZIPKIN, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"},
         ["otlp", "zipkin"]),
        (ZIPKIN, {"OTEL_TRACES_EXPORTER": "otlp"}, ["otlp"]),
        (OFF, {"OTEL_TRACES_EXPORTER": "zipkin, OTLP"}, ["otlp", "zipkin"]),
        (ZIPKIN, {"OTEL_TRACES_EXPORTER": "none"}, []),
        (OFF, {"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        (ZIPKIN, {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, []),
        (OFF, {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
         ["otlp"]),
    ],
)  # fmt: skip
def test_exporters_follow_the_standard_variables(
    settings: TracingSettings, environ: dict[str, str], exporters: list[str]
) -> None:
    assert chosen(settings, environ) == exporters


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "unknown exporter jaeger"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
             "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/json",
        ),
    ],
)  # fmt: skip
def test_what_a_service_cannot_do_is_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        chosen(OFF, environ)


def test_generator_and_indexer_export_one_trace_per_tweet_over_otlp_and_zipkin(
    tmp_path: Path,
) -> None:
    with (
        TansuBroker(free_port(), log_path=tmp_path / "broker.log") as broker,
        OtlpReceiver(free_port()) as otlp,
        ZipkinReceiver(free_port()) as zipkin,
    ):
        common = {
            "DATA_DIR": str(tmp_path / "data"),
            "KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "OTEL_TRACES_EXPORTER": "otlp,zipkin",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=otlp-test",
            "TRACING__ZIPKIN_ENDPOINT": zipkin.endpoint,
        }
        ports = {"kafka_to_elastic": free_port(), "twitter_to_kafka": free_port()}
        extra = {
            "kafka_to_elastic": {"SEARCH__TANTIVY_PATH": str(tmp_path / "index")},
            "twitter_to_kafka": {"GENERATOR__RATE": "40"},
        }
        processes = [
            ServiceProcess(
                module,
                {**common, **extra[module], "ADMIN__PORT": str(port)},
                tmp_path / f"{module}.log",
            ).start()
            for module, port in ports.items()
        ]
        try:
            for process, port in zip(processes, ports.values(), strict=True):
                process.wait_healthy(port, timeout_s=90)
            assert "tracing to OTLP " + otlp.endpoint + "/v1/traces and Zipkin " in (
                processes[0].output
            )

            def tweet_ids(spans: list[OtlpSpan], service: str, name: str) -> dict[str, OtlpSpan]:
                return {
                    str(s.attributes["tweet.id"]): s
                    for s in spans
                    if s.service == service and s.name == name and "tweet.id" in s.attributes
                }

            def both_sides(spans: list[OtlpSpan]) -> bool:
                published = tweet_ids(spans, "twitter-to-kafka", "publish tweet")
                indexed = tweet_ids(spans, "kafka-to-elastic", "index tweet")
                return len(set(published) & set(indexed)) >= 10

            spans = otlp.wait_for(both_sides, timeout_s=90)
        finally:
            for process in reversed(processes):
                process.terminate()
        assert not otlp.rejected
        assert otlp.content_types == {"application/x-protobuf"}
        published = tweet_ids(spans, "twitter-to-kafka", "publish tweet")
        indexed = tweet_ids(spans, "kafka-to-elastic", "index tweet")
        by_id = {span.span_id: span for span in spans}
        for tweet_id in set(published) & set(indexed):
            assert indexed[tweet_id].trace_id == published[tweet_id].trace_id
            parent = by_id.get(indexed[tweet_id].parent_id)
            if parent is not None:  # the generator's Kafka send span, in the same trace
                assert parent.service == "twitter-to-kafka"
        assert {s.resource.get("deployment.environment") for s in spans} == {"otlp-test"}
        # Zipkin still gets every span too: the same ids reach both.
        zipkin_ids = {span["id"] for span in zipkin.wait_for(lambda found: len(found) > 0)}
        sent_by_both = {span.span_id for span in spans} & zipkin_ids
        assert len(sent_by_both) >= 20
