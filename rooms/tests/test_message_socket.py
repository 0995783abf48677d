"""Sending a message over the tab's websocket (message.send): stored once, answered before the
room's frame, and refused with the HTTP endpoint's status and reason, nothing stored. A tab
whose session signs out is closed: its socket sends nothing more."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.models import User
from conftest import befriend, client_for
from messages_site.asgi import application
from moderation.actions import do_block_user
from moderation.ratelimit import forget_all
from rooms.actions import do_archive_room, do_open_direct
from rooms.formatting import MAX_MESSAGE_LENGTH
from rooms.models import Message
from rooms.tests.test_live import ORIGIN, connect, frames

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "5b0e2c1a-socket-token"


def send_frame(room_id, body="Hello", *, token=TOKEN, **extra) -> dict:
    return {"type": "message.send", "room": room_id, "body": body, "client_token": token, **extra}


@database_sync_to_async
def stored(room) -> list[tuple[int, str]]:
    return list(Message.objects.filter(room=room).order_by("pk").values_list("sender_id", "body"))


async def answer(socket) -> dict:
    """The socket's answer to its message.send, the frames before it passed over."""
    while True:
        frame = await socket.receive_json_from(timeout=5)
        if frame["type"] in ("message.sent", "message.refused", "error"):
            return frame


async def test_a_sent_message_is_stored_and_answered_before_the_room_hears(room, alice, bob):
    bobs, alices = await connect(bob), await connect(alice)
    await bobs.send_json_to(send_frame(room.pk, "**Hi** all"))
    got = await frames(bobs)
    assert [f["type"] for f in got] == ["message.sent", "message.new"]
    sent, news = got
    assert sent["client_token"] == TOKEN
    assert sent["id"] == news["id"]
    assert "<strong>Hi</strong> all" in sent["html"]
    assert [f["id"] for f in await frames(alices) if f["type"] == "message.new"] == [sent["id"]]
    assert await stored(room) == [(bob.pk, "**Hi** all")]
    await bobs.disconnect()
    await alices.disconnect()


async def test_a_repeated_token_answers_with_the_stored_message_and_tells_the_room_once(
    room, alice, bob
):
    bobs, alices = await connect(bob), await connect(alice)
    for _ in range(2):
        await bobs.send_json_to(send_frame(room.pk, "Once"))
    replies = [f for f in await frames(bobs) if f["type"] == "message.sent"]
    assert len(replies) == 2
    assert replies[0]["id"] == replies[1]["id"]
    assert len([f for f in await frames(alices) if f["type"] == "message.new"]) == 1
    assert await stored(room) == [(bob.pk, "Once")]
    await bobs.disconnect()
    await alices.disconnect()


async def test_a_socket_send_and_an_http_retry_with_its_token_store_one_message(room, bob):
    """The composer falls back to POST with the same token when the socket does not answer."""
    bobs = await connect(bob)
    await bobs.send_json_to(send_frame(room.pk, "Either way"))
    sent = await answer(bobs)
    response = await database_sync_to_async(
        lambda: client_for(bob).post(
            f"/rooms/{room.pk}/messages/", {"body": "Either way", "client_token": TOKEN}
        )
    )()
    assert response.status_code == 200
    assert f'id="msg-{sent["id"]}"' in response.content.decode()
    assert await stored(room) == [(bob.pk, "Either way")]
    await bobs.disconnect()


async def test_an_outsider_gets_404_for_a_room_and_for_none_alike(room, mallory):
    socket = await connect(mallory)
    await socket.send_json_to(send_frame(room.pk, "let me in"))
    inside = await answer(socket)
    await socket.send_json_to(send_frame(10**12, "nowhere", token="another-token"))
    nowhere = await answer(socket)
    for refused in (inside, nowhere):
        assert (refused["type"], refused["status"], refused["error"]) == (
            "message.refused",
            404,
            "No such room.",
        )
    assert inside["client_token"] == TOKEN
    assert await stored(room) == []
    await socket.disconnect()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"room": "1"}, "message.send needs room, a room id."),
        ({"room": None}, "message.send needs room, a room id."),
        ({"room": True}, "message.send needs room, a room id."),
        ({"room": 0}, "message.send needs room, a room id."),
        ({"room": 2**63}, "message.send needs room, a room id."),
        ({"body": 5}, "A message's body is text."),
        ({"body": None}, "A message's body is text."),
        ({"body": "   \n "}, "A message cannot be empty."),
        ({"body": "x" * (MAX_MESSAGE_LENGTH + 1)}, "A message can be at most"),
        ({"attachments": "1"}, "Those are not files that can be sent."),
        ({"attachments": [0]}, "Those are not files that can be sent."),
        ({"attachments": ["7"]}, "Those are not files that can be sent."),
        ({"attachments": [1] * 101}, "Those are not files that can be sent."),
        ({"attachments": [10**12]}, "A file is not ready to send"),
        ({"client_token": "not a token!"}, "client token is 8 to 64"),
    ],
)
async def test_a_bad_message_is_refused_400_and_nothing_is_stored(room, alice, bob, change, error):
    await database_sync_to_async(
        lambda: client_for(alice).post(f"/rooms/{room.pk}/messages/", {"body": "already here"})
    )()
    socket = await connect(bob)
    frame = {**send_frame(room.pk if "room" not in change else 0), **change}
    await socket.send_json_to(frame)
    refused = await answer(socket)
    assert refused["type"] == "message.refused"
    assert refused["status"] == 400
    assert error in refused["error"]
    assert refused["client_token"] == frame["client_token"]
    assert await stored(room) == [(alice.pk, "already here")]
    # The socket stays up and keeps working.
    await socket.send_json_to(send_frame(room.pk, "after all", token="a-good-token"))
    assert (await answer(socket))["type"] == "message.sent"
    await socket.disconnect()


