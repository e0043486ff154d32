"""analytics-service against real servers: Tansu, a throwaway PostgreSQL, and SQLite files.

Every behaviour is checked on both SQL backends (the `database_url` fixture is parametrised),
except the database outage, which stops and restarts the PostgreSQL server.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, inspect, select, text

from analytics_service import migrate
from analytics_service.app import analytics_topics
from analytics_service.repository import HOPPING_TABLE, TABLE, WordCountRepository
from analytics_service.settings import AnalyticsSettings
from analytics_service.tables import SCHEMA, HoppingCountRow, WordCountRow
from tests.support.issuer import DevIssuer, bearer
from tests.support.kafka import (
    OVERSIZED_BYTES,
    assert_truncated_copy,
    committed_offsets,
    produce,
    produce_oversized,
    read_topic,
)
from tests.support.openapi_contract import assert_contract_holds
from tests.support.ports import free_port
from tests.support.postgres import PostgresServer
from tests.support.services import ServiceProcess, metric_value
from tweetpipe.kafka import ensure_topics
from tweetpipe.model import WordCount
from tweetpipe.settings import REPO_ROOT, KafkaSettings
from tweetpipe.sql import make_engine
from tweetpipe.waiting import wait_until

GROUP = "analytics-service"
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=1)
WORDS = ["kafka", "java", "microservices", "elasticsearch", "streams", "python", "docker"]

Key = tuple[str, datetime]


# --- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway cluster for the session; each test gets a database of its own."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'analytics.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database(f"test_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, SCHEMA)
    yield engine
    engine.dispose()


@pytest.fixture
def analytics_kafka(kafka_settings: KafkaSettings) -> KafkaSettings:
    ensure_topics(kafka_settings, analytics_topics(kafka_settings))
    return kafka_settings


def count_updates(seed: int, windows: int = 4) -> list[WordCount]:
    """Growing counts for every word in every window, 1-3 updates each, shuffled.

    Shuffled, so lower counts often arrive after higher ones (as re-deliveries would).
    """
    rng = random.Random(seed)
    updates = []
    for index in range(windows):
        start = T0 + index * WINDOW
        for word in WORDS:
            total = 0
            for _ in range(rng.randint(1, 3)):
                total += rng.randint(1, 40)
                updates.append(
                    WordCount(
                        word=word, word_count=total, window_start=start, window_end=start + WINDOW
                    )
                )
    rng.shuffle(updates)
    return updates


def largest(updates: list[WordCount]) -> dict[Key, int]:
    expected: dict[Key, int] = {}
    for update in updates:
        key = (update.word, update.window_start)
        expected[key] = max(expected.get(key, 0), update.word_count)
    return expected


def produce_counts(kafka: KafkaSettings, updates: list[WordCount]) -> None:
    produce(kafka, kafka.analytics_topic, ((u.key, u.to_json()) for u in updates))


def table_rows(engine: Engine) -> list[tuple[Any, ...]]:
    """The full table contents, every column, in a stable order."""
    with engine.connect() as connection:
        query = select(TABLE).order_by(TABLE.c.word, TABLE.c.window_start)
        return [tuple(row) for row in connection.execute(query)]


def stored_counts(engine: Engine) -> dict[Key, int]:
    with engine.connect() as connection:
        rows = connection.execute(select(TABLE.c.word, TABLE.c.window_start, TABLE.c.word_count))
        return {(word, start): count for word, start, count in rows}


def committed(kafka: KafkaSettings) -> int:
    return sum(committed_offsets(kafka, GROUP, kafka.analytics_topic).values())


class Analytics:
    """An analytics-service process, its HTTP port and its settings."""

    def __init__(
        self, kafka: KafkaSettings, database_url: str, workdir: Path, issuer: DevIssuer
    ) -> None:
        self.kafka = kafka
        self.port = free_port()
        self.workdir = workdir
        self.token = issuer.password_token("app_user")
        self.env = {
            "AUTH__ISSUER_URL": issuer.realm_url,
            "KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "KAFKA__STARTUP_TIMEOUT_S": "60",
            "DATABASE_URL": database_url,
            "DATA_DIR": str(workdir / "data"),
            "ADMIN__PORT": str(self.port),
            "ANALYTICS__BATCH_WAIT_MS": "50",
            "ANALYTICS__RETRY_MAX_S": "1",
            "ANALYTICS__PROGRESS_INTERVAL_S": "1",
        }
        self.process: ServiceProcess | None = None

    def start(self) -> ServiceProcess:
        self.process = ServiceProcess(
            "analytics_service", self.env, self.workdir / "analytics.log"
        ).start()
        self.process.wait_healthy(self.port)
        return self.process

    def get(self, path: str, token: str | None = "", **params: Any) -> httpx.Response:
        """GET as `app_user` (an application role, no special permission); `token=None`
        sends no token."""
        headers = bearer(self.token if token == "" else token)
        return httpx.get(
            f"http://127.0.0.1:{self.port}{path}", params=params, headers=headers, timeout=10
        )

    def metric(self, name: str) -> float:
        return metric_value(self.port, name)

    def wait_committed(self, expected: int, timeout_s: float = 60) -> None:
        wait_until(lambda: committed(self.kafka) >= expected, timeout_s, f"{expected} committed")
        assert committed(self.kafka) == expected

    def close(self) -> None:
        if self.process:
            self.process.kill()


@pytest.fixture
def service(
    analytics_kafka: KafkaSettings, database_url: str, tmp_path: Path, dev_issuer: DevIssuer
) -> Iterator[Analytics]:
    running = Analytics(analytics_kafka, database_url, tmp_path, dev_issuer)
    yield running
    running.close()


# --- schema and repository ---------------------------------------------------------------


def test_migrations_create_the_table(engine: Engine) -> None:
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    migrate.upgrade(engine)  # a second start changes nothing
    assert migrate.current_revision(engine) == migrate.head_revision() == "0002"

    postgres = engine.dialect.name == "postgresql"
    schema = SCHEMA if postgres else None
    inspector = inspect(engine)
    if postgres:
        assert SCHEMA in inspector.get_schema_names()
    assert "word_counts" in inspector.get_table_names(schema=schema)
    expected_columns = {"word", "window_start", "window_end", "word_count", "final", "updated_at"}
    for table, key in (
        ("word_counts", ["word", "window_start"]),
        ("hopping_counts", ["word", "window_start", "window_end"]),
    ):
        columns = {c["name"]: c for c in inspector.get_columns(table, schema=schema)}
        assert set(columns) == expected_columns
        assert not any(c["nullable"] for c in columns.values())
        primary_key = inspector.get_pk_constraint(table, schema=schema)
        assert primary_key["constrained_columns"] == key
        indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes(table, schema)}
        assert indexes[f"ix_{table}_window_start_count"] == ["window_start", "word_count"]

    # The SQLModel table and the migrations describe the same schema. Only this service's
    # table: SQLModel's shared registry also holds other services' tables once imported.
    metadata = MetaData()
    WordCountRow.__table__.to_metadata(metadata, schema=schema)  # type: ignore[attr-defined]
    HoppingCountRow.__table__.to_metadata(metadata, schema=schema)  # type: ignore[attr-defined]
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_schemas": postgres, "compare_type": True}
        )
        differences = [
            d
            for d in compare_metadata(context, metadata)
            if not (d[0] == "remove_table" and d[1].name == "alembic_version")
        ]
    assert differences == []


def test_upsert_keeps_the_largest_count(engine: Engine) -> None:
    migrate.upgrade(engine)
    repository = WordCountRepository(engine)

    def update(word: str, count: int, window: int = 0) -> WordCount:
        start = T0 + window * WINDOW
        return WordCount(word=word, word_count=count, window_start=start, window_end=start + WINDOW)

    first = repository.upsert([update("kafka", 3), update("kafka", 5), update("java", 1)])
    assert (first.rows, first.changed) == (2, 2)  # de-duplicated within the batch
    second = repository.upsert([update("kafka", 4), update("java", 2), update("kafka", 1, 1)])
    assert (second.rows, second.changed) == (3, 2)  # kafka@0 did not grow
    assert stored_counts(engine) == {
        ("kafka", T0): 5,
        ("java", T0): 2,
        ("kafka", T0 + WINDOW): 1,
    }

    before = table_rows(engine)
    replay = repository.upsert([update("kafka", 5), update("java", 2), update("kafka", 1, 1)])
    assert replay.changed == 0
    assert table_rows(engine) == before  # updated_at included: a replay writes nothing

    row = repository.latest("kafka")
    assert row is not None
    assert (row.word_count, row.window_start, row.window_end) == (1, T0 + WINDOW, T0 + 2 * WINDOW)
    assert row.window_start.tzinfo is not None


# --- the service, end to end --------------------------------------------------------------


def test_replaying_the_topic_leaves_the_table_unchanged(service: Analytics, engine: Engine) -> None:
    updates = count_updates(seed=3)
    produce_counts(service.kafka, updates)
    process = service.start()
    service.wait_committed(len(updates))
    assert stored_counts(engine) == largest(updates)
    before = table_rows(engine)
    changed = service.metric("tweetpipe_analytics_rows_changed_total")

    produce_counts(service.kafka, updates)  # the same records again, as a replay would be
    service.wait_committed(2 * len(updates))
    assert table_rows(engine) == before
    assert service.metric("tweetpipe_analytics_rows_changed_total") == changed
    assert service.metric("tweetpipe_analytics_records_total") == 2 * len(updates)

    assert process.terminate() == 0  # SIGTERM: finish the batch, commit, exit cleanly
    assert "consumer stopped after" in process.output
    assert committed(service.kafka) == 2 * len(updates)


def test_the_api_returns_what_was_written(service: Analytics, engine: Engine) -> None:
    updates = count_updates(seed=7)
    legacy = WordCount(word="legacy", word_count=9, window_start=T0, window_end=T0 + WINDOW)
    produce_counts(service.kafka, [*updates, legacy])
    service.start()
    service.wait_committed(len(updates) + 1)
    expected = largest([*updates, legacy])
    last = T0 + 3 * WINDOW

    def iso(moment: datetime) -> str:
        return moment.isoformat().replace("+00:00", "Z")

    # Classic path: the latest window's count; words are matched lower-case.
    for word in ("kafka", "KAFKA"):
        response = service.get(f"/get-word-count-by-word/{word}")
        assert response.status_code == 200
        assert response.json() == {
            "word": "kafka",
            "word_count": expected[("kafka", last)],
            "window_start": iso(last),
            "window_end": iso(last + WINDOW),
            "final": False,
        }
    assert service.get("/get-word-count-by-word/legacy").json()["window_start"] == iso(T0)
    missing = service.get("/get-word-count-by-word/cobol")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "no counts for word 'cobol'"}

    # Time series, oldest first, bounds inclusive.
    series = service.get(
        "/analytics/words/Java/series", **{"from": iso(T0 + WINDOW), "to": iso(last)}
    )
    assert series.status_code == 200
    body = series.json()
    assert (body["word"], body["from"], body["to"]) == ("java", iso(T0 + WINDOW), iso(last))
    assert body["points"] == [
        {
            "window_start": iso(T0 + i * WINDOW),
            "window_end": iso(T0 + (i + 1) * WINDOW),
            "word_count": expected[("java", T0 + i * WINDOW)],
            "final": False,
        }
        for i in (1, 2, 3)
    ]
    unbounded = service.get("/analytics/words/java/series").json()["points"]
    assert [p["word_count"] for p in unbounded] == [
        expected[("java", T0 + i * WINDOW)] for i in range(4)
    ]
    naive_bound = service.get("/analytics/words/java/series", to="2026-11-22T10:00:00")
    assert len(naive_bound.json()["points"]) == 1  # no offset: taken as UTC
    assert service.get("/analytics/words/cobol/series").json()["points"] == []

    # Top words of a window, largest first, ties alphabetically.
    def top(window: datetime, n: int) -> list[dict[str, Any]]:
        ranked = sorted(
            ((w, c) for (w, s), c in expected.items() if s == window), key=lambda x: (-x[1], x[0])
        )
        return [{"word": w, "word_count": c} for w, c in ranked[:n]]

    latest = service.get("/analytics/top", window="latest", n=3).json()
    assert latest == {
        "window_start": iso(last),
        "window_end": iso(last + WINDOW),
        "final": False,
        "words": top(last, 3),
    }
    assert service.get("/analytics/top").json()["words"] == top(last, 10)  # defaults
    first = service.get("/analytics/top", window=iso(T0), n=100).json()
    assert first["words"] == top(T0, 100)
    assert len(first["words"]) == len(WORDS) + 1  # "legacy" too
    empty = service.get("/analytics/top", window="2020-01-01T00:00:00Z").json()
    assert empty["words"] == []

    # Invalid parameters: 422 with a message saying what is wrong, never a stack trace.
    def rejected(path: str, parameter: str, **params: Any) -> str:
        response = service.get(path, **params)
        assert response.status_code == 422, response.text
        errors = response.json()["detail"]
        assert errors[0]["loc"][-1] == parameter
        message: str = errors[0]["msg"]
        return message

    series_path = "/analytics/words/java/series"
    inverted = {"from": iso(last), "to": iso(T0)}
    assert "'from' must not be after 'to'" in rejected(series_path, "from", **inverted)
    assert "datetime" in rejected(series_path, "from", **{"from": "yesterday"})
    assert "datetime" in rejected(series_path, "to", to="2026-13-45T99:00:00Z")
    assert "ISO-8601" in rejected(series_path, "to", to="0.5")  # not seconds since 1970
    assert "'latest' or an ISO-8601" in rejected("/analytics/top", "window", window="1e9")
    assert "less than or equal to 10000" in rejected(series_path, "limit", limit=10_001)
    assert "greater than or equal to 1" in rejected("/analytics/top", "n", n=0)
    assert "less than or equal to 100" in rejected("/analytics/top", "n", n=101)
    assert "valid integer" in rejected("/analytics/top", "n", n="ten")
    assert "'latest' or an ISO-8601" in rejected("/analytics/top", "window", window="soon")
    assert "at most 100" in rejected(f"/get-word-count-by-word/{'x' * 101}", "word")

    health = service.get("/health", token=None)  # health needs no token
    assert health.status_code == 200
    assert health.json()["components"] == {
        "database": {"status": "UP", "error": None},
        "kafka": {"status": "UP", "error": None},
    }


def test_the_api_needs_a_token_with_an_application_role(
    service: Analytics, dev_issuer: DevIssuer
) -> None:
    produce_counts(service.kafka, count_updates(seed=3))
    service.start()
    path = "/analytics/top"
    assert service.get(path).status_code == 200

    anonymous = service.get(path, token=None)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert anonymous.json() == {"detail": "a valid bearer token is required"}
    for refused in (
        dev_issuer.forge(aud="elastic-query-service"),  # meant for another service
        dev_issuer.forge(exp=int(time.time()) - 3600),
        dev_issuer.forge(iss="http://127.0.0.1:1/realms/other"),
        "not-a-jwt",
    ):
        response = service.get(path, token=refused)
        assert response.status_code == 401, refused
        assert "invalid_token" in response.headers["WWW-Authenticate"]

    # A valid token without any of the application's roles: authenticated, not allowed.
    guest = service.get(path, token=dev_issuer.password_token("app_guest"))
    assert guest.status_code == 403
    assert guest.json() == {"detail": "you do not have a role this operation requires"}
    assert service.get(path, token=dev_issuer.service_token()).status_code == 200
    assert service.metric("tweetpipe_auth_rejected_total") >= 4


def _reject_word_in_database(engine: Engine, word: str) -> None:
    """A rule in the database itself, so it refuses one row as a real database would."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(
                text(
                    f"ALTER TABLE {SCHEMA}.word_counts ADD CONSTRAINT reject_word "
                    f"CHECK (word <> '{word}')"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE TRIGGER reject_word BEFORE INSERT ON word_counts "
                    f"WHEN NEW.word = '{word}' BEGIN SELECT RAISE(ABORT, 'word refused'); END"
                )
            )


