"""Gateway figures on this machine; the last line printed is one JSON object.

    .venv/bin/python bench/gateway.py [--tweets 20000] [--seconds 10] [--connections 16]

The same authenticated search request, at the same concurrency, straight to the query
service and through the gateway (rate limiting on, with a budget far above the load):
- direct_rps, via_gateway_rps
- added_p50_ms, added_p99_ms: the gateway's latency on top of the direct call (the p99s of
  each path are printed too: the added p99 falls when the direct path's tail grows)
- gateway_cpu_ms_per_request: the gateway process's CPU time (user + system) per proxied
  request; when the query service is the bottleneck, this is the gateway's cost the
  throughput figures no longer show
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import run_wrk
from bench.query import WORDS, build_index, say, start_query_service
from tests.support.issuer import DevIssuer
from tests.support.ports import free_port
from tests.support.services import ServiceProcess


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux `/proc`)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tweets", type=int, default=20_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build_index(work / "index", args.tweets)
        issuer = DevIssuer(work).start()
        query_port, gateway_port = free_port(), free_port()
        query = start_query_service(work, issuer, query_port)
        routes = [
            {
                "id": "elastic-query-service",
                "service_id": "ELASTIC-QUERY-SERVICE",
                "urls": [f"http://127.0.0.1:{query_port}"],
            }
        ]
        gateway = ServiceProcess(
            "gateway",
            {
                "ADMIN__PORT": str(gateway_port),
                "DATA_DIR": str(work),
                "AUTH__ISSUER_URL": issuer.realm_url,
                "LOG_LEVEL": "WARNING",
                "ROUTES": json.dumps(routes),
                "RATE_LIMIT__REPLENISH_PER_S": "1000000",
                "RATE_LIMIT__BURST": "1000000",
            },
            work / "gateway.log",
        ).start()
        try:
            query.wait_healthy(query_port)
            gateway.wait_healthy(gateway_port)
            auth = {"Authorization": f"Bearer {issuer.password_token('app_super_user')}"}
            paths = [f"/documents/search?q={w}&size=10" for w in WORDS]
            direct_url = f"http://127.0.0.1:{query_port}"
            via_url = f"http://127.0.0.1:{gateway_port}"
            via_paths = [f"/elastic-query-service{p}" for p in paths]
            say("warming up")
            run_wrk(via_url, via_paths, auth, 2, args.connections)
            say(f"direct for {args.seconds}s at {args.connections} connections")
            direct = run_wrk(direct_url, paths, auth, args.seconds, args.connections)
            say(f"via the gateway for {args.seconds}s at {args.connections} connections")
            assert gateway.process is not None
            cpu_before = cpu_seconds(gateway.process.pid)
            via = run_wrk(via_url, via_paths, auth, args.seconds, args.connections)
            gateway_cpu_ms = 1000 * (cpu_seconds(gateway.process.pid) - cpu_before)
        finally:
            gateway.terminate()
            query.terminate()
            issuer.stop()
    print(
        json.dumps(
            {
                "tweets": args.tweets,
                "connections": args.connections,
                "direct_rps": round(direct.rps),
                "via_gateway_rps": round(via.rps),
                "ratio": round(via.rps / direct.rps, 2),
                "added_p50_ms": round(via.p50_ms - direct.p50_ms, 2),
                "added_p99_ms": round(via.p99_ms - direct.p99_ms, 2),
                "direct_p99_ms": round(direct.p99_ms, 2),
                "via_p99_ms": round(via.p99_ms, 2),
                "gateway_cpu_ms_per_request": round(gateway_cpu_ms / (via.rps * args.seconds), 3),
                "errors": direct.errors + via.errors,
            }
        )
    )


if __name__ == "__main__":
    main()
