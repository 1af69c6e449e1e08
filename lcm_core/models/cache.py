"""Loaded models, kept by (resolved path, modification time, size, options).

A second load of an unchanged file with the same options returns the same handles
without touching the file's contents (only `stat` is called). Handles are immutable, so
sharing them between graph nodes is safe. The cache holds the most recent
`LCM_MODEL_CACHE_SIZE` loads (default 2); `clear()` drops them all.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Hashable


def signature(path: Path) -> tuple[int, int]:
    """(latest mtime in ns, total size) of a file, or of every file under a folder."""
    if path.is_dir():
        stats = [p.stat() for p in path.rglob("*") if p.is_file()]
        return (max((s.st_mtime_ns for s in stats), default=0), sum(s.st_size for s in stats))
    st = path.stat()
    return (st.st_mtime_ns, st.st_size)


class ModelCache:
    """A small LRU of loaded models with hit/miss counters."""

    def __init__(self, capacity: int | None = None):
        self.capacity = capacity if capacity is not None else int(os.environ.get("LCM_MODEL_CACHE_SIZE", "2"))
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any:
        """The cached value or None (counts a hit or a miss)."""
        if key in self._items:
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key]
        self.misses += 1
        return None

    def put(self, key: Hashable, value: Any) -> None:
        """Keep `value`, dropping the least recently used entries beyond capacity."""
        if self.capacity <= 0:
            return
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget every cached model."""
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


MODELS = ModelCache()
