"""Per-key prediction rate limit: an in-memory token bucket per API key.

Each key may burst up to `per_minute` requests and then refills at per_minute/60 tokens a
second. In-memory means per process: with several API processes the effective limit is that
many times higher, which is acceptable for protecting CPU (each process has its own CPU
budget); a shared limit would need Redis.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from service.auth import Principal, PrincipalDep
from service.errors import RateLimited

#: Forget buckets idle long enough to be full again, once this many keys are tracked.
_PRUNE_AT = 10_000


class TokenBucketLimiter:
    """Thread-safe token buckets keyed by API key id; 0 per minute means unlimited."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[int, tuple[float, float]] = {}  # key -> (tokens, last time)
        self._lock = threading.Lock()

    def acquire(self, key: int) -> float:
        """Take one token; returns 0.0, or the seconds to wait when the bucket is empty."""
        if self.capacity <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > _PRUNE_AT:
                self._prune(now)
        return 0.0

    def _prune(self, now: float) -> None:
        refill = self.capacity / self.rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < refill}


async def get_limiter(request: Request) -> TokenBucketLimiter:
    limiter: TokenBucketLimiter = request.app.state.predict_limiter
    return limiter


async def limit_predictions(
    principal: PrincipalDep, limiter: Annotated[TokenBucketLimiter, Depends(get_limiter)]
) -> Principal:
    """FastAPI dependency for prediction routes: the caller, or 429 with Retry-After."""
    wait = limiter.acquire(principal.key_id)
    if wait > 0:
        per_minute = int(limiter.capacity)
        raise RateLimited(
            f"prediction rate limit of {per_minute} requests per minute exceeded for this key; "
            f"retry in {wait:.1f} s",
            retry_after_seconds=max(1, math.ceil(wait)),
        )
    return principal


PredictPrincipalDep = Annotated[Principal, Depends(limit_predictions)]
