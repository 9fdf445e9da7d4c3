"""The in-memory cache of loaded models, shared by every prediction route of an app.

Deserializing a model (rebuilding it from its spec and checking every array) costs far more
than a small prediction, so loaded models are kept in a bounded LRU. Keys name what was
loaded so that a reused database id can never serve a stale model: a version is keyed by
(id, created_at), since SQLite may hand a deleted row's id to the next insert; a job's
checkpoint by its row id, job and epoch. Deletes also evict explicitly.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from nn_core.model import Model as NNModel

#: ("version", id, created_at) or ("checkpoint", id, job id, epoch)
CacheKey = tuple[Any, ...]


def version_key(version_id: int, created_at: datetime) -> CacheKey:
    return ("version", version_id, created_at)


def checkpoint_key(checkpoint_id: int, job_id: str, epoch: int) -> CacheKey:
    return ("checkpoint", checkpoint_id, job_id, epoch)


class ModelCache:
    """A thread-safe LRU of loaded models, bounded by entry count and by parameter bytes."""

    def __init__(self, max_entries: int = 32, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[CacheKey, tuple[NNModel, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: CacheKey) -> NNModel | None:
        """The cached model for `key` (a hit), or None."""
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found[0]

    def get_or_load(self, key: CacheKey, loader: Callable[[], NNModel]) -> NNModel:
        """The cached model for `key`, else `loader()`'s (loaded outside the lock)."""
        model = self.get(key)
        if model is not None:
            return model
        with self._lock:
            self.misses += 1
        model = loader()
        self._put(key, model)
        return model

    def _put(self, key: CacheKey, model: NNModel) -> None:
        size = int(model.params.nbytes) + sum(b.nbytes for b in model.named_buffers().values())
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (model, size)
            self._bytes += size
            while len(self._entries) > 1 and (
                len(self._entries) > self.max_entries or self._bytes > self.max_bytes
            ):
                _, (_, evicted) = self._entries.popitem(last=False)
                self._bytes -= evicted

    def invalidate(self, version_ids: Iterable[int]) -> None:
        """Drop every entry of these version ids (after a delete)."""
        ids = set(version_ids)
        with self._lock:
            stale = [k for k in self._entries if k[0] == "version" and k[1] in ids]
            for key in stale:
                self._bytes -= self._entries.pop(key)[1]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
