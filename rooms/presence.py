"""Who is online: each open tab reports in; a person is online if any tab is active.

A tab's state is written when it opens, closes or changes (online/away), and each server
process rewrites all of its open tabs together every REFRESH_SECONDS, in one Redis round trip:
an idle tab sends nothing (live.js only reports a change of visibility) and costs no write. A
tab that vanishes without a goodbye (its process crashed) expires after TAB_TTL seconds.

Stored in Redis when REDIS_URL is set (every Daphne process sees every tab): one hash per person,
one field per tab, so that processes never overwrite each other's tabs. The embedded default
(one process) keeps a dict per person in its local-memory cache. While Redis is unreachable
presence is unknown: everyone shows offline and writes are dropped (with a logged warning);
pages, sockets and messages carry on.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import weakref
from collections.abc import Iterable
from typing import Literal

import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

from messages_site.redis_pool import SharedConnectionPool

log = logging.getLogger(__name__)

State = Literal["online", "away", "offline"]
# Each process rewrites its open tabs this often; an entry not rewritten for TAB_TTL is gone.
REFRESH_SECONDS = 60.0
TAB_TTL = 150
# Changes are announced to a room at most this often per server process, all in one frame: when
# many people connect at once (a restart, the morning), one frame per room carries them all,
# instead of one per person to every member of each of their rooms (the square of a room's size).
BATCH_SECONDS = 1.0

Tabs = dict[str, tuple[str, float]]  # tab (channel name) -> (state, expires at, a Unix time)
Entry = tuple[int, str, str | None]  # person, tab, state (None: the tab closed)


def _state_of(tabs: Tabs) -> State:
    now = time.time()
    live = [state for state, expires in tabs.values() if expires > now]
    if not live:
        return "offline"
    return "online" if "online" in live else "away"


# Stores ------------------------------------------------------------------------------------


class _LocalStore:
    """The embedded default's: one process, so its local-memory cache sees every tab."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def write(self, entries: list[Entry]) -> list[Tabs]:
        expires = time.time() + TAB_TTL
        befores = []
        with self._lock:
            for user_id, tab, state in entries:
                tabs = cache.get(_key(user_id)) or {}
                befores.append(dict(tabs))
                if state is None:
                    tabs.pop(tab, None)
                else:
                    tabs[tab] = (state, expires)
                cache.set(_key(user_id), tabs, TAB_TTL)
        return befores

    def read(self, user_ids: list[int]) -> dict[int, Tabs]:
        found = cache.get_many([_key(uid) for uid in user_ids])
        return {uid: found.get(_key(uid)) or {} for uid in user_ids}


class _RedisStore:
    def __init__(self, url: str) -> None:
        self._client = redis.Redis(connection_pool=SharedConnectionPool.from_url(url))

    def write(self, entries: list[Entry]) -> list[Tabs]:
        """Each entry's person's tabs as they were just before it; one round trip for all."""
        expires = time.time() + TAB_TTL
        # MULTI: each entry's read sees every earlier write, and no other process's in between.
        pipe = self._client.pipeline(transaction=True)
        for user_id, tab, state in entries:
            key = _redis_key(user_id)
            pipe.hgetall(key)
            if state is None:
                pipe.hdel(key, tab)
            else:
                pipe.hset(key, tab, f"{state} {expires}")
            pipe.expire(key, TAB_TTL)
        replies = pipe.execute()
        befores = [_parse(replies[3 * n]) for n in range(len(entries))]
        self._forget_expired(entries, befores)
        return befores

    def _forget_expired(self, entries: list[Entry], befores: list[Tabs]) -> None:
        """Drop the fields of tabs whose process died (rare): nothing else would."""
        now = time.time()
        gone = {
            (user_id, tab)
            for (user_id, _, _), tabs in zip(entries, befores, strict=True)
            for tab, (_, expires) in tabs.items()
            if expires <= now
        }
        if gone:
            pipe = self._client.pipeline(transaction=False)
            for user_id, tab in gone:
                pipe.hdel(_redis_key(user_id), tab)
            pipe.execute()

    def read(self, user_ids: list[int]) -> dict[int, Tabs]:
        pipe = self._client.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.hgetall(_redis_key(user_id))
        return {uid: _parse(reply) for uid, reply in zip(user_ids, pipe.execute(), strict=True)}


def _key(user_id: int) -> str:
    return f"presence:{user_id}"


def _redis_key(user_id: int) -> str:
    # Named as the cache names its keys, so that clearing the cache clears presence too.
    return cache.make_key(_key(user_id))


def _parse(reply: dict[bytes, bytes]) -> Tabs:
    tabs = {}
    for tab, value in reply.items():
        state, expires = value.decode().split()
        tabs[tab.decode()] = (state, float(expires))
    return tabs


