"""Rate limits per person and per IP address, counted in the cache (Redis in production).

Fixed windows: cheap (one INCR per check) and good enough to stop floods and guessing.

When Redis cannot be reached the limits are not enforced (fail open, with a logged warning),
as in other chat products: a Redis restart must not refuse every message and login. Each
check then costs at most one connect timeout.
"""

from __future__ import annotations

import functools
import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
# Counting must not hold a request up for long while Redis is away.
REDIS_TIMEOUT = 0.5


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        self.retry_after = max(1, retry_after)
        super().__init__(f"Slow down — try again in {self.retry_after} seconds.")


@functools.cache
def _redis():
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=REDIS_TIMEOUT,
        socket_timeout=REDIS_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )


def _incr_all(keys: list[str], period: int) -> list[int]:
    """Count one attempt on each key; with Redis one round trip for all of them."""
    if settings.REDIS_URL:
        pipe = _redis().pipeline(transaction=False)
        for key in keys:
            pipe.incr(key)
            pipe.expire(key, period + 1, nx=True)
        return pipe.execute()[::2]
    counts = []
    for key in keys:
        cache.add(key, 0, period + 1)
        try:
            counts.append(cache.incr(key))
        except ValueError:  # the key expired between add and incr
            cache.set(key, 1, period + 1)
            counts.append(1)
    return counts


def _peek_all(keys: list[str]) -> list[int]:
    if settings.REDIS_URL:
        return [int(value or 0) for value in _redis().mget(keys)]
    found = cache.get_many(keys)
    return [found.get(key, 0) for key in keys]


def _enforce(scope: str, limits: dict[str, int], period: int, *, peek: bool) -> None:
    now = time.time()
    window = int(now // period)
    keys = [f"rl:{scope}:{who}:{window}" for who in limits]
    try:
        counts = _peek_all(keys) if peek else _incr_all(keys, period)
    except RedisError as error:
        log.warning("Rate limit %r not checked, Redis is unreachable: %s", scope, error)
        return
    for count, limit_ in zip(counts, limits.values(), strict=True):
        # A peek asks "may one more go through?"; a counted attempt asks "was this one too many?".
        if count > limit_ or (peek and count >= limit_):
            raise RateLimited(int(period - (now % period)) + 1)


def forget_all() -> None:
    """Drop every counter (an operator lifting limits, or a test starting clean)."""
    if settings.REDIS_URL:
        keys = list(_redis().scan_iter(match="rl:*", count=1000))
        if keys:
            _redis().delete(*keys)
    else:
        cache.clear()


def client_ip(request: HttpRequest) -> str:
    # Behind a proxy, the server sets this from the proxy's X-Forwarded-For, and only from a
    # proxy it trusts (deploy/Procfile); it is never read from a header here.
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def check(scope: str, *, user_id: int | None = None, ip: str | None = None, peek: bool = False):
    """Count one attempt at `scope` (or, with peek, only check); raise RateLimited when over."""
    limit_, period = settings.RATE_LIMITS[scope]
    limits = {}
    if user_id is not None:
        limits[f"u{user_id}"] = limit_
    if ip is not None:
        limits[f"ip{ip}"] = limit_ * settings.RATE_LIMIT_IP_FACTOR
    _enforce(scope, limits, period, peek=peek)


def check_key(scope: str, who: str, *, peek: bool = False) -> None:
    """Like check, for a key of the caller's choosing (a username typed at login)."""
    limit_, period = settings.RATE_LIMITS[scope]
    _enforce(scope, {who: limit_}, period, peek=peek)


def limit(scope: str):
    """Limit a view's POSTs per signed-in person and per IP."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs):
            if request.method == "POST":
                user_id = request.user.pk if request.user.is_authenticated else None
                check(scope, user_id=user_id, ip=client_ip(request))
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
