"""`nn-service serve --workers N`: N uvicorn processes on one listening socket.

A small supervisor rather than uvicorn's own `workers=`: uvicorn's workers all build the same
app from an import string, but here exactly one of them may run the job runner. The embedded
runner's claims are fenced per job, yet on Postgres two runners can each count the live jobs
(READ COMMITTED, SKIP LOCKED) and together exceed NNS_MAX_CONCURRENT_JOBS; they would also
all recover leases, advance sweeps and pump webhooks. So worker 0 runs the runner and the
others serve requests only (they find queued jobs through the database like any process).

The supervisor migrates and creates the admin key once, then starts each worker as
`python -m service.workers --fd F --index I`, a fresh interpreter that inherits the bound
socket. Prometheus runs in multiprocess mode (PROMETHEUS_MULTIPROC_DIR, a temporary directory
unless set) so /metrics from any worker adds up all of them. SIGTERM or SIGINT is passed on
to every worker; a worker that exits on its own stops the rest (fail fast: the process
manager restarts the whole server, and the runner with it).
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
from contextlib import ExitStack, suppress
from types import FrameType

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.config import Settings

log = logging.getLogger(__name__)

#: Response header naming the worker process that answered (only with --workers > 1).
WORKER_HEADER = "x-nns-worker"
#: Pending connections the socket holds while workers start or are busy (uvicorn's default).
BACKLOG = 2048
_PR_SET_PDEATHSIG = 1


class WorkerHeader:
    """Adds `X-NNS-Worker: <pid>` to every response, so operators and tests can see which
    process answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.value = str(os.getpid()).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-nns-worker", self.value)]
            await send(message)

        await self.app(scope, receive, send_wrapper)


# ----------------------------------------------------------------------------- supervisor


def serve_workers(settings: Settings, sock: socket.socket, workers: int) -> int:
    """Run `workers` worker processes on `sock` until a signal or one of them exits."""
    from service import migrate
    from service.auth import ensure_admin_key
    from service.db import Database

    migrate.upgrade(settings)
    database = Database(settings)
    try:
        ensure_admin_key(database, settings)
    finally:
        database.dispose()
    sock.listen(BACKLOG)
    with ExitStack() as stack:
        env = dict(os.environ, NNS_HOST=settings.host, NNS_PORT=str(settings.port))
        if not env.get("PROMETHEUS_MULTIPROC_DIR"):
            env["PROMETHEUS_MULTIPROC_DIR"] = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="nns-metrics-")
            )
        return _Supervisor(sock, workers, env).run()


class _Supervisor:
    def __init__(self, sock: socket.socket, workers: int, env: dict[str, str]) -> None:
        self.sock = sock
        self.workers = workers
        self.env = env
        self.live: dict[int, subprocess.Popen[bytes]] = {}  # pid -> process
        self.stopping = False

    def run(self) -> int:
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            for index in range(self.workers):
                self._spawn(index)
            log.info("serving with %d worker processes %s", self.workers, sorted(self.live))
            return self._wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _spawn(self, index: int) -> None:
        fd = self.sock.fileno()
        command = [sys.executable, "-m", "service.workers", "--fd", str(fd), "--index", str(index)]
        process = subprocess.Popen(command, env=self.env, pass_fds=(fd,))
        self.live[process.pid] = process

    def _wait(self) -> int:
        code = 0
        while self.live:
            pid, status = os.waitpid(-1, 0)
            process = self.live.pop(pid, None)
            if process is None:
                continue
            process.returncode = os.waitstatus_to_exitcode(status)
            if not self.stopping:
                log.error("worker %d exited with %d; stopping the others", pid, process.returncode)
                code = 3 if process.returncode == 3 else 1
                self._stop_all()
        return code

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop_all()

    def _stop_all(self) -> None:
        self.stopping = True
        for pid in list(self.live):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


# ----------------------------------------------------------------------------- one worker


def _die_with_parent() -> None:
    """Linux: SIGTERM this worker if the supervisor dies (even by SIGKILL), so no orphan
    keeps serving the port."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def run_worker(fd: int, index: int) -> int:
    """One worker: the app (worker 0 with the job runner) served on the inherited socket."""
    import uvicorn

    from service.app import create_app
    from service.http_limits import uvicorn_options
    from service.observability import configure_logging

    _die_with_parent()
    settings = Settings()
    configure_logging(settings.log_level)
    sock = socket.socket(fileno=fd)
    app = WorkerHeader(create_app(settings, start_runner=index == 0))
    config = uvicorn.Config(
        app,
        log_config=None,  # keep configure_logging's JSON handler
        log_level=settings.log_level.lower(),
        lifespan="on",
        **uvicorn_options(settings),
    )
    server = uvicorn.Server(config)
    with sock:
        server.run(sockets=[sock])
    return 0 if server.started else 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.workers")
    parser.add_argument("--fd", type=int, required=True, help="the listening socket's fd")
    parser.add_argument("--index", type=int, required=True, help="0 runs the job runner")
    args = parser.parse_args(argv)
    return run_worker(args.fd, args.index)


if __name__ == "__main__":
    sys.exit(main())
