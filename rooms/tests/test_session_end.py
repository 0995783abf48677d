"""A tab's socket lives as long as its session: when the session ends while the tab is open,
the tab is told and its socket closes (a page load would show the sign-in page by then)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone

from conftest import client_for
from messages_site.asgi import application
from rooms.actions import do_send_message
from rooms.tests.test_live import ORIGIN, connect, frames

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def signed_in(user, *, ends_in: float) -> str:
    """A new session of `user` that ends `ends_in` seconds from now; its key."""
    key = client_for(user).cookies[settings.SESSION_COOKIE_NAME].value
    ends(key, in_seconds=ends_in)
    return key


def ends(session_key: str, *, in_seconds: float) -> None:
    """The session as a save moves it: stored to end `in_seconds` from now."""
    end = timezone.now() + timedelta(seconds=in_seconds)
    Session.objects.filter(session_key=session_key).update(expire_date=end)


async def open_tab(session_key: str) -> WebsocketCommunicator:
    cookie = (b"cookie", f"{settings.SESSION_COOKIE_NAME}={session_key}".encode())
    tab = WebsocketCommunicator(application, "/ws/", headers=[ORIGIN, cookie])
    connected, _ = await tab.connect()
    assert connected
    return tab


async def ended(tab, timeout: float) -> bool:
    """The tab is told its session ended (after any presence news), then closed."""
    frame = await tab.receive_json_from(timeout=timeout)
    while frame["type"] == "presence":
        frame = await tab.receive_json_from(timeout=timeout)
    assert frame == {"type": "session.ended"}
    return (await tab.receive_output(timeout=5))["code"] == 4403


async def test_a_tab_closes_when_its_session_ends(alice, bob, room):
    bobs = await connect(bob)
    alices = await open_tab(await signed_in(alice, ends_in=1.0))
    assert await ended(alices, timeout=5)
    # Bob's session goes on, and so does his tab.
    await database_sync_to_async(do_send_message)(bob, room=room, body="still here?")
    assert "message.new" in [f["type"] for f in await frames(bobs)]
    await bobs.disconnect()


async def test_a_session_saved_again_keeps_its_tab_open(alice, room):
    key = await signed_in(alice, ends_in=1.0)
    alices = await open_tab(key)
    # Before its end comes, the session is saved again (a request that changed it): it now
    # ends later, and the tab stays open past the end it had.
    await database_sync_to_async(ends)(key, in_seconds=60.0)
    await asyncio.sleep(2.0)
    await database_sync_to_async(do_send_message)(alice, room=room, body="still here")
    assert [f["type"] for f in await frames(alices)] == ["message.new"]
    await alices.disconnect()


async def test_a_tab_whose_session_was_deleted_closes_when_it_would_have_ended(alice):
    key = await signed_in(alice, ends_in=1.0)
    alices = await open_tab(key)
    await database_sync_to_async(Session.objects.filter(session_key=key).delete)()
    assert await ended(alices, timeout=5)


async def test_a_session_that_cannot_be_looked_up_is_asked_for_again(alice, monkeypatch):
    from django.db import OperationalError

    from accounts.sessions import session_expiry
    from rooms import consumers

    asked = []

    def database_away_once(session_key: str):
        asked.append(session_key)
        if len(asked) == 1:
            raise OperationalError("the database is restarting")
        return session_expiry(session_key)

    monkeypatch.setattr(consumers, "session_expiry", database_away_once)
    monkeypatch.setattr(consumers, "SESSION_RETRY", timedelta(seconds=0.5))
    key = await signed_in(alice, ends_in=0.5)
    alices = await open_tab(key)
    assert await ended(alices, timeout=5)
    assert asked == [key, key]
