from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.broker import TansuBroker
from tests.support.issuer import DevIssuer
from tests.support.ports import free_port
from tweetpipe.kafka import ensure_topics, pipeline_topics
from tweetpipe.settings import KafkaSettings


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[TansuBroker]:
    """A fresh Tansu broker per test: groups and topics never leak between tests."""
    with TansuBroker(free_port(), log_path=tmp_path / "broker.log") as running:
        yield running


@pytest.fixture
def kafka_settings(broker: TansuBroker) -> KafkaSettings:
    settings = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, startup_timeout_s=30)
    ensure_topics(settings, pipeline_topics(settings))
    return settings


@pytest.fixture(scope="session")
def dev_issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevIssuer]:
    """One dev issuer for the whole run (it is stateless but for sessions and refresh tokens)."""
    issuer = DevIssuer(tmp_path_factory.mktemp("issuer")).start()
    yield issuer
    issuer.stop()
