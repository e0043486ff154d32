"""The OpenAPI contract run: the schemathesis CLI against a running service, with a real token.

Every check (`--checks all`) and every phase (examples, coverage, fuzzing, stateful), a fixed
seed and a modest example count, so a run is deterministic and takes well under a minute. One
place for the command, so the three APIs (query, analytics, word count) are held to the same
contract. `openapi_hooks` holds the two rules of ours a schema cannot state (see there).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tweetpipe.settings import REPO_ROOT

PHASES = "examples,coverage,fuzzing,stateful"
SEED = 1


def assert_contract_holds(
    base_url: str,
    token: str,
    workdir: Path,
    *,
    include_path_regex: str | None = None,
    max_examples: int = 25,
    timeout_s: float = 600,
) -> None:
    """Run schemathesis against `base_url`'s `/openapi.json`; fail with its report if it finds
    anything, or if it left a selected operation untested (a green run that tested nothing)."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        PHASES,
        "--max-examples",
        str(max_examples),
        "--seed",
        str(SEED),
        "--workers",
        "1",  # one worker: the order of requests, hence the run, is the same every time
        "--generation-database",
        "none",  # nothing remembered from an earlier run changes this one
        "--header",
        f"Authorization: Bearer {token}",
        "--no-color",
    ]
    if include_path_regex is not None:
        command += ["--include-path-regex", include_path_regex]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.support.openapi_hooks",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=workdir,
        env=env,
        check=False,
    )
    output = result.stdout + result.stderr
    print(output)  # the phases, counts and timings, for `pytest -rP`
    assert result.returncode == 0, output[-12000:]
    counts = re.search(r"Selected: (\d+)/\d+\s+Tested: (\d+)", output)
    assert counts is not None, output[-4000:]
    assert counts[1] == counts[2], output[-4000:]
