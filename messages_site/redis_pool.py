"""One Redis connection pool, and one client on it, per URL per process, for Django's Redis cache.

Django's cache handler is context-local, and under ASGI every request and every sync_to_async
call runs in a fresh context: each built its own RedisCache, with its own pool, and opened a
new TCP connection to Redis (a tenth of a server's time while sockets were connecting, in
bench/burst.py). With this pool class every one of them borrows from the same pool. Django's
cache client also builds a new `redis.Redis` for every operation (a few per cent of a send's
CPU: its constructor fills a table of response callbacks); `SharedClientRedisCache` reuses the
pool's one client, which is thread-safe.
"""

from __future__ import annotations

import threading
from functools import cached_property

import redis
from django.core.cache.backends.redis import RedisCache, RedisCacheClient


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

    @cached_property
    def client(self) -> redis.Redis:
        return redis.Redis(connection_pool=self)


class SharedClientRedisCacheClient(RedisCacheClient):
    def get_client(self, key=None, *, write=False) -> redis.Redis:
        pool = self._get_connection_pool(write)
        if isinstance(pool, SharedConnectionPool):
            return pool.client
        return super().get_client(key, write=write)


class SharedClientRedisCache(RedisCache):
    """Django's RedisCache, its operations on the pool's one client (OPTIONS pool_class:
    SharedConnectionPool)."""

    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = SharedClientRedisCacheClient
