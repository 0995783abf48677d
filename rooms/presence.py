"""Who is online: each open tab reports in; a person is online if any tab is active.

Kept in the cache (Redis in production, so every Daphne process sees every tab). A tab that
vanishes without a goodbye (a crashed process) expires after TAB_TTL seconds without a ping.
While Redis is unreachable presence is unknown: everyone shows offline and reports are
dropped (with a logged warning); pages, sockets and messages carry on.
"""

from __future__ import annotations

import logging
import time
from typing import Literal

from django.core.cache import cache
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

State = Literal["online", "away", "offline"]
TAB_TTL = 90


def _key(user_id: int) -> str:
    return f"presence:{user_id}"


def _state_of(tabs: dict[str, tuple[str, float]]) -> State:
    now = time.time()
    live = [state for state, expires in tabs.values() if expires > now]
    if not live:
        return "offline"
    return "online" if "online" in live else "away"


def report(user_id: int, tab: str, state: State | None) -> tuple[State, State]:
    """Record one tab's state (None: the tab closed); returns the person's (before, after)."""
    key = _key(user_id)
    try:
        tabs: dict[str, tuple[str, float]] = cache.get(key) or {}
    except RedisError as error:
        log.warning("Presence of %s not recorded, Redis is unreachable: %s", user_id, error)
        return "offline", "offline"
    before = _state_of(tabs)
    now = time.time()
    tabs = {name: value for name, value in tabs.items() if value[1] > now}
    if state is None:
        tabs.pop(tab, None)
    else:
        tabs[tab] = (state, now + TAB_TTL)
    try:
        cache.set(key, tabs, TAB_TTL)
    except RedisError as error:
        log.warning("Presence of %s not recorded, Redis is unreachable: %s", user_id, error)
        return before, before
    return before, _state_of(tabs)


def states(user_ids: list[int]) -> dict[int, State]:
    try:
        found = cache.get_many([_key(uid) for uid in user_ids])
    except RedisError as error:
        log.warning("Presence unknown, Redis is unreachable: %s", error)
        found = {}
    return {uid: _state_of(found.get(_key(uid)) or {}) for uid in user_ids}
