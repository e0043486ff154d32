"""Fixed-concurrency HTTP load with `wrk` (Debian's package), parsed into figures.

wrk is a native load generator: on a 2-core machine a Python client would spend the CPU the
server under test needs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
LUA = """
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format(nil, paths[(i %% #paths) + 1])
end
"""


@dataclass(frozen=True)
class LoadResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def run_wrk(
    base_url: str,
    paths: list[str],
    headers: dict[str, str],
    seconds: int = 10,
    connections: int = 16,
    threads: int = 1,
) -> LoadResult:
    """Drive `paths` (round robin) at `connections` concurrent connections for `seconds`."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed: run ./dev test once, or apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "paths.lua"
        script.write_text(LUA % ", ".join(f'"{p}"' for p in paths))
        command = [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
        ]
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        output = subprocess.run(
            [*command, base_url], capture_output=True, text=True, check=True
        ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])  # type: ignore[index]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output)[1])  # type: ignore[index]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output)[1])  # type: ignore[index]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(non_2xx[1]) if non_2xx else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return LoadResult(rps=rps, p50_ms=p50, p99_ms=p99, errors=errors)
