"""`./dev`: `up` installs only what running needs; the test-only Debian packages come with `test`.

`./dev up` runs here with `dpkg` answering "not installed" for everything and `apt-get` only
recording what it was asked; `--count 0` makes `tweetpipe up` stop at its argument check, so
nothing is installed and nothing starts.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tweetpipe.settings import REPO_ROOT

DEV = REPO_ROOT / "dev"
TEST_ONLY = {"chromium", "fonts-noto-cjk", "docker-compose", "wrk", "redis-server", "postgresql"}


def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def test_dev_up_installs_only_what_running_needs(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    asked = tmp_path / "apt-get.log"
    _fake(bin_dir, "dpkg", "exit 1")  # nothing is installed
    _fake(bin_dir, "apt-get", f'echo "$*" >> {asked}')
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = subprocess.run(
        [str(DEV), "up", "--count", "0"], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 2, result.stdout + result.stderr  # tweetpipe up refused --count 0
    assert "argument --count" in result.stderr
    installed = [
        word
        for line in asked.read_text().splitlines()
        if line.startswith("install ")
        for word in line.split()[1:]
        if not word.startswith("-")
    ]
    assert installed == ["prometheus"]


def test_dev_test_installs_the_test_only_packages() -> None:
    script = DEV.read_text()
    (tests_branch,) = re.findall(r"^  test\)\n(.*?)\n    ;;", script, re.MULTILINE | re.DOTALL)
    assert "setup_tests" in tests_branch
    (test_packages,) = re.findall(r"^TEST_PACKAGES=\((.*)\)$", script, re.MULTILINE)
    (run_packages,) = re.findall(r"^RUN_PACKAGES=\((.*)\)$", script, re.MULTILINE)
    assert set(test_packages.split()) | {"postgresql"} == TEST_ONLY
    assert "apt_install postgresql" in script.split("setup_tests() {")[1].split("\n}")[0]
    assert not TEST_ONLY & set(run_packages.split())
