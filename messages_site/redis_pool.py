"""One Redis connection pool per URL per process, for Django's Redis cache.

Django's cache handler is context-local, and under ASGI every request and every sync_to_async
call runs in a fresh context: each built its own RedisCache, with its own pool, and opened a
new TCP connection to Redis (a tenth of a server's time while sockets were connecting, in
bench/burst.py). With this pool class every one of them borrows from the same pool.
"""

from __future__ import annotations

import threading

import redis


class SharedConnectionPool(redis.ConnectionPool):
    _pools: dict[tuple, redis.ConnectionPool] = {}
    _lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs) -> redis.ConnectionPool:
        key = (url, repr(sorted(kwargs.items())))
        with cls._lock:
            pool = cls._pools.get(key)
            if pool is None:
                pool = cls._pools[key] = super().from_url(url, **kwargs)
            return pool
