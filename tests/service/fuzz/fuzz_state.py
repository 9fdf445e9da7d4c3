"""State shared by the fuzz conftest and tests: the request counter and the seeded values."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FuzzStats:
    """Requests sent by the fuzz tests, in all and by status class."""

    requests: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    def record(self, status: int) -> None:
        self.requests += 1
        key = f"{status // 100}xx"
        self.by_status[key] = self.by_status.get(key, 0) + 1


STATS = FuzzStats()


@dataclass(frozen=True)
class Seeded:
    """What the fuzzed app holds before the first request, and the key that owns it."""

    key: str
    path_values: dict[str, list[str]]


#: Path-parameter values naming the current backend's seeded resources (set by its fixture),
#: which generated requests sometimes use in place of generated ones.
SEEDED_PATHS: dict[str, list[str]] = {}
