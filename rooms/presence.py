"""Who is online: each open tab reports in; a person is online if any tab is active.

Kept in the cache (Redis in production, so every Daphne process sees every tab). A tab that
vanishes without a goodbye (a crashed process) expires after TAB_TTL seconds without a ping.
While Redis is unreachable presence is unknown: everyone shows offline and reports are
dropped (with a logged warning); pages, sockets and messages carry on.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Iterable
from typing import Literal

from django.core.cache import cache
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

State = Literal["online", "away", "offline"]
TAB_TTL = 90
# A tab's heartbeat that changes nothing rewrites its entry only this long after the last write,
# well before TAB_TTL runs out (live.js pings every 30 s; a hidden tab's timers may slow to 60 s).
REFRESH_AFTER = TAB_TTL / 2
# Changes are announced to a room at most this often per server process, all in one frame: when
# many people connect at once (a restart, the morning), one frame per room carries them all,
# instead of one per person to every member of each of their rooms (the square of a room's size).
BATCH_SECONDS = 1.0


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


def _tabs(user_ids: list[int]) -> dict[int, dict[str, tuple[str, float]]] | None:
    """Each person's tabs as last reported; None while presence is unknown (Redis down)."""
    try:
        found = cache.get_many([_key(uid) for uid in user_ids])
    except RedisError as error:
        log.warning("Presence unknown, Redis is unreachable: %s", error)
        return None
    return {uid: found.get(_key(uid)) or {} for uid in user_ids}


def states(user_ids: list[int]) -> dict[int, State]:
    tabs = _tabs(user_ids) or {}
    return {uid: _state_of(tabs.get(uid, {})) for uid in user_ids}


def live_tabs(user_ids: list[int]) -> dict[int, set[str]] | None:
    """The open tabs (channel names) that still report in, per person; None while presence
    is unknown (Redis unreachable), when nobody should be taken for gone."""
    tabs = _tabs(user_ids)
    if tabs is None:
        return None
    now = time.time()
    return {
        uid: {tab for tab, (_, expires) in entries.items() if expires > now}
        for uid, entries in tabs.items()
    }


class _Batch:
    def __init__(self) -> None:
        self.rooms: dict[int, dict[str, State]] = {}
        self.flush: asyncio.Task | None = None


# One batch per event loop (a server process has one; tests start one per test).
_batches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batch] = weakref.WeakKeyDictionary()


async def announce(user_id: int, state: State, room_ids: Iterable[int]) -> None:
    """Tell the members of `room_ids` the person's new state, in the next batch."""
    loop = asyncio.get_running_loop()
    batch = _batches.setdefault(loop, _Batch())
    for room_id in room_ids:
        batch.rooms.setdefault(room_id, {})[str(user_id)] = state
    if batch.flush is None and batch.rooms:
        batch.flush = loop.create_task(_send_later(batch))


async def _send_later(batch: _Batch) -> None:
    from . import events

    await asyncio.sleep(BATCH_SECONDS)
    rooms, batch.rooms, batch.flush = batch.rooms, {}, None
    for room_id, states in rooms.items():
        event: events.PresenceEvent = {"type": "presence", "states": states}
        try:
            await events.fan_out(events.encode(event), room_id=room_id)
        except Exception:  # presence is news, not data: the next change or page load has it
            log.warning("Presence news for room %s not sent", room_id, exc_info=True)
