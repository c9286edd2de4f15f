"""Run the real ``flowyard`` command as a subprocess, the way an operator would."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.auth import ADMIN_KEY
from tests.servers import FLOWYARD, REPO, RunningServer, free_port, start_server

__all__ = ["FLOWYARD", "REPO", "RunningServer", "free_port", "run_cli", "start_server"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(["serve", "--data-dir", str(tmp_path / "data")], tmp_path)
    yield running
    running.stop(signal.SIGKILL)


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLOWYARD), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd or REPO,
        check=False,
        env={**os.environ, "FLOWYARD_API_KEY": ADMIN_KEY},
    )
