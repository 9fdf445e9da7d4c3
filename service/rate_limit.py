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

from service.auth import (
    ApiKeyHeaderDep,
    BearerDep,
    Principal,
    current_principal,
    request_principal,
)
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

    def acquire(self, key: int, count: float = 1.0) -> float:
        """Take `count` tokens; returns 0.0, or the seconds to wait when there are too few
        (then nothing is taken)."""
        if self.capacity <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < count:
                self._buckets[key] = (tokens, now)
                return (count - tokens) / self.rate
            self._buckets[key] = (tokens - count, now)
            if len(self._buckets) > _PRUNE_AT:
                self._prune(now)
        return 0.0

    def _prune(self, now: float) -> None:
        refill = self.capacity / self.rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < refill}


async def get_limiter(request: Request) -> TokenBucketLimiter:
    limiter: TokenBucketLimiter = request.app.state.predict_limiter
    return limiter


LimiterDep = Annotated[TokenBucketLimiter, Depends(get_limiter)]


async def limit_predictions(
    request: Request, bearer: BearerDep, api_key: ApiKeyHeaderDep
) -> Principal:
    """FastAPI dependency for prediction routes: the caller, or 429 with Retry-After.

    It authenticates itself (current_principal's work) with the limiter from app.state:
    prediction routes are the hot path, and every dependency FastAPI solves costs time."""
    principal = await current_principal(request, bearer, api_key)
    charge(request.app.state.predict_limiter, principal, 1)
    return principal


async def charge_caller(request: Request) -> Principal:
    """limit_predictions for a route that takes no dependencies (see request_principal)."""
    principal = await request_principal(request)
    charge(request.app.state.predict_limiter, principal, 1)
    return principal


def charge(
    limiter: TokenBucketLimiter, principal: Principal, count: int, already_paid: int = 0
) -> None:
    """Make a request that does the work of `count` predictions (e.g. a batch of images) pay
    for each: take what it has not `already_paid`, or 429 with Retry-After."""
    if count <= already_paid:
        return
    per_minute = int(limiter.capacity)
    if 0 < per_minute < count:
        raise RateLimited(
            f"this request counts as {count} predictions, more than this key's limit of "
            f"{per_minute} per minute; send at most {per_minute} at once",
            retry_after_seconds=60,
        )
    wait = limiter.acquire(principal.key_id, float(count - already_paid))
    if wait > 0:
        raise RateLimited(
            f"prediction rate limit of {per_minute} requests per minute exceeded for this key; "
            f"retry in {wait:.1f} s",
            retry_after_seconds=max(1, math.ceil(wait)),
        )


PredictPrincipalDep = Annotated[Principal, Depends(limit_predictions)]
