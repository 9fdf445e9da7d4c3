"""`nn-service serve` on a port that another process holds: one line saying how to pick
another port, exit 1, no traceback, and nothing started or written."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from server_process import NN_SERVICE


def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNS_")}
    env.pop("DATABASE_URL", None)
    env["NNS_DATA_DIR"] = str(tmp_path / "data")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run(
            [str(NN_SERVICE), "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines == [
        f"nn-service: error: port {port} on 127.0.0.1 is already in use (another nn-service?); "
        f"pick another with --port {port + 1} or NNS_PORT={port + 1}"
    ], done.stderr
    # Refused before migrating or writing the admin key: the data dir was never made.
    assert not (tmp_path / "data").exists()


def test_serve_on_a_busy_port_set_by_nns_port(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNS_")}
    env.pop("DATABASE_URL", None)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env.update(NNS_DATA_DIR=str(tmp_path / "data"), NNS_PORT=str(port))
        done = subprocess.run(
            [str(NN_SERVICE), "serve"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
