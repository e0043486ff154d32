"""`tweetpipe.serving`: a real uvicorn process whose start-up heap is settled before the first
request, and whose blocking calls are limited to the threads the service asks for (the
tail-latency fixes measured in bench/query.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.ports import free_port

SERVER = textwrap.dedent(
    """
    import gc, sys, threading, time, weakref
    from contextlib import asynccontextmanager
    from fastapi import FastAPI
    from tweetpipe.serving import limit_blocking_threads, serve

    class Node:
        pass

    def startup_garbage() -> weakref.ref[Node]:
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle: only the cyclic collector frees it
        return weakref.ref(a)

    garbage = startup_garbage()

    @asynccontextmanager
    async def lifespan(app):
        limit_blocking_threads(2)
        yield

    app = FastAPI(lifespan=lifespan)
    lock = threading.Lock()
    running = {"now": 0, "most": 0}

    @app.get("/heap")
    def heap() -> dict[str, object]:
        return {"frozen": gc.get_freeze_count(), "startup_garbage_alive": garbage() is not None}

    @app.get("/blocking")
    def blocking() -> dict[str, int]:
        with lock:
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
        time.sleep(0.2)
        with lock:
            running["now"] -= 1
        return running

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


def test_blocking_calls_run_at_most_as_many_at_once_as_the_service_allows(server: str) -> None:
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: httpx.get(f"{server}/blocking", timeout=30), range(8)))
    assert [a.status_code for a in answers] == [200] * 8
    assert max(a.json()["most"] for a in answers) == 2  # 8 waiting, 2 running: the limit
