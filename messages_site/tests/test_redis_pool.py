"""The Redis cache keeps its connections: requests and sync_to_async calls, each in a context of
its own under ASGI, share one pool and one client instead of opening a connection or building a
client each."""

from __future__ import annotations

import asyncio
import os

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache, caches

FALLBACK_REDIS_URL = "redis://127.0.0.1:6379/7"


@pytest.fixture
def redis_cache(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "messages_site.redis_pool.SharedClientRedisCache",
            "LOCATION": os.environ.get("REDIS_URL") or FALLBACK_REDIS_URL,
            "OPTIONS": {"pool_class": "messages_site.redis_pool.SharedConnectionPool"},
        }
    }
    yield
    cache.delete_many([f"pool-test-{n}" for n in range(20)])


def client_after_round_trip(n: int):
    cache.set(f"pool-test-{n}", n, 30)
    assert cache.get(f"pool-test-{n}") == n
    return caches["default"]._cache.get_client(write=True)


def test_calls_in_separate_contexts_share_one_pool_and_client(redis_cache):
    async def many_contexts():
        return await asyncio.gather(
            *(sync_to_async(client_after_round_trip, thread_sensitive=False)(n) for n in range(20))
        )

    clients = asyncio.run(many_contexts())
    assert len({id(client) for client in clients}) == 1
    pools = [client.connection_pool for client in clients]
    # Connections are only opened for calls in flight at once, then reused.
    assert len(pools[0]._available_connections) + len(pools[0]._in_use_connections) <= 20