@pytest.mark.parametrize("token", [None, "", 12345])
async def test_a_send_without_a_token_gets_an_error(room, bob, token):
    socket = await connect(bob)
    await socket.send_json_to(send_frame(room.pk, "no token", token=token))
    (error,) = await frames(socket)
    assert error == {"type": "error", "error": "message.send needs a client_token."}
    assert await stored(room) == []
    await socket.disconnect()


async def test_sending_too_fast_is_refused_429(room, bob, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "send": (2, 60)}
    await database_sync_to_async(forget_all)()
    socket = await connect(bob)
    statuses = []
    for n in range(3):
        await socket.send_json_to(send_frame(room.pk, f"quick {n}", token=f"token-quick-{n}"))
        reply = await answer(socket)
        statuses.append(reply.get("status", reply["type"]))
    assert statuses == ["message.sent", "message.sent", 429]
    assert "Try again" in reply["error"] or "seconds" in reply["error"]
    assert await stored(room) == [(bob.pk, "quick 0"), (bob.pk, "quick 1")]
    await database_sync_to_async(forget_all)()
    await socket.disconnect()


async def test_an_archived_room_refuses_with_the_reason(room, alice, bob):
    await database_sync_to_async(do_archive_room)(alice, room=room)
    socket = await connect(bob)
    await socket.send_json_to(send_frame(room.pk))
    refused = await answer(socket)
    assert (refused["status"], refused["error"]) == (
        400,
        "This room is archived and read-only. Unarchive it to write here.",
    )
    assert await stored(room) == []
    await socket.disconnect()


async def test_a_blocked_direct_room_refuses_403(alice, bob):
    await database_sync_to_async(befriend)(alice, bob)
    direct = await database_sync_to_async(do_open_direct)(alice, other=bob)
    await database_sync_to_async(do_block_user)(alice, blocked=bob)
    socket = await connect(bob)
    await socket.send_json_to(send_frame(direct.pk))
    refused = await answer(socket)
    assert (refused["type"], refused["status"]) == ("message.refused", 403)
    assert await stored(direct) == []
    await socket.disconnect()


async def tab_of(client) -> WebsocketCommunicator:
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    socket = WebsocketCommunicator(application, "/ws/", headers=[ORIGIN, (b"cookie", cookie)])
    connected, _ = await socket.connect()
    assert connected
    return socket


async def test_signing_out_closes_that_session_s_tabs_and_no_other(room, bob):
    laptop, phone = await database_sync_to_async(lambda: (client_for(bob), client_for(bob)))()
    laptop_tab, phone_tab = await tab_of(laptop), await tab_of(phone)
    await database_sync_to_async(laptop.post)("/accounts/logout/")

    assert await laptop_tab.receive_json_from(timeout=5) == {"type": "session.ended"}
    assert (await laptop_tab.receive_output(timeout=5))["code"] == 4403
    # The phone's session is still signed in: its tab stays up and sends.
    await phone_tab.send_json_to(send_frame(room.pk, "Still here"))
    assert (await answer(phone_tab))["type"] == "message.sent"
    assert await stored(room) == [(bob.pk, "Still here")]
    await phone_tab.disconnect()


async def test_a_send_shows_the_name_the_sender_has_now(room, bob):
    socket = await connect(bob)
    await database_sync_to_async(User.objects.filter(pk=bob.pk).update)(display_name="Robert")
    await socket.send_json_to(send_frame(room.pk, "Call me Robert"))
    sent = await answer(socket)
    assert "Robert" in sent["html"]
    assert "Bob Jones" not in sent["html"]
    await socket.disconnect()


async def test_a_deactivated_account_sends_nothing(room, bob):
    socket = await connect(bob)
    await database_sync_to_async(User.objects.filter(pk=bob.pk).update)(is_active=False)
    await socket.send_json_to(send_frame(room.pk, "Am I still here?"))
    refused = await answer(socket)
    assert (refused["type"], refused["status"]) == ("message.refused", 401)
    assert "signed out" in refused["error"]
    assert await stored(room) == []
    await socket.disconnect()
