"""The websocket, end to end through the ASGI app: auth, origin, fan-out, removal, catch-up."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.models import Session

from conftest import client_for
from messages_site.asgi import application
from rooms.actions import do_delete_message, do_edit_message, do_remove_member, do_send_message

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://127.0.0.1")


async def connect(user=None, *, origin=ORIGIN) -> WebsocketCommunicator:
    headers = [origin] if origin else []
    if user is not None:
        session = await database_sync_to_async(
            lambda: client_for(user).cookies["sessionid"].value
        )()
        headers.append((b"cookie", f"sessionid={session}".encode()))
    socket = WebsocketCommunicator(application, "/ws/", headers=headers)
    connected, _ = await socket.connect()
    assert connected
    return socket


async def frames(
    socket: WebsocketCommunicator, *, until: str | None = None, presence: bool = False
) -> list[dict]:
    """Frames the socket receives until `until` arrives, or until it goes quiet.

    Presence frames (people coming and going) are left out unless asked for.
    """
    got = []
    while True:
        if await socket.receive_nothing(timeout=0.3 if until is None else 2):
            return got
        frame = json.loads(await socket.receive_from())
        if frame["type"] == "presence" and not presence:
            continue
        got.append(frame)
        if until is not None and frame["type"] == until:
            return got


send = database_sync_to_async(do_send_message)


async def test_anonymous_socket_is_refused(room):
    socket = WebsocketCommunicator(application, "/ws/", headers=[ORIGIN])
    connected, code = await socket.connect()
    assert not connected
    assert code == 4401


async def test_an_unknown_session_cookie_is_refused(room):
    socket = WebsocketCommunicator(
        application, "/ws/", headers=[ORIGIN, (b"cookie", b"sessionid=no-such-session")]
    )
    connected, code = await socket.connect()
    assert not connected
    assert code == 4401


async def test_a_socket_is_refused_once_the_password_changed_elsewhere(room, bob):
    session = await database_sync_to_async(lambda: client_for(bob).cookies["sessionid"].value)()

    def change_password() -> None:
        bob.set_password("a new password elsewhere")
        bob.save(update_fields=["password"])

    await database_sync_to_async(change_password)()
    socket = WebsocketCommunicator(
        application, "/ws/", headers=[ORIGIN, (b"cookie", f"sessionid={session}".encode())]
    )
    connected, code = await socket.connect()
    assert not connected
    assert code == 4401
    # As a page would: the stale session is gone, not just ignored.
    assert not await database_sync_to_async(Session.objects.filter(pk=session).exists)()


async def test_foreign_origin_is_refused(room, bob):
    session = await database_sync_to_async(lambda: client_for(bob).cookies["sessionid"].value)()
    socket = WebsocketCommunicator(
        application,
        "/ws/",
        headers=[
            (b"origin", b"https://evil.example"),
            (b"cookie", f"sessionid={session}".encode()),
        ],
    )
    connected, _ = await socket.connect()
    assert not connected


async def test_member_receives_new_messages_live(room, alice, bob):
    socket = await connect(bob)
    message = await send(alice, room=room, body="**live**")
    (frame,) = await frames(socket)
    assert frame["type"] == "message.new"
    assert frame["id"] == message.pk
    assert "<strong>live</strong>" in frame["html"]
    await socket.disconnect()


async def test_every_tab_of_a_member_receives_the_message(room, alice, bob):
    tabs = [await connect(bob), await connect(bob)]
    message = await send(alice, room=room, body="both tabs")
    for tab in tabs:
        assert [f["id"] for f in await frames(tab)] == [message.pk]
        await tab.disconnect()


async def test_outsider_socket_gets_nothing_from_the_room(room, alice, mallory):
    socket = await connect(mallory)
    await send(alice, room=room, body="members only")
    assert await frames(socket) == []
    await socket.disconnect()


async def test_removed_member_stops_receiving_room_events(room, alice, bob):
    socket = await connect(bob)
    await database_sync_to_async(do_remove_member)(alice, room=room, user=bob)
    assert [f["type"] for f in await frames(socket)] == ["room.removed"]
    await send(alice, room=room, body="after bob left")
    assert await frames(socket) == []
    await socket.disconnect()


async def test_edit_and_delete_arrive_as_changes(room, alice, bob):
    message = await send(bob, room=room, body="draft")
    socket = await connect(alice)
    await database_sync_to_async(do_edit_message)(bob, message=message, body="final")
    await database_sync_to_async(do_delete_message)(bob, message=message)
    edit, delete = await frames(socket)
    assert edit["type"] == delete["type"] == "message.changed"
    assert "final" in edit["html"]
    assert "This message was deleted" in delete["html"]
    await socket.disconnect()


async def test_reconnect_replays_exactly_the_missed_messages_in_order(room, alice, bob):
    seen = await send(alice, room=room, body="seen before the drop")
    socket = await connect(bob)
    await socket.disconnect()
    missed = [await send(alice, room=room, body=f"missed {i}") for i in range(5)]
    socket = await connect(bob)
    await socket.send_json_to({"type": "resume", "last_id": seen.pk})
    replay = await frames(socket, until="resume.done")
    assert [f["id"] for f in replay[:-1]] == [m.pk for m in missed]
    assert {f["type"] for f in replay[:-1]} == {"message.new"}
    assert replay[-1] == {"type": "resume.done", "truncated": False}
    await socket.disconnect()


async def test_resume_replays_edits_made_while_away(room, alice, bob):
    message = await send(alice, room=room, body="before")
    socket = await connect(bob)
    first = await frames(socket)
    assert first == []
    await socket.disconnect()
    from django.utils import timezone

    left_at = timezone.now().timestamp()
    await database_sync_to_async(do_edit_message)(alice, message=message, body="after")
    socket = await connect(bob)
    await socket.send_json_to({"type": "resume", "last_id": message.pk, "since": left_at})
    changed, done = await frames(socket, until="resume.done")
    assert changed["type"] == "message.changed" and "after" in changed["html"]
    assert done["type"] == "resume.done"
    await socket.disconnect()


async def test_replays_to_many_people_show_each_later_change(room, alice, bob, carol):
    from rooms.actions import do_toggle_reaction

    message = await send(alice, room=room, body="before")

    async def replay(person) -> str:
        socket = await connect(person)
        await socket.send_json_to({"type": "resume", "last_id": message.pk - 1, "since": 0})
        got = await frames(socket, until="resume.done")
        await socket.disconnect()
        return next(frame["html"] for frame in got if frame.get("id") == message.pk)

    first, second = await replay(bob), await replay(carol)
    assert first == second and "before" in first
    await database_sync_to_async(do_edit_message)(alice, message=message, body="after")
    assert "after" in await replay(bob)
    await database_sync_to_async(do_toggle_reaction)(carol, message=message, emoji="🎉")
    assert "🎉" in await replay(bob)


async def test_resume_never_replays_rooms_the_user_is_not_in(room, alice, mallory):
    await send(alice, room=room, body="members only")
    socket = await connect(mallory)
    await socket.send_json_to({"type": "resume", "last_id": 0, "since": 0})
    assert await frames(socket, until="resume.done") == [
        {"type": "resume.done", "truncated": False}
    ]
    await socket.disconnect()


async def test_resume_beyond_the_replay_limit_says_truncated(room, alice, bob, settings):
    settings.CATCH_UP_LIMIT = 3
    for i in range(5):
        await send(alice, room=room, body=f"m{i}")
    socket = await connect(bob)
    await socket.send_json_to({"type": "resume", "last_id": 0})
    replay = await frames(socket, until="resume.done")
    assert len(replay) == 4
    assert replay[-1] == {"type": "resume.done", "truncated": True}
    await socket.disconnect()


@pytest.mark.parametrize(
    "raw, error",
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"type": "dance"}', "Unknown frame type"),
        ('{"no": "type"}', "Unknown frame type"),
        ('{"type": "resume", "last_id": "7"}', "last_id"),
        ('{"type": "resume", "last_id": -1}', "last_id"),
        ('{"type": "resume", "last_id": true}', "last_id"),
        ('{"type": "resume", "last_id": 100000000000000000000000}', "last_id"),
        ('{"type": "resume", "last_id": 1, "since": "yesterday"}', "since"),
        ('{"type": "resume", "last_id": 1, "since": 1e300}', "since"),
        ("x" * 70_000, "64 KB"),
    ],
)
async def test_malformed_frames_get_an_error_and_socket_stays_up(room, alice, bob, raw, error):
    socket = await connect(bob)
    await frames(socket)
    await socket.send_to(text_data=raw)
    (reply,) = await frames(socket)
    assert reply["type"] == "error"
    assert error in reply["error"]
    await socket.send_json_to({"type": "ping"})
    assert await frames(socket) == [{"type": "pong"}]
    await send(alice, room=room, body="still live")
    assert [f["type"] for f in await frames(socket)] == ["message.new"]
    await socket.disconnect()


async def test_binary_frame_gets_an_error(room, bob):
    socket = await connect(bob)
    await frames(socket)
    await socket.send_to(bytes_data=b"\x00\x01")
    (reply,) = await frames(socket)
    assert reply["type"] == "error"
    await socket.disconnect()


async def test_typing_reaches_other_members_only(room, alice, bob, mallory):
    alice_socket, bob_socket, mallory_socket = [await connect(p) for p in (alice, bob, mallory)]
    await bob_socket.send_json_to({"type": "typing", "room": room.pk})
    (typing,) = await frames(alice_socket)
    assert typing == {"type": "typing", "room": room.pk, "user": bob.pk, "name": "Bob Jones"}
    assert await frames(bob_socket) == []
    assert await frames(mallory_socket) == []
    for socket in (alice_socket, bob_socket, mallory_socket):
        await socket.disconnect()


async def test_typing_is_throttled(room, alice, bob):
    alice_socket, bob_socket = await connect(alice), await connect(bob)
    for _ in range(5):
        await bob_socket.send_json_to({"type": "typing", "room": room.pk})
    assert len(await frames(alice_socket)) == 1
    await alice_socket.disconnect()
    await bob_socket.disconnect()


@pytest.mark.parametrize("room_value", ["1", None, -5, True, 10**30])
async def test_bad_typing_frame_gets_an_error(room, bob, room_value):
    socket = await connect(bob)
    await frames(socket)
    await socket.send_json_to({"type": "typing", "room": room_value})
    (reply,) = await frames(socket)
    assert reply["type"] == "error"
    await socket.disconnect()


async def test_typing_in_a_room_you_are_not_in_is_refused(room, alice, mallory):
    alice_socket, mallory_socket = await connect(alice), await connect(mallory)
    await mallory_socket.send_json_to({"type": "typing", "room": room.pk})
    assert (await frames(mallory_socket))[0]["error"] == "No such room."
    assert await frames(alice_socket) == []
    await alice_socket.disconnect()
    await mallory_socket.disconnect()


@pytest.fixture
def quick_presence(monkeypatch):
    from django.core.cache import cache

    from rooms import presence

    cache.clear()
    monkeypatch.setattr(presence, "BATCH_SECONDS", 0.05)


async def test_presence_goes_online_away_and_offline(room, alice, bob, mallory, quick_presence):
    alice_socket = await connect(alice)
    mallory_socket = await connect(mallory)
    await frames(alice_socket, presence=True)
    bob_socket = await connect(bob)
    assert await frames(alice_socket, presence=True) == [
        {"type": "presence", "states": {str(bob.pk): "online"}}
    ]
    await bob_socket.send_json_to({"type": "ping", "away": True})
    assert await frames(alice_socket, presence=True) == [
        {"type": "presence", "states": {str(bob.pk): "away"}}
    ]
    await bob_socket.disconnect()
    assert await frames(alice_socket, presence=True) == [
        {"type": "presence", "states": {str(bob.pk): "offline"}}
    ]
    assert await frames(mallory_socket, presence=True) == []
    await alice_socket.disconnect()
    await mallory_socket.disconnect()


async def test_people_arriving_together_are_announced_in_one_frame(
    room, alice, bob, carol, quick_presence, monkeypatch
):
    from rooms import presence

    alice_socket = await connect(alice)
    await frames(alice_socket, presence=True)
    monkeypatch.setattr(presence, "BATCH_SECONDS", 1.0)
    bob_socket, carol_socket = await connect(bob), await connect(carol)
    assert await frames(alice_socket, presence=True, until="presence") == [
        {"type": "presence", "states": {str(bob.pk): "online", str(carol.pk): "online"}}
    ]
    assert await frames(alice_socket, presence=True) == []
    for socket in (alice_socket, bob_socket, carol_socket):
        await socket.disconnect()


async def test_heartbeat_that_changes_nothing_announces_nothing(room, alice, bob, quick_presence):
    from rooms import presence

    alice_socket, bob_socket = await connect(alice), await connect(bob)
    await frames(alice_socket, presence=True)
    await frames(bob_socket, presence=True)
    await bob_socket.send_json_to({"type": "ping", "away": False})
    assert await frames(bob_socket, presence=True) == [{"type": "pong"}]
    assert await frames(alice_socket, presence=True) == []
    states = await database_sync_to_async(presence.states)([alice.pk, bob.pk])
    assert states == {alice.pk: "online", bob.pk: "online"}
    await alice_socket.disconnect()
    await bob_socket.disconnect()


async def test_an_open_tab_stays_online_without_heartbeats(
    room, alice, bob, quick_presence, monkeypatch
):
    """Its server process rewrites it before it expires; closing it takes the person offline."""
    from rooms import presence

    monkeypatch.setattr(presence, "TAB_TTL", 1)
    monkeypatch.setattr(presence, "REFRESH_SECONDS", 0.2)
    states = database_sync_to_async(presence.states)
    bob_socket = await connect(bob)
    await asyncio.sleep(2.5)  # two and a half lifetimes of an entry, and not a frame from bob
    assert await states([bob.pk]) == {bob.pk: "online"}
    await bob_socket.disconnect()
    assert await states([bob.pk]) == {bob.pk: "offline"}


async def test_a_tab_whose_process_died_expires(room, alice, bob, quick_presence, monkeypatch):
    from rooms import presence

    monkeypatch.setattr(presence, "TAB_TTL", 1)
    report = database_sync_to_async(presence.report)
    assert await report(bob.pk, "tab.of.a.dead.process", "online") == ("offline", "online")
    assert await database_sync_to_async(presence.states)([bob.pk]) == {bob.pk: "online"}
    await asyncio.sleep(1.2)
    assert await database_sync_to_async(presence.states)([bob.pk]) == {bob.pk: "offline"}
    assert await database_sync_to_async(presence.live_tabs)([bob.pk]) == {bob.pk: set()}


async def test_two_tabs_of_one_person_on_two_processes_keep_each_other(room, bob, quick_presence):
    """Each tab is its own entry: one tab closing leaves the other, whichever process it is on."""
    from rooms import presence

    report = database_sync_to_async(presence.report)
    assert await report(bob.pk, "process-1.tab", "away") == ("offline", "away")
    assert await report(bob.pk, "process-2.tab", "online") == ("away", "online")
    assert await report(bob.pk, "process-1.tab", None) == ("online", "online")
    live = await database_sync_to_async(presence.live_tabs)([bob.pk])
    assert live == {bob.pk: {"process-2.tab"}}


async def test_sockets_of_one_room_keep_receiving_as_others_come_and_go(room, alice, bob, carol):
    """A server process hears a room once for all its sockets there (rooms/room_hub.py): one
    socket closing leaves the others listening, and the room is heard again after the last."""
    alice_socket, bob_socket = await connect(alice), await connect(bob)
    await alice_socket.disconnect()
    await send(carol, room=room, body="one left")
    assert [f["type"] for f in await frames(bob_socket)] == ["message.new"]
    await bob_socket.disconnect()
    carol_socket = await connect(carol)  # nobody of this process was in the room a moment ago
    message = await send(alice, room=room, body="heard again")
    assert [f["id"] for f in await frames(carol_socket)] == [message.pk]
    await carol_socket.disconnect()


async def test_a_frame_caused_by_a_socket_s_own_request_follows_the_reply(room, alice, bob):
    """The reply to a frame (here a call's welcome) comes before the room's news about it."""
    alice_socket = await connect(alice)
    await alice_socket.send_json_to({"type": "call.start", "room": room.pk, "kind": "voice"})
    got = [f["type"] for f in await frames(alice_socket) if not f["type"].startswith("message.")]
    assert got == ["call.welcome", "call.started"]
    await alice_socket.disconnect()
