"""`tweetpipe.serving.serve`: a real uvicorn process whose start-up heap is settled before the
first request (the tail-latency fix measured in bench/query.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.ports import free_port

SERVER = textwrap.dedent(
    """
    import gc, sys, weakref
    from fastapi import FastAPI
    from tweetpipe.serving import serve

    class Node:
        pass

    def startup_garbage() -> weakref.ref[Node]:
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle: only the cyclic collector frees it
        return weakref.ref(a)

    garbage = startup_garbage()
    app = FastAPI()

    @app.get("/heap")
    def heap() -> dict[str, object]:
        return {"frozen": gc.get_freeze_count(), "startup_garbage_alive": garbage() is not None}

    serve(app, "127.0.0.1", int(sys.argv[1]))
    """
)


@pytest.fixture
def server() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "the server exited"
            try:
                httpx.get(f"{url}/heap", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_start_up_heap_is_frozen_after_its_garbage_is_collected(server: str) -> None:
    first = httpx.get(f"{server}/heap").json()
    # Modules, FastAPI and pydantic objects: tens of thousands; a few would mean no freeze.
    assert first["frozen"] > 10_000
    assert first["startup_garbage_alive"] is False


def test_what_requests_allocate_stays_collectable(server: str) -> None:
    counts = [httpx.get(f"{server}/heap").json()["frozen"] for _ in range(20)]
    assert len(set(counts)) == 1, counts
