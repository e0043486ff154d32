"""analytics-service: word counts from `twitter-analytics-topic` into SQL, and an API over them.

One process, two threads:
- the main thread runs uvicorn, serving the REST API (`api.py`), `/health` and `/metrics`.
  uvicorn handles SIGTERM/SIGINT for a graceful HTTP shutdown, and signals only ever reach the
  main thread;
- a `consumer` thread runs the blocking batch loop (`consumer.py`): kafka-python and the
  database driver block, and inside the event loop they would stall every request.
Either one ending ends the process: on SIGTERM the server stops, then the consumer finishes
its batch and commits; if the consumer fails, the server is told to exit and the process
exits 1 for its supervisor to restart it. The API starts before the consumer has reached
Kafka, so counts already stored can be read while the broker is away.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from analytics_service import api, migrate
from analytics_service.consumer import AnalyticsConsumer
from analytics_service.repository import WordCountRepository
from analytics_service.settings import AnalyticsSettings
from analytics_service.tables import SCHEMA
from tweetpipe.admin import HealthCheck, admin_router
from tweetpipe.auth import TokenValidator
from tweetpipe.batch_consumer import BatchConsumer
from tweetpipe.dlq import DeadLetterPublisher
from tweetpipe.kafka import TopicSpec, broker_reachable, ensure_topics, make_consumer, make_producer
from tweetpipe.lifecycle import StopSignal
from tweetpipe.method_not_allowed import answer_405_with_every_method
from tweetpipe.runtime import ServiceRuntime
from tweetpipe.settings import KafkaSettings, TrendingOptions
from tweetpipe.sql import TRANSIENT_ERRORS, display_url, make_engine, ping, wait_for_database
from tweetpipe.telemetry import instrument_app

SERVICE = "analytics-service"
EUREKA_APP = "ANALYTICS-SERVICE"
log = logging.getLogger(__name__)


def create_app(
    repository: WordCountRepository,
    validator: TokenValidator,
    checks: Mapping[str, HealthCheck],
    trending: TrendingOptions | None = None,
) -> FastAPI:
    """The HTTP app: REST API (bearer token required), admin endpoints, and JSON errors when
    the database is away."""
    app = FastAPI(
        title=SERVICE,
        description="Word counts per window, from the stream stage. Every endpoint but "
        "`/health` and `/metrics` needs a bearer token from the realm's issuer.",
    )
    app.state.repository = repository
    app.state.trending = trending or TrendingOptions()
    app.state.token_validator = validator
    app.include_router(api.router)
    app.include_router(admin_router(SERVICE, checks))
    app.add_exception_handler(SQLAlchemyError, _database_error)
    answer_405_with_every_method(app)
    return instrument_app(app)


async def _database_error(_request: Request, error: Exception) -> JSONResponse:
    if isinstance(error, TRANSIENT_ERRORS):
        return JSONResponse({"detail": "database unavailable, retry shortly"}, status_code=503)
    log.error("database error while answering a request: %s", error)
    return JSONResponse({"detail": "database error"}, status_code=500)


def analytics_topics(kafka: KafkaSettings) -> list[TopicSpec]:
    return [
        TopicSpec(kafka.analytics_topic, kafka.partitions, kafka.replication_factor),
        TopicSpec(kafka.analytics_hopping_topic, kafka.partitions, kafka.replication_factor),
        TopicSpec(kafka.dlq_topic, 1, kafka.replication_factor),
    ]


def consume(settings: AnalyticsSettings, repository: WordCountRepository, stop: StopSignal) -> None:
    """Connect to Kafka (waiting for it) and store batches until `stop` is set."""
    kafka, options = settings.kafka, settings.analytics
    ensure_topics(kafka, analytics_topics(kafka))
    consumer = make_consumer(
        kafka,
        options.group_id,
        [kafka.analytics_topic, kafka.analytics_hopping_topic],
        client_id=SERVICE,
        max_poll_records=options.batch_size,
        isolation_level=options.isolation_level,
    )
    producer = make_producer(kafka, client_id=f"{SERVICE}-dlq", linger_ms=0)
    loop = AnalyticsConsumer(
        batches=BatchConsumer(consumer, options, stop),
        repository=repository,
        dead_letters=DeadLetterPublisher(producer, kafka.dlq_topic, stage=SERVICE),
        options=options,
        hopping_topic=kafka.analytics_hopping_topic,
    )
    log.info(
        "storing %s and %s as group %s",
        kafka.analytics_topic,
        kafka.analytics_hopping_topic,
        options.group_id,
    )
    try:
        loop.run()
    finally:
        consumer.close(autocommit=False, timeout_ms=5000)
        producer.close(timeout=5)
        log.info(
            "consumer stopped after %d records (%d row upserts), %d dead-lettered",
            loop.records,
            loop.rows,
            loop.dead_lettered,
        )


def run(settings: AnalyticsSettings) -> int:
    """Serve until SIGTERM/SIGINT (exit 0) or a consumer failure (exit 1)."""
    with ServiceRuntime(SERVICE, settings, eureka_app=EUREKA_APP) as runtime:
        engine = make_engine(settings.sql_url, SCHEMA)
        runtime.on_close("database engine", engine.dispose)
        wait_for_database(engine, settings.analytics.database_startup_timeout_s)
        migrate.upgrade(engine)
        log.info("database %s at schema revision %s", display_url(engine), migrate.head_revision())
        repository = WordCountRepository(engine)
        checks: dict[str, HealthCheck] = {
            "database": lambda: ping(engine),
            "kafka": lambda: broker_reachable(settings.kafka),
        }
        log.info("trusting tokens from %s", settings.auth.issuer_url)
        app = create_app(
            repository,
            TokenValidator(settings.auth.for_audience(SERVICE)),
            checks,
            settings.trending,
        )
        # The API starts before the consumer reaches Kafka: stored counts stay readable.
        runtime.worker("consumer", lambda: consume(settings, repository, runtime.stop))
        runtime.serve(app, status_path="/docs")
    return runtime.exit_code