def test_bad_records_are_dead_lettered_and_the_rest_stored(
    service: Analytics, engine: Engine
) -> None:
    migrate.upgrade(engine)
    _reject_word_in_database(engine, "refused")
    good = count_updates(seed=11, windows=2)
    valid = good[0].model_dump(mode="json")

    def changed(**fields: Any) -> bytes:
        return orjson.dumps({**valid, **fields})

    no_word = orjson.dumps({k: v for k, v in valid.items() if k != "word"})
    poison: list[tuple[bytes, bytes | None, str, str]] = [
        (b"p1", b"{not json", "MalformedJson", ""),
        (b"p2", changed(word_count=-1), "SchemaViolation", "word_count"),
        (b"p3", no_word, "SchemaViolation", "word: Field required"),
        (b"p4", changed(window_start="2026-11-22T10:00:00"), "SchemaViolation", "window_start"),
        (b"p5", changed(word="w" * 101), "SchemaViolation", "word"),
        (b"p6", changed(word="nul\u0000word"), "SchemaViolation", "NUL"),
        (b"p7", changed(word_count=2**63), "SchemaViolation", "word_count"),
        (b"p8", changed(window_end=valid["window_start"]), "SchemaViolation", "window_end"),
        (b"p9", None, "EmptyValue", ""),
        (b"p10", changed(word="refused"), "StoreRejected", ""),
    ]
    half = len(good) // 2
    produce_counts(service.kafka, good[:half])
    produce(service.kafka, service.kafka.analytics_topic, ((k, v) for k, v, _, _ in poison))
    # a newer producer's fields are ignored (tolerant reader): these are stored like the rest
    newer = {"producer_version": 2, "source": {"instance": "a"}}
    produce(
        service.kafka,
        service.kafka.analytics_topic,
        ((u.key, orjson.dumps({**u.model_dump(mode="json"), **newer})) for u in good[half:]),
    )
    service.start()
    total = len(good) + len(poison)
    service.wait_committed(total)

    assert stored_counts(engine) == largest(good)
    dead = read_topic(service.kafka, service.kafka.dlq_topic, len(poison))
    assert len(dead) == len(poison)
    by_key = {record.key: record for record in dead}
    for key, value, error, reason_mentions in poison:
        record = by_key[key]
        headers = {k: v.decode() for k, v in record.headers}
        assert record.value == value  # the original bytes
        assert headers["dlq.stage"] == "analytics-service"
        assert headers["dlq.error"] == error, headers
        assert reason_mentions in headers["dlq.reason"]
        assert headers["dlq.reason"]
        assert headers["dlq.source.topic"] == service.kafka.analytics_topic
    assert service.metric("tweetpipe_analytics_dead_letters_total") == len(poison)
    assert service.metric("tweetpipe_analytics_records_total") == total


