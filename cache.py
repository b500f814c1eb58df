"""What an app keeps for a while: in this process's memory and, with REDIS_URL, also in Redis,
where every process of the office finds it. One `Cache` per app (create_app registers it in
`app.extensions["salesdesk_cache"]`), so two apps of one process — the tests make many — never
read each other's figures or menus.

- `store(name)`: a named in-process dict (the dashboard's panels, the menu's HTML…), bounded:
  emptied when it reaches its limit; `get(key, seconds)` ignores an entry older than `seconds`.
- `get_shared(key)` / `put_shared(key, value, seconds)`: pickled values in Redis (None without
  REDIS_URL: the embedded mode's one process has its memory). A Redis that is away is logged and
  read as "nothing kept": the caller computes, as it would without it.
"""
from __future__ import annotations

import logging
import pickle
import threading
import time

from flask import current_app
from config import instance_name

log = logging.getLogger(__name__)

EXTENSION = "salesdesk_cache"
_MISSING = object()


class Store:
    """An in-process dict of key → (kept at, value), thread-safe, emptied when `limit` is reached."""

    def __init__(self, limit: int):
        self.limit = limit
        self.entries: dict = {}
        self.lock = threading.Lock()

    def get(self, key, seconds: float | None = None, default=None):
        """The value kept under `key`, if it was kept less than `seconds` ago (any age: None)."""
        hit = self.entries.get(key, _MISSING)
        if hit is _MISSING or (seconds is not None and time.monotonic() - hit[0] >= seconds):
            return default
        return hit[1]

    def put(self, key, value, kept_at: float | None = None) -> None:
        with self.lock:
            if len(self.entries) >= self.limit:
                self.entries.clear()
            self.entries[key] = (time.monotonic() if kept_at is None else kept_at, value)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()

    def __contains__(self, key) -> bool:
        return key in self.entries


class Cache:
    """An app's kept values (see the module's docstring)."""

    def __init__(self, config):
        self.config = config  # the app's: REDIS_URL is read when Redis is first needed
        self.stores: dict[str, Store] = {}
        self.lock = threading.Lock()
        self._redis = None

    def store(self, name: str, limit: int = 1000) -> Store:
        found = self.stores.get(name)
        if found is None:
            with self.lock:
                found = self.stores.setdefault(name, Store(limit))
        return found

    def redis(self):
        """The office's Redis (one client, kept), or None without REDIS_URL."""
        url = self.config.get("REDIS_URL")
        if not url:
            return None
        if self._redis is None or self._redis[0] != url:
            from redis import Redis
            self._redis = (url, Redis.from_url(url))
        return self._redis[1]

    @staticmethod
    def namespaced(key: str) -> str:
        """`key` under this office's name (config.instance_name): two offices sharing a Redis
        database keep their figures apart, as their queues are."""
        return f"{instance_name()}:{key}"

    def get_shared(self, key: str, what: str = "kept values"):
        """The value kept in Redis under `key`, or None (none kept, no Redis, Redis away)."""
        try:
            connection = self.redis()
            raw = connection.get(self.namespaced(key)) if connection is not None else None
            return pickle.loads(raw) if raw else None  # our own values, written by our own code
        except Exception:  # Redis away: the caller computes, as without it
            log.warning("%s could not be read from Redis", what, exc_info=True)
            return None

    def put_shared(self, key: str, value, seconds: int, what: str = "kept values") -> None:
        try:
            connection = self.redis()
            if connection is not None:
                connection.set(self.namespaced(key), pickle.dumps(value), ex=seconds)
        except Exception:
            log.warning("%s could not be kept in Redis", what, exc_info=True)


def init_app(app) -> Cache:
    kept = app.extensions[EXTENSION] = Cache(app.config)
    return kept


def current() -> Cache:
    """The current app's cache."""
    return current_app.extensions[EXTENSION]

