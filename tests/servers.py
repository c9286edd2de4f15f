"""Real ``flowyard`` processes for the tests that need one (acceptance, browser)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from tests.auth import ADMIN_KEY

FLOWYARD = Path(sys.executable).with_name("flowyard")
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    process: subprocess.Popen[str]
    url: str
    log_path: Path
    log_handle: IO[str]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.log_handle.close()


def start_server(
    args: list[str], tmp_path: Path, *, env: dict[str, str] | None = None
) -> RunningServer:
    port = free_port()
    log_path = tmp_path / f"server-{port}.log"
    handle = log_path.open("w")
    process = subprocess.Popen(
        [str(FLOWYARD), *args, "--port", str(port)],
        stdout=handle,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        # authentication is on: the suite's admin key exists from the start (SPEC §8)
        env={**os.environ, "FLOWYARD_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY, **(env or {})},
    )
    server = RunningServer(process, f"http://127.0.0.1:{port}", log_path, handle)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/api/v1/workflows/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop(signal.SIGKILL)
    raise AssertionError(f"server did not become healthy:\n{server.log()}")