@functools.cache
def _store_for(redis_url: str) -> _LocalStore | _RedisStore:
    return _RedisStore(redis_url) if redis_url else _LocalStore()


def _store() -> _LocalStore | _RedisStore:
    return _store_for(settings.REDIS_URL)


# Writing and reading -----------------------------------------------------------------------


def write(entries: list[Entry]) -> list[tuple[State, State]] | None:
    """Record tabs' states; each entry's person's (before, after), None if Redis is down."""
    try:
        befores = _store().write(entries)
    except RedisError as error:
        log.warning("Presence not recorded, Redis is unreachable: %s", error)
        return None
    outcomes = []
    for (_, tab, state), before in zip(entries, befores, strict=True):
        after = dict(before)
        if state is None:
            after.pop(tab, None)
        else:
            after[tab] = (state, time.time() + TAB_TTL)
        outcomes.append((_state_of(before), _state_of(after)))
    return outcomes


def report(user_id: int, tab: str, state: State | None) -> tuple[State, State]:
    """Record one tab's state (None: the tab closed); returns the person's (before, after)."""
    outcomes = write([(user_id, tab, state)])
    return outcomes[0] if outcomes else ("offline", "offline")


def _tabs(user_ids: list[int]) -> dict[int, Tabs] | None:
    """Each person's tabs as last reported; None while presence is unknown (Redis down)."""
    try:
        return _store().read(user_ids)
    except RedisError as error:
        log.warning("Presence unknown, Redis is unreachable: %s", error)
        return None


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


# This process's tabs -------------------------------------------------------------------------


class _Process:
    """What one server process (one event loop) does for presence between tabs' changes."""

    def __init__(self) -> None:
        # Open tabs here, with the state each last reported: rewritten every REFRESH_SECONDS.
        self.tabs: dict[str, tuple[int, State]] = {}
        self.refresher: asyncio.Task | None = None
        # Changes waiting to be announced: room -> {person id: state}.
        self.news: dict[int, dict[str, State]] = {}
        self.announcer: asyncio.Task | None = None


# One per event loop (a server process has one; tests start one per test).
_processes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Process] = (
    weakref.WeakKeyDictionary()
)


def _process() -> _Process:
    return _processes.setdefault(asyncio.get_running_loop(), _Process())


async def tab_changed(user_id: int, tab: str, state: State | None, room_ids: Iterable[int]) -> None:
    """A tab of this process opened, closed or changed state: record it now, keep it fresh
    while it stays open, and tell the members of `room_ids` if the person's state changed."""
    here = _process()
    if state is None:
        here.tabs.pop(tab, None)
    else:
        here.tabs[tab] = (user_id, state)
        if here.refresher is None:
            here.refresher = asyncio.get_running_loop().create_task(_refresh(here))
    # A thread, not the database one: Redis need not wait behind other tabs' database work.
    outcomes = await sync_to_async(write, thread_sensitive=False)([(user_id, tab, state)])
    if outcomes and outcomes[0][0] != outcomes[0][1]:
        await announce(user_id, outcomes[0][1], room_ids)


async def _refresh(here: _Process) -> None:
    try:
        while here.tabs:
            await asyncio.sleep(REFRESH_SECONDS)
            entries = [(user_id, tab, state) for tab, (user_id, state) in here.tabs.items()]
            try:
                if entries:
                    await sync_to_async(write, thread_sensitive=False)(entries)
                # A tab that closed while that write was on its way may have been written back.
                closed = [(uid, tab, None) for uid, tab, _ in entries if tab not in here.tabs]
                if closed:
                    await sync_to_async(write, thread_sensitive=False)(closed)
            except Exception:  # the next round tries again; the entries last TAB_TTL
                log.warning("Presence of this process's tabs not refreshed", exc_info=True)
    finally:
        here.refresher = None


async def announce(user_id: int, state: State, room_ids: Iterable[int]) -> None:
    """Tell the members of `room_ids` the person's new state, in the next batch."""
    here = _process()
    for room_id in room_ids:
        here.news.setdefault(room_id, {})[str(user_id)] = state
    if here.announcer is None and here.news:
        here.announcer = asyncio.get_running_loop().create_task(_announce_later(here))


async def _announce_later(here: _Process) -> None:
    from . import events

    await asyncio.sleep(BATCH_SECONDS)
    rooms, here.news, here.announcer = here.news, {}, None
    for room_id, changed in rooms.items():
        event: events.PresenceEvent = {"type": "presence", "states": changed}
        try:
            await events.fan_out(events.encode(event), room_id=room_id)
        except Exception:  # presence is news, not data: the next change or page load has it
            log.warning("Presence news for room %s not sent", room_id, exc_info=True)
