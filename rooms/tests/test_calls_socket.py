"""Calls over the websocket: seats, events, and signaling that reaches only the seat it is for."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async

from rooms.models import Call, CallParticipant, Message
from rooms.tests.test_live import connect, frames

pytestmark = pytest.mark.django_db(transaction=True)

OFFER = {"description": {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}}


async def calls_only(socket) -> list[dict]:
    """What the socket receives, less the chat messages a call posts (start, end)."""
    return [f for f in await frames(socket) if not f["type"].startswith("message.")]


async def start(socket, room, kind="video") -> dict:
    await socket.send_json_to({"type": "call.start", "room": room.pk, "kind": kind})
    return await welcome(socket)


async def join(socket, call_id) -> dict:
    await socket.send_json_to({"type": "call.join", "call": call_id})
    return await welcome(socket)


async def welcome(socket) -> dict:
    got = await frames(socket, until="call.welcome")
    assert got[-1]["type"] == "call.welcome", got
    return got[-1]


async def test_start_and_join_reach_members_and_seat_the_sockets(room, alice, bob, mallory):
    alice_tab, bob_tab, mallory_tab = (
        await connect(alice),
        await connect(bob),
        await connect(mallory),
    )
    mine = await start(alice_tab, room)
    assert mine["kind"] == "video" and [p["name"] for p in mine["participants"]] == ["Alice Adams"]
    started = await calls_only(bob_tab)
    assert [f["type"] for f in started] == ["call.started"]
    assert "Video call in progress" in started[0]["html"]
    theirs = await join(bob_tab, mine["call"])
    assert [p["name"] for p in theirs["participants"]] == ["Alice Adams", "Bob Jones"]
    joined = await calls_only(alice_tab)
    assert [f["type"] for f in joined] == ["call.started", "call.join"]
    assert joined[-1]["peer"] == theirs["peer"]
    assert await frames(mallory_tab) == []
    for tab in (alice_tab, bob_tab, mallory_tab):
        await tab.disconnect()


async def test_signal_reaches_only_its_target_seat(room, alice, bob, carol, mallory):
    alice_tab, bob_tab = await connect(alice), await connect(bob)
    carol_tab, mallory_tab = await connect(carol), await connect(mallory)
    mine = await start(alice_tab, room)
    theirs = await join(bob_tab, mine["call"])
    for tab in (alice_tab, bob_tab, carol_tab, mallory_tab):
        await frames(tab)
    await alice_tab.send_json_to(
        {"type": "call.signal", "call": mine["call"], "to": theirs["peer"], "data": OFFER}
    )
    assert await frames(bob_tab) == [
        {"type": "call.signal", "call": mine["call"], "peer": mine["peer"], "data": OFFER}
    ]
    # carol is a member who did not join; mallory is an outsider; alice sent it.
    assert await frames(carol_tab) == []
    assert await frames(mallory_tab) == []
    assert await frames(alice_tab) == []
    for tab in (alice_tab, bob_tab, carol_tab, mallory_tab):
        await tab.disconnect()


async def test_only_seated_sockets_can_signal(room, alice, bob, carol, mallory):
    alice_tab, bob_tab = await connect(alice), await connect(bob)
    mine = await start(alice_tab, room)
    theirs = await join(bob_tab, mine["call"])
    # Once the seated tabs have the call's news, the others connect after all of it.
    for tab in (alice_tab, bob_tab):
        await frames(tab)
    bob_other_tab = await connect(bob)  # bob, but not the tab that joined
    carol_tab, mallory_tab = await connect(carol), await connect(mallory)
    for sender in (carol_tab, mallory_tab, bob_other_tab):
        await sender.send_json_to(
            {"type": "call.signal", "call": mine["call"], "to": mine["peer"], "data": OFFER}
        )
        (reply,) = await frames(sender)
        assert reply["type"] == "error" and reply["frame"] == "call.signal"
        assert "not in that call" in reply["error"]
    assert await frames(alice_tab) == []
    assert await frames(bob_tab) == []
    # The outsider cannot join either, and hears nothing about the call existing.
    await mallory_tab.send_json_to({"type": "call.join", "call": mine["call"]})
    (reply,) = await frames(mallory_tab)
    assert reply == {"type": "error", "frame": "call.join", "error": "No such room or call."}
    assert theirs["peer"] != mine["peer"]
    for tab in (alice_tab, bob_tab, bob_other_tab, carol_tab, mallory_tab):
        await tab.disconnect()


@pytest.mark.parametrize(
    "frame, error",
    [
        ({"type": "call.start", "room": "1", "kind": "video"}, "needs room"),
        ({"type": "call.start", "room": 1}, "needs kind"),
        ({"type": "call.start", "room": 999999, "kind": "video"}, "No such room"),
        ({"type": "call.join", "call": True}, "needs call"),
        ({"type": "call.join", "call": 999999}, "No such room or call"),
        ({"type": "call.leave", "call": 999999}, "not in that call"),
        ({"type": "call.state", "call": 1, "muted": "yes"}, "true/false"),
        ({"type": "call.signal", "call": 1, "to": 5, "data": OFFER}, "needs to"),
        ({"type": "call.signal", "call": 1, "to": "x" * 40, "data": OFFER}, "needs to"),
        ({"type": "call.signal", "call": 1, "to": "abc", "data": "hi"}, "description"),
        ({"type": "call.signal", "call": 999999, "to": "abc", "data": OFFER}, "not in that call"),
        ({"type": "call.dance"}, "Unknown frame type"),
    ],
)
async def test_bad_call_frames_get_an_error_and_the_socket_stays_up(room, alice, frame, error):
    tab = await connect(alice)
    await tab.send_json_to(frame)
    (reply,) = await frames(tab)
    assert reply["type"] == "error" and error in reply["error"], reply
    await tab.send_json_to({"type": "ping"})
    assert await frames(tab) == [{"type": "pong"}]
    await tab.disconnect()


async def test_wrong_call_id_relays_nothing(room, alice, bob, carol):
    alice_tab, bob_tab = await connect(alice), await connect(bob)
    mine = await start(alice_tab, room)
    theirs = await join(bob_tab, mine["call"])
    other_room_call = await database_sync_to_async(
        lambda: (
            Call.objects.create(
                room=room.__class__.objects.create(
                    kind="group", title="Other", last_activity=room.created
                ),
                kind="voice",
                started_by=carol,
                started_at=room.created,
            ).pk
        )
    )()
    for tab in (alice_tab, bob_tab):
        await frames(tab)
    await alice_tab.send_json_to(
        {"type": "call.signal", "call": other_room_call, "to": theirs["peer"], "data": OFFER}
    )
    (reply,) = await frames(alice_tab)
    assert reply["type"] == "error"
    assert await frames(bob_tab) == []
    await alice_tab.disconnect()
    await bob_tab.disconnect()


async def test_oversized_signal_is_refused_and_not_relayed(room, alice, bob):
    alice_tab, bob_tab = await connect(alice), await connect(bob)
    mine = await start(alice_tab, room)
    theirs = await join(bob_tab, mine["call"])
    for tab in (alice_tab, bob_tab):
        await frames(tab)
    huge = {"description": {"type": "offer", "sdp": "a" * 70_000}}
    await alice_tab.send_to(
        text_data=json.dumps(
            {"type": "call.signal", "call": mine["call"], "to": theirs["peer"], "data": huge}
        )
    )
    (reply,) = await frames(alice_tab)
    assert reply["type"] == "error" and "64 KB" in reply["error"]
    assert await frames(bob_tab) == []
    await alice_tab.disconnect()
    await bob_tab.disconnect()


async def test_state_reaches_the_room_and_a_closed_socket_leaves(room, alice, bob):
    alice_tab, bob_tab = await connect(alice), await connect(bob)
    mine = await start(alice_tab, room)
    await join(bob_tab, mine["call"])
    await frames(alice_tab)
    state = {"muted": True, "camera": True, "screen": False, "recording": True}
    await alice_tab.send_json_to({"type": "call.state", "call": mine["call"], **state})
    (event,) = [f for f in await frames(bob_tab) if f["type"] == "call.state"]
    (alice_seat,) = [p for p in event["participants"] if p["peer"] == mine["peer"]]
    assert alice_seat["muted"] is True and alice_seat["recording"] is True
    assert "Recording" in event["html"]
    await alice_tab.disconnect()
    left = await calls_only(bob_tab)
    assert [f["type"] for f in left] == ["call.leave"]
    assert [p["name"] for p in left[0]["participants"]] == ["Bob Jones"]
    await bob_tab.send_json_to({"type": "call.leave", "call": mine["call"]})
    ended = await frames(bob_tab)
    assert [f["type"] for f in ended if f["type"].startswith("call.")] == ["call.ended"]
    texts = await database_sync_to_async(
        lambda: list(Message.objects.filter(room=room).values_list("body", flat=True))
    )()
    assert texts[-1].startswith("Call ended") and "with Alice Adams, Bob Jones" in texts[-1]
    seats = await database_sync_to_async(
        lambda: CallParticipant.objects.filter(left_at__isnull=True).count()
    )()
    assert seats == 0
    await bob_tab.disconnect()


async def test_seventh_socket_hears_the_call_is_full(room, alice):
    from conftest import befriend, make_person
    from rooms.actions import do_invite_member

    def people() -> list:
        made = []
        for n in range(6):
            person = make_person(f"p{n}", f"Person {n}")
            befriend(alice, person)
            do_invite_member(alice, room=room, user=person)
            made.append(person)
        return made

    guests = await database_sync_to_async(people)()
    host = await connect(alice)
    mine = await start(host, room)
    tabs = []
    for guest in guests[:5]:
        tabs.append(await connect(guest))
        await join(tabs[-1], mine["call"])
    seventh = await connect(guests[5])
    await seventh.send_json_to({"type": "call.join", "call": mine["call"]})
    replies = [f for f in await frames(seventh) if f["type"] == "error"]
    assert replies == [
        {
            "type": "error",
            "frame": "call.join",
            "error": "This call is full: at most 6 people can be in a call.",
        }
    ]
    for tab in (host, seventh, *tabs):
        await tab.disconnect()


async def test_a_flood_of_call_frames_is_cut_off_then_the_socket_recovers(room, alice, bob):
    alice_tab, bob_tab = await connect(alice), await connect(bob)
    mine = await start(alice_tab, room)
    theirs = await join(bob_tab, mine["call"])
    for tab in (alice_tab, bob_tab):
        await frames(tab)
    # Refused before any database work, so they arrive far faster than the bucket refills.
    junk = {"type": "call.signal", "call": mine["call"], "to": theirs["peer"], "data": "junk"}
    for _ in range(400):
        await alice_tab.send_json_to(junk)
    errors = [f["error"] for f in await frames(alice_tab)]
    assert len(errors) == 400
    flooded = [e for e in errors if e.startswith("Too many call frames")]
    assert 100 <= len(flooded) <= 200
    assert await frames(bob_tab) == []
    await asyncio.sleep(1)
    await alice_tab.send_json_to({**junk, "data": OFFER})
    assert [f["type"] for f in await frames(bob_tab)] == ["call.signal"]
    await alice_tab.disconnect()
    await bob_tab.disconnect()
