"""`nn-service serve` as a real process on 127.0.0.1, for the benchmark scripts.

Each benchmark runs the service the way a user does (a real uvicorn, a fresh data directory,
the embedded default unless told otherwise) so the figures include HTTP, auth and the database.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

NN_SERVICE = Path(sys.executable).parent / "nn-service"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Until `url` answers 200; exit with the log's tail if the process dies or never does."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited; see {log}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"server did not start; see {log}")


def start_server(
    workdir: Path, *, workers: int = 1, **settings: str
) -> tuple[subprocess.Popen[bytes], str]:
    """A server (`serve --workers workers`) with its data in workdir/data, logging to
    workdir/server.log; `settings` are NNS_* values (e.g. PREDICT_RATE_LIMIT="0"). Returns
    the process and its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNS_")}
    env.pop("DATABASE_URL", None)
    env.update(NNS_DATA_DIR=str(workdir / "data"), NNS_LOG_LEVEL="WARNING")
    env.update({f"NNS_{key.upper()}": value for key, value in settings.items()})
    log = workdir / "server.log"
    process = subprocess.Popen(
        [str(NN_SERVICE), "serve", "--port", str(port), "--workers", str(workers)],
        cwd=workdir,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    wait_ready(process, f"{base}/readyz", log)
    return process, base


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
