"""`python -m service.jobs.child`: one training job in a fresh process (embedded runner).

The parent writes one JSON line to our stdin ({"job_id", "worker_id", "settings"}) and keeps
the pipe open. Settings travel this way, not on the command line (which other users can read)
nor via the environment, because a test or an embedding program may have built them in code.
When the parent dies (even by kill -9) the pipe closes; we exit at once rather than train on
as an orphan, and the restarted server resumes the job from its last checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading

from service.config import Settings

#: Exit status when the parent went away (the job is left for recovery, not finished).
PARENT_GONE = 75
#: Training is batch work: a lower CPU priority keeps the API process responsive.
NICE_INCREMENT = 5

log = logging.getLogger("service.jobs.child")


def _exit_when_parent_dies(fd: int) -> None:
    # os.read, not sys.stdin: a daemon thread blocked inside the buffered reader holds its
    # lock, and interpreter shutdown then aborts with "could not acquire lock for <stdin>".
    while os.read(fd, 4096):
        pass
    log.warning("the server process is gone; stopping this training process")
    os._exit(PARENT_GONE)


def _read_line(fd: int) -> bytes:
    """The first line, read unbuffered so nothing after it is swallowed by a buffer."""
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        data += chunk
    return bytes(data)


def main() -> int:
    # Ctrl+C in a terminal reaches the whole process group: the supervising server or worker
    # decides (it requeues the job on shutdown); failing the job here would lose it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fd = sys.stdin.fileno()
    payload = json.loads(_read_line(fd))
    settings = Settings.model_validate(payload["settings"])

    from service.jobs.run import run_training
    from service.observability import configure_logging

    configure_logging(settings.log_level)
    threading.Thread(
        target=_exit_when_parent_dies, args=(fd,), name="parent-watch", daemon=True
    ).start()
    with contextlib.suppress(OSError):
        os.nice(NICE_INCREMENT)
    outcome = run_training(payload["job_id"], settings, worker_id=payload["worker_id"])
    log.info("job %s ended: %s", payload["job_id"], outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
