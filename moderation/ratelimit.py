"""Rate limits per person and per IP address, counted in the cache (Redis in production).

Fixed windows: cheap (one INCR per check) and good enough to stop floods and guessing.
"""

from __future__ import annotations

import functools
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        self.retry_after = max(1, retry_after)
        super().__init__(f"Slow down — try again in {self.retry_after} seconds.")


def _count(scope: str, who: str, limit: int, period: int, *, peek: bool = False) -> None:
    now = time.time()
    window = int(now // period)
    key = f"rl:{scope}:{who}:{window}"
    if peek:
        count = cache.get(key, 0)
    else:
        cache.add(key, 0, period + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # the key expired between add and incr
            cache.set(key, 1, period + 1)
            count = 1
    # A peek asks "may one more go through?"; a counted attempt asks "was this one too many?".
    if count > limit or (peek and count >= limit):
        raise RateLimited(int(period - (now % period)) + 1)


def client_ip(request: HttpRequest) -> str:
    # Behind a proxy, set the proxy to overwrite REMOTE_ADDR (never trust X-Forwarded-For here).
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def check(scope: str, *, user_id: int | None = None, ip: str | None = None, peek: bool = False):
    """Count one attempt at `scope` (or, with peek, only check); raise RateLimited when over."""
    limit, period = settings.RATE_LIMITS[scope]
    if user_id is not None:
        _count(scope, f"u{user_id}", limit, period, peek=peek)
    if ip is not None:
        _count(scope, f"ip{ip}", limit * settings.RATE_LIMIT_IP_FACTOR, period, peek=peek)


def check_key(scope: str, who: str, *, peek: bool = False) -> None:
    """Like check, for a key of the caller's choosing (a username typed at login)."""
    limit_, period = settings.RATE_LIMITS[scope]
    _count(scope, who, limit_, period, peek=peek)


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
