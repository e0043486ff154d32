"""The `tweetpipe` command as a person meets it: version, help, bad values, store errors, ports
taken before `up` starts anything, and the project's own index found from any directory."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tweetpipe.cli import build_parser
from tweetpipe.search import open_store
from tweetpipe.settings import REPO_ROOT, SearchSettings
from twitter_to_kafka.generator import TweetGenerator
from twitter_to_kafka.settings import GeneratorOptions

TWEETPIPE = str(Path(sys.executable).with_name("tweetpipe"))
PORT_NAMES = (
    "BROKER", "REGISTRY", "CONFIG_SERVER", "ISSUER", "GATEWAY", "QUERY_SERVICE", "WEB_CLIENT",
    "TWITTER_TO_KAFKA", "KAFKA_TO_ELASTIC", "KAFKA_STREAMS", "ANALYTICS_SERVICE", "PROMETHEUS",
)  # fmt: skip


def _env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SEARCH__", "PORTS__"))}
    return {**clean, **extra}


def tweetpipe(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TWEETPIPE, *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=_env(**env)
    )


def test_version() -> None:
    result = tweetpipe("--version")
    assert result.returncode == 0
    assert result.stdout == f"tweetpipe {version('tweetpipe')}\n"


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_every_option_and_argument_has_help() -> None:
    for parser in _parsers(build_parser()):
        missing = [a.dest for a in parser._actions if not a.help]
        assert missing == [], f"{parser.prog}: {missing}"
    for command in ([], ["up"], ["search"]):
        result = tweetpipe(*command, "--help")
        assert result.returncode == 0
        assert "usage: tweetpipe" in result.stdout


@pytest.mark.parametrize(
    ("args", "option", "why"),
    [
        (["up", "--count", "0"], "--count", "must be greater than or equal to 1 (got 0)"),
        (["up", "--rate", "-5"], "--rate", "must be greater than or equal to 0 (got -5.0)"),
        (["up", "--count", "many"], "--count", "invalid int value: 'many'"),
        (["search", "query", "--size", "101"], "--size", "less than or equal to 100 (got 101)"),
        (["search", "query", "--size", "0"], "--size", "greater than or equal to 1 (got 0)"),
        (["search", "query", "--sort", "random"], "--sort", "invalid choice: 'random'"),
        (["search", "query", "x" * 600], "text", "at most 512 characters"),
        (["search", "find"], "action", "invalid choice: 'find'"),
    ],
)
def test_a_bad_value_is_one_line_and_exit_2(args: list[str], option: str, why: str) -> None:
    result = tweetpipe(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"tweetpipe {args[0]}: error: argument {option}")
    assert why in lines[0]
    assert "Traceback" not in result.stderr


def test_a_store_that_cannot_answer_is_one_line_and_exit_1() -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    result = tweetpipe(
        "search", "count", SEARCH__BACKEND="elasticsearch", SEARCH__ELASTICSEARCH_HOSTS=nobody
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tweetpipe search: the store failed: elasticsearch count failed")


def test_a_missing_index_is_one_line_and_exit_1(tmp_path: Path) -> None:
    missing = tmp_path / "no-index-here"
    result = tweetpipe("search", "count", SEARCH__TANTIVY_PATH=str(missing))
    assert result.returncode == 1
    assert result.stderr == (
        f"tweetpipe search: no index at {missing}: `./dev up` builds one, "
        "or point SEARCH__TANTIVY_PATH at one\n"
    )
    assert not missing.exists()  # looking did not create an empty index


@pytest.fixture
def project_index() -> Iterator[tuple[str, int]]:
    """An index inside the checkout, named by a path relative to the project root."""
    relative = Path("test-output") / f"cli-{uuid.uuid4().hex[:8]}" / "index"
    tweets = list(TweetGenerator(GeneratorOptions(seed=5, count=60, users=10)))
    store = open_store(
        SearchSettings(tantivy_path=REPO_ROOT / relative, tantivy_writer_heap_mb=16), writer=True
    )
    store.ensure_ready()
    store.bulk_upsert(tweets)
    store.refresh()
    store.close()
    yield str(relative), len(tweets)
    shutil.rmtree(REPO_ROOT / relative.parent)


def test_search_finds_the_projects_index_from_any_directory(
    project_index: tuple[str, int], tmp_path: Path
) -> None:
    relative, count = project_index
    for cwd in (tmp_path, REPO_ROOT / "tests", Path("/")):
        result = tweetpipe("search", "count", cwd=cwd, SEARCH__TANTIVY_PATH=relative)
        assert (result.returncode, result.stdout) == (0, f"{count}\n"), result.stderr
    found = tweetpipe("search", "query", "--size", "3", "--sort", "newest", cwd=tmp_path,
                      SEARCH__TANTIVY_PATH=relative)  # fmt: skip
    assert found.returncode == 0
    assert found.stdout.splitlines()[0] == f"{count} matching tweets"
    assert len(found.stdout.splitlines()) == 4
    assert not (tmp_path / ".tweetpipe").exists()


def test_up_refuses_one_port_for_two_services_before_starting_anything(tmp_path: Path) -> None:
    ports = {name: free_port() for name in PORT_NAMES}
    ports["WEB_CLIENT"] = ports["CONFIG_SERVER"]
    result = tweetpipe(
        "up", "--count", "1",
        DATA_DIR=str(tmp_path / "data"), MONITORING="false",
        **{f"PORTS__{name}": str(port) for name, port in ports.items()},
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == (
        f"tweetpipe up: one port for two services: {ports['WEB_CLIENT']} for config_server "
        "(PORTS__CONFIG_SERVER) and web_client (PORTS__WEB_CLIENT); give each service its own "
        "port\n"
    )
    assert not (tmp_path / "data").exists()


def test_up_names_the_ports_in_use_before_starting_anything(tmp_path: Path) -> None:
    ports = {name: free_port() for name in PORT_NAMES}
    holders = []
    for name in ("GATEWAY", "WEB_CLIENT"):
        holder = socket.socket()
        holder.bind(("127.0.0.1", ports[name]))
        holder.listen()
        holders.append(holder)
    try:
        result = tweetpipe(
            "up", "--count", "1",
            DATA_DIR=str(tmp_path / "data"), MONITORING="false",
            **{f"PORTS__{name}": str(port) for name, port in ports.items()},
        )  # fmt: skip
    finally:
        for holder in holders:
            holder.close()
    assert result.returncode == 1
    assert result.stderr == (
        f"tweetpipe up: ports already in use: {ports['GATEWAY']} (gateway, PORTS__GATEWAY), "
        f"{ports['WEB_CLIENT']} (web_client, PORTS__WEB_CLIENT); stop what holds them or "
        "choose other ports with those settings\n"
    )
    assert not (tmp_path / "data").exists()  # nothing started: no broker, no logs
    with socket.socket() as probe:  # and no broker listens on its port
        assert probe.connect_ex(("127.0.0.1", ports["BROKER"])) != 0