def test_offsets_are_committed_only_after_the_database_has_the_rows(
    analytics_kafka: KafkaSettings, tmp_path: Path, dev_issuer: DevIssuer
) -> None:
    updates = count_updates(seed=5, windows=4)
    first, second = updates[: len(updates) // 2], updates[len(updates) // 2 :]
    with PostgresServer() as postgres:
        url = postgres.create_database("outage")
        engine = make_engine(url, SCHEMA)
        service = Analytics(analytics_kafka, url, tmp_path, dev_issuer)
        try:
            produce_counts(analytics_kafka, first)
            process = service.start()
            service.wait_committed(len(first))
            assert stored_counts(engine) == largest(first)

            engine.dispose()
            postgres.stop()
            produce_counts(analytics_kafka, second)
            process.wait_for_log("database unavailable .* retrying", 60)
            wait_until(
                lambda: service.metric("tweetpipe_analytics_retries_total") >= 3,
                60,
                "several retries",
            )
            health = service.get("/health")
            assert health.status_code == 503
            assert health.json()["components"]["database"]["status"] == "DOWN"
            during = service.get("/get-word-count-by-word/kafka")
            assert during.status_code == 503
            assert during.json() == {"detail": "database unavailable, retry shortly"}
            # Nothing past the stored rows is committed while the database is down.
            assert committed(analytics_kafka) == len(first)

            postgres.start()
            service.wait_committed(len(updates))
            assert stored_counts(engine) == largest(updates)
            assert process.process is not None
            assert process.process.poll() is None  # it kept running throughout
            assert service.get("/health").status_code == 200
        finally:
            service.close()
            engine.dispose()


def test_the_service_waits_for_a_late_database(
    analytics_kafka: KafkaSettings, tmp_path: Path, dev_issuer: DevIssuer
) -> None:
    postgres = PostgresServer()  # port chosen, nothing listening yet
    service = Analytics(analytics_kafka, postgres.url(), tmp_path, dev_issuer)
    try:
        process = ServiceProcess("analytics_service", service.env, tmp_path / "late.log").start()
        service.process = process
        process.wait_for_log(rf"waiting for database at \S+:{postgres.port}/postgres", 30)
        postgres.start()
        process.wait_healthy(service.port)
        updates = count_updates(seed=2, windows=1)
        produce_counts(analytics_kafka, updates)
        service.wait_committed(len(updates))
        engine = make_engine(postgres.url(), SCHEMA)
        try:
            assert stored_counts(engine) == largest(updates)
        finally:
            engine.dispose()
    finally:
        service.close()
        postgres.close()


# --- settings -----------------------------------------------------------------------------


def test_database_url_by_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("PROFILE", raising=False)
    local = AnalyticsSettings()
    assert local.sql_url == "sqlite:///.tweetpipe/analytics.db"
    assert local.admin.port == 8084
    assert local.analytics.group_id == GROUP
    moved = AnalyticsSettings(data_dir=Path("/var/lib/tweetpipe"))
    assert moved.sql_url == "sqlite:////var/lib/tweetpipe/analytics.db"

    # The docker profile's files hold no password: services.yml passes DATABASE_URL, built from
    # POSTGRES_PASSWORD in .env, the one place it is written.
    docker_file = REPO_ROOT / "infra" / "config-repo" / "analytics-service-docker.yml"
    assert "database_url" not in docker_file.read_text()
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://postgres:s3cret@postgres:5432/x")
    docker = AnalyticsSettings(profile="docker")
    assert docker.sql_url == "postgresql+psycopg2://postgres:s3cret@postgres:5432/x"
    assert "s3cret" not in repr(docker)  # the URL's password stays out of logs


def test_a_record_too_large_to_dead_letter_whole_goes_there_truncated(
    service: Analytics, engine: Engine
) -> None:
    """A multi-MB record on the analytics topic between valid updates: the rows are stored,
    the record's truncated copy is dead-lettered with headers, the service keeps running."""
    migrate.upgrade(engine)
    good = count_updates(seed=12, windows=2)
    huge = orjson.dumps({**good[0].model_dump(mode="json"), "word": "w" * OVERSIZED_BYTES})
    half = len(good) // 2
    produce_counts(service.kafka, good[:half])
    produce_oversized(service.kafka, service.kafka.analytics_topic, b"huge", huge)
    produce_counts(service.kafka, good[half:])
    service.start()
    service.wait_committed(len(good) + 1)

    assert stored_counts(engine) == largest(good)
    (dead,) = read_topic(service.kafka, service.kafka.dlq_topic, 1)
    headers = assert_truncated_copy(dead, huge, "analytics-service")
    assert headers["dlq.error"] == "SchemaViolation"
    assert service.metric("tweetpipe_dead_letters_truncated_total") == 1
    assert service.metric("tweetpipe_analytics_records_total") == len(good) + 1


def test_the_openapi_spec_is_the_contract(service: Analytics, tmp_path: Path) -> None:
    """schemathesis, every check and phase, with a real token, over stored counts."""
    updates = count_updates(seed=5)
    produce_counts(service.kafka, updates)
    service.start()
    service.wait_committed(len(updates))
    assert_contract_holds(f"http://127.0.0.1:{service.port}", service.token, tmp_path)


# --- final windows, hopping windows, rising now ---------------------------------------------

HOP = timedelta(minutes=3)
STEP = timedelta(minutes=1)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def hop(word: str, count: int, start: datetime, final: bool = False) -> WordCount:
    return WordCount(
        word=word, word_count=count, window_start=start, window_end=start + HOP, final=final
    )


def produce_hopping(kafka: KafkaSettings, updates: list[WordCount]) -> None:
    produce(kafka, kafka.analytics_hopping_topic, ((u.key, u.to_json()) for u in updates))


def test_final_flags_stick_and_hopping_windows_have_their_own_rows(
    service: Analytics, engine: Engine
) -> None:
    """A final update marks the row final; a replayed provisional one does not undo it. Hopping
    windows starting with a tumbling one are rows of their own, not a larger tumbling count."""
    tumbling = [
        WordCount(word="kafka", word_count=4, window_start=T0, window_end=T0 + WINDOW),
        WordCount(word="kafka", word_count=7, window_start=T0, window_end=T0 + WINDOW, final=True),
        WordCount(word="kafka", word_count=4, window_start=T0, window_end=T0 + WINDOW),
    ]
    # an older producer's record has no `final`: read as provisional
    legacy = {
        "word": "java",
        "word_count": 2,
        "window_start": iso(T0),
        "window_end": iso(T0 + WINDOW),
    }
    produce_counts(service.kafka, tumbling)
    produce(service.kafka, service.kafka.analytics_topic, [(b"java", orjson.dumps(legacy))])
    produce_hopping(service.kafka, [hop("kafka", 30, T0), hop("kafka", 31, T0, final=True)])
    service.start()
    service.wait_committed(len(tumbling) + 1)
    wait_until(
        lambda: service.get("/analytics/trending", min_score=0, min_count=1).json()["final"],
        60,
        "the hopping window stored, final",
    )
    kafka = service.get("/get-word-count-by-word/kafka").json()
    assert (kafka["word_count"], kafka["final"]) == (7, True)
    java = service.get("/get-word-count-by-word/java").json()
    assert (java["word_count"], java["final"]) == (2, False)
    top = service.get("/analytics/top", window=iso(T0)).json()
    assert top["final"] is False  # java's count in it is still provisional
    with engine.connect() as connection:
        hopping = connection.execute(select(HOPPING_TABLE)).all()
    assert [(r.word, r.window_start, r.window_end, r.word_count, r.final) for r in hopping] == [
        ("kafka", T0, T0 + HOP, 31, True)
    ]


def test_rising_now_scores_terms_against_their_own_baseline(service: Analytics) -> None:
    """21 hopping windows (3 minutes, every minute). The latest one is the earliest holding the
    newest minute; its baseline is the six back-to-back windows before it. A burst rises, a
    flat term does not, nor a term below the minimum count, the filter keywords or stop words."""
    starts = [T0 + i * STEP for i in range(21)]
    latest = T0 + 18 * STEP  # the newest window starts at T0 + 20 min
    baseline = [latest - k * HOP for k in range(1, 7)]
    updates = []
    for start in starts:
        now = start == latest
        updates += [hop("streams", 20, start), hop("kafka", 100 if now else 10, start)]
        updates += [hop("the", 90 if now else 9, start)]
        updates.append(hop("launch", 40 if now else (2 if start in baseline else 1), start))
        if now:
            updates += [hop("fresh", 12, start), hop("tiny", 3, start)]
    produce_hopping(service.kafka, updates)
    service.start()

    def answer(**params: Any) -> dict[str, Any]:
        response = service.get("/analytics/trending", **params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    wait_until(lambda: len(answer()["trending"]) == 2, 60, "the windows stored")
    assert answer() == {
        "window_start": iso(latest),
        "window_end": iso(latest + HOP),
        "final": False,
        "trending": [
            {"term": "launch", "count": 40, "baseline": 2.0, "score": 21.939},
            {"term": "fresh", "count": 12, "baseline": 0.0, "score": 12.0},
        ],
    }
    assert [t["term"] for t in answer(n=1)["trending"]] == ["launch"]
    assert [t["term"] for t in answer(min_count=3)["trending"]] == ["launch", "fresh", "tiny"]
    assert answer(min_score=15)["trending"][0]["term"] == "launch"

    for params, parameter, message in (
        ({"n": 0}, "n", "greater than or equal to 1"),
        ({"n": 101}, "n", "less than or equal to 100"),
        ({"n": "ten"}, "n", "valid integer"),
        ({"min_count": 0}, "min_count", "greater than or equal to 1"),
        ({"min_score": -1}, "min_score", "greater than or equal to 0"),
        ({"min_score": "high"}, "min_score", "valid number"),
    ):
        response = service.get("/analytics/trending", **params)
        assert response.status_code == 422, params
        (error,) = response.json()["detail"]
        assert error["loc"] == ["query", parameter]
        assert message in error["msg"]


def test_rising_now_with_no_data_is_empty(service: Analytics) -> None:
    service.start()
    assert service.get("/analytics/trending").json() == {
        "window_start": None,
        "window_end": None,
        "final": False,
        "trending": [],
    }
