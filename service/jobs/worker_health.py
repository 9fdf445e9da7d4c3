"""A worker's liveness for container health checks: `nn-service worker --check`.

An RQ worker serves no HTTP, so its heartbeat is a small file: every `heartbeat_seconds` the
`nn-service worker` process rewrites `<dir>/<pid>.json` ({pid, host, runner_id, at,
stale_after}) and removes it when it stops. `--check` passes when a file in the directory is
younger than its `stale_after` (the worker's lease_seconds, the age after which a job's
heartbeat means a dead worker too) and its process is alive on this host.

Why a file in a per-container directory (a tmpfs in docker/compose.yaml, by default
$TMPDIR/nn-service-workers-<uid>) rather than a row in Redis or the database: the check must
answer for the worker in *this* container, in milliseconds, every few seconds, without
depending on the servers the worker is built to outlast (a worker rides out a Redis or Postgres
outage; restarting it would not help). Workers on other machines are watched by their job leases
in the database.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

HOSTNAME = socket.gethostname()


def default_dir() -> Path:
    """Where workers of this user on this machine (or container) write their heartbeats."""
    return Path(tempfile.gettempdir()) / f"nn-service-workers-{os.getuid()}"


@dataclass(frozen=True)
class Beat:
    """One worker's last heartbeat, as read back from its file."""

    pid: int
    host: str
    runner_id: str
    at: float
    stale_after: float

    def age(self, now: float) -> float:
        return max(0.0, now - self.at)


class HeartbeatWriter:
    """A daemon thread that rewrites this process's heartbeat file every `interval` seconds."""

    def __init__(self, directory: Path, runner_id: str, interval: float, stale_after: float):
        self.path = directory / f"{os.getpid()}.json"
        self.runner_id = runner_id
        self.interval = interval
        self.stale_after = stale_after
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nns-worker-heartbeat", daemon=True)

    def start(self) -> None:
        """Beat now (healthy from the first check on) and then every interval. A directory that
        cannot be written is logged, not fatal: the worker still works, its check says why."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _prune_dead(self.path.parent)
            self.beat()
        except OSError as exc:
            log.warning(
                "cannot write the heartbeat file %s (worker --check fails): %s", self.path, exc
            )
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and remove the file: a stopped worker is not a healthy one."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 5)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def beat(self) -> None:
        record = {
            "pid": os.getpid(),
            "host": HOSTNAME,
            "runner_id": self.runner_id,
            "at": time.time(),
            "stale_after": self.stale_after,
        }
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(record), encoding="utf-8")
        os.replace(partial, self.path)  # a reader never sees half a file

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except OSError as exc:  # e.g. a full tmpfs: the check reports the staleness
                log.warning("cannot write the heartbeat file %s: %s", self.path, exc)


def read_beats(directory: Path) -> list[Beat]:
    """Every readable heartbeat in `directory`, newest first (unreadable files are skipped)."""
    beats: list[Beat] = []
    for path in directory.glob("*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            beats.append(
                Beat(
                    pid=int(data["pid"]),
                    host=str(data["host"]),
                    runner_id=str(data["runner_id"]),
                    at=float(data["at"]),
                    stale_after=float(data["stale_after"]),
                )
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(beats, key=lambda beat: beat.at, reverse=True)


def _prune_dead(directory: Path) -> None:
    """Remove heartbeats left by killed workers of this host, so they do not pile up."""
    for beat in read_beats(directory):
        if beat.host == HOSTNAME and beat.pid != os.getpid() and not _alive(beat.pid):
            with contextlib.suppress(FileNotFoundError):
                (directory / f"{beat.pid}.json").unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process, but it exists
        return True
    return True


def check(directory: Path, now: float | None = None) -> tuple[bool, str]:
    """(healthy, one line saying why) for the workers that write heartbeats in `directory`."""
    now = time.time() if now is None else now
    beats = [beat for beat in read_beats(directory) if beat.host == HOSTNAME]
    if not beats:
        return False, f"no worker heartbeat in {directory} (is `nn-service worker` running here?)"
    for beat in beats:
        if beat.age(now) <= beat.stale_after and _alive(beat.pid):
            return True, f"worker pid {beat.pid}: last heartbeat {beat.age(now):.1f} s ago"
    newest = beats[0]
    if not _alive(newest.pid):
        return False, (
            f"worker pid {newest.pid} is gone; its last heartbeat was {newest.age(now):.0f} s ago"
        )
    return False, (
        f"worker pid {newest.pid}: last heartbeat {newest.age(now):.0f} s ago "
        f"(stale after {newest.stale_after:g} s): the worker is stuck"
    )
