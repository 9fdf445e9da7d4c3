"""`nn-service serve` as a real process on 127.0.0.1, for any test directory.

(tests/ is on sys.path through tests/conftest.py, so every test module can import this.)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

NN_SERVICE = Path(sys.executable).parent / "nn-service"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """`nn-service serve` as a real process; restartable on the same data dir and database.

    Without a database_url the server uses its default, the SQLite file in <tmp_path>/data.
    """

    def __init__(self, tmp_path: Path, database_url: str | None = None, **settings: Any) -> None:
        self.tmp_path = tmp_path
        self.data_dir = tmp_path / "data"
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith("NNS_") and k != "DATABASE_URL"
        }
        values = {
            "DATA_DIR": str(self.data_dir),
            **({"DATABASE_URL": database_url} if database_url else {}),
            "HEARTBEAT_SECONDS": "0.3",
            "LEASE_SECONDS": "6",
            "CANCEL_GRACE_SECONDS": "2",
        }
        values.update({k.upper(): str(v) for k, v in settings.items()})
        self.env.update({f"NNS_{k}": v for k, v in values.items()})
        self.process: subprocess.Popen[bytes] | None = None
        self.base = ""
        self.starts = 0

    @property
    def key(self) -> str:
        return (self.data_dir / "admin-key").read_text().strip()

    @property
    def log_path(self) -> Path:
        return self.tmp_path / f"server-{self.starts}.log"

    def start(self) -> str:
        """Launch the server and wait until it answers /readyz; returns its base URL."""
        self.launch()
        return self.wait_ready()

    def launch(self) -> str:
        """Start the process on a free port and return its base URL at once (not yet ready)."""
        self.starts += 1
        port = free_port()
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [str(NN_SERVICE), "serve", "--port", str(port)],
                cwd=self.tmp_path,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.base = f"http://127.0.0.1:{port}"
        return self.base

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    def wait_ready(self, timeout: float = 30) -> str:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return self.base
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, self.log_path.read_text()
            time.sleep(0.05)

    def training_pids(self) -> list[int]:
        """Pids of the server's live `python -m service.jobs.child` processes."""
        assert self.process is not None
        children = []
        # Each thread's own children: the runner may start processes from any thread.
        for task in Path(f"/proc/{self.process.pid}/task").glob("*"):
            try:
                children += (task / "children").read_text().split()
            except OSError:  # the thread (or the server) is gone
                continue
        pids = []
        for child in children:
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:  # exited meanwhile
                continue
            if b"service.jobs.child" in cmdline:
                pids.append(int(child))
        return pids

    def kill(self) -> None:
        """kill -9: no shutdown hooks run, exactly like a crash or an OOM kill."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def run_cli(
        self, *args: str, stdin: str = "", timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(NN_SERVICE), *args],
            input=stdin,
            cwd=self.tmp_path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
