"""A background thread that keeps a running job's lease alive and watches for cancel.

It runs beside the training loop so a long epoch (one epoch of a big dataset can take
minutes) still heartbeats, and so the loop itself never waits on the database between
batches: the Cancel callback only reads the events set here.
"""

from __future__ import annotations

import logging
import threading

from service.db import Database
from service.jobs import store

log = logging.getLogger(__name__)


class Heartbeat:
    """Every `interval` seconds: renew the heartbeat, read the cancel flag, check ownership."""

    def __init__(self, database: Database, job_id: str, worker_id: str, interval: float) -> None:
        self.database = database
        self.job_id = job_id
        self.worker_id = worker_id
        self.interval = interval
        self.cancel = threading.Event()
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def should_stop(self) -> bool:
        return self.cancel.is_set() or self.lost.is_set()

    def beat(self) -> None:
        try:
            owned, cancel = store.heartbeat(self.database, self.job_id, self.worker_id)
        except Exception as exc:  # a busy or briefly unreachable database: try again next time
            log.warning("heartbeat of job %s failed: %s", self.job_id, exc)
            return
        if not owned:
            log.warning("job %s is no longer owned by %s; stopping", self.job_id, self.worker_id)
            self.lost.set()
        elif cancel:
            self.cancel.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()
