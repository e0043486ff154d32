"""A small real HTTP service for gateway tests: echoes requests, fails on demand, streams.

Run as `python -m tests.support.upstream` with `UPSTREAM_PORT` and `UPSTREAM_NAME` set.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

NAME = os.environ.get("UPSTREAM_NAME", "upstream")
app = FastAPI()
state = {"failing": False, "released": asyncio.Event()}


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "UP"}


@app.api_route("/echo/{rest:path}", methods=["GET", "POST", "PUT", "DELETE"])
async def echo(request: Request, rest: str) -> JSONResponse:
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
    return JSONResponse(
        {
            "instance": NAME,
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": [[k, v] for k, v in request.headers.items()],
            "body_sha256": digest.hexdigest(),
            "body_size": size,
        },
        headers={"X-Upstream": NAME, "Keep-Alive": "timeout=5"},
    )


@app.post("/failing/{on}")
def set_failing(on: bool) -> dict[str, bool]:
    state["failing"] = on
    return {"failing": on}


@app.get("/flaky")
def flaky() -> Response:
    if state["failing"]:
        return JSONResponse({"detail": f"{NAME} is failing"}, 500)
    return JSONResponse({"instance": NAME})


@app.get("/slow")
async def slow(seconds: float) -> dict[str, str]:
    await asyncio.sleep(seconds)
    return {"instance": NAME}


@app.get("/stream")
async def stream(chunks: int = 4, chunk_kb: int = 256) -> StreamingResponse:
    """The first chunk at once; the rest only after `POST /release`."""
    released: asyncio.Event = state["released"]  # type: ignore[assignment]
    released.clear()

    async def body() -> AsyncIterator[bytes]:
        yield b"a" * (chunk_kb * 1024)
        await released.wait()
        for _ in range(chunks - 1):
            yield b"b" * (chunk_kb * 1024)

    return StreamingResponse(body(), media_type="application/octet-stream")


@app.post("/release")
def release() -> dict[str, bool]:
    released: asyncio.Event = state["released"]  # type: ignore[assignment]
    released.set()
    return {"released": True}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["UPSTREAM_PORT"]), log_level="warning")
