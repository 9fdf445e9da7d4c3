"""Waiting on a condition with a deadline, and the process conditions tests wait on.

Tests never sleep a fixed time and then assert: they wait until something observable holds
(a process has exited, a job row is terminal, a log line is written), failing with `what`
when it does not within `timeout`. To show that something does NOT happen, first wait for
the positive condition that rules it out (e.g. the process that could write is gone), then
assert the negative at once.

(tests/ is on sys.path through tests/conftest.py, so every test module can import this.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

#: How often a condition is checked: a poll interval, not a wait for anything.
POLL_SECONDS = 0.05


def wait_until(condition: Callable[[], T], timeout: float = 30, what: str = "") -> T:
    """Check `condition` until it returns something truthy (returned) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(POLL_SECONDS)
    return value


async def until(condition: Callable[[], T], timeout: float = 30, what: str = "") -> T:
    """`wait_until` for async tests: the event loop keeps running between checks."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        await asyncio.sleep(POLL_SECONDS)
    return value


def _proc_status(pid: int) -> dict[str, str] | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def process_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, waiting for its parent to reap it, counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = _proc_status(pid)
    return status is not None and not status.get("State", "").startswith("Z")


#: The kernel's per-task flag "getting shut down" (include/linux/sched.h).
PF_EXITING = 0x4


def _exiting(pid: int) -> bool:
    """Whether the process has begun to exit (flags, field 9 of /proc/<pid>/stat)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    fields = text.rsplit(")", 1)[-1].split()  # after "pid (comm)": state is field 3
    return bool(int(fields[6]) & PF_EXITING)


def _pending(status: dict[str, str], signum: int) -> bool:
    """Whether `signum` was sent but not acted on (a stopped process acts on nothing but
    SIGKILL until it is continued). SigPnd: pending for the thread; ShdPnd: for the whole
    process, which kill() targets."""
    bit = 1 << (signum - 1)
    return any(int(status.get(field, "0"), 16) & bit for field in ("SigPnd", "ShdPnd"))


class ProcessWatch:
    """Records, from a thread checking every 10 ms, the states a process goes through until it
    is gone: "running", "stopped", "stopped, SIGTERM pending", "gone" (each change once).

    A thread, not the test's event loop: the loop may be busy in a request that waits on the
    watched process (e.g. for a row lock it holds), and the states can last only moments.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.states: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{pid}", daemon=True)

    def _state(self) -> str:
        status = _proc_status(self.pid)  # one snapshot: the process may change between reads
        if status is None or status.get("State", "Z").startswith(("Z", "X")):
            return "gone"
        # SIGKILL wakes a stopped process for the instant it takes to die: that is its end,
        # not running again.
        if _pending(status, signal.SIGKILL) or _exiting(self.pid):
            return "gone"
        if not status["State"].startswith("T"):
            return "running"
        return "stopped, SIGTERM pending" if _pending(status, signal.SIGTERM) else "stopped"

    def _run(self) -> None:
        while not self._stop.is_set():
            state = self._state()
            if not self.states or self.states[-1] != state:
                self.states.append(state)
            if state == "gone":
                return
            self._stop.wait(0.01)

    def __enter__(self) -> ProcessWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def wait_gone(self, timeout: float = 30) -> list[str]:
        """Wait until the process is gone; returns the states it went through."""
        self._thread.join(timeout)
        assert self.states[-1:] == ["gone"], f"still {self.states} after {timeout:g} s"
        return self.states
