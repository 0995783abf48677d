"""A retried send carrying the same client token posts the message once.

The composer sends a random token with each message and retries a request that failed on the
way (connection dropped, 5xx); the server answers a repeat with the message it stored.
"""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from conftest import client_for
from rooms.actions import do_create_room, do_send_message
from rooms.events import MessageEvent
from rooms.models import Message, RoomKind

TOKEN = "3f0c9f4e-6a51-4c1e-9d38-2b7d1c0a9e11"


def test_retry_with_the_same_token_returns_the_stored_message(
    room, bob, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as first_callbacks:
        first = do_send_message(bob, room=room, body="Ship it", client_token=TOKEN)
    with django_capture_on_commit_callbacks(execute=True) as retry_callbacks:
        retry = do_send_message(bob, room=room, body="Ship it", client_token=TOKEN)

    assert retry.pk == first.pk
    assert Message.objects.filter(room=room).count() == 1
    # The first send published its event and queued its email; the retry did neither.
    assert len(first_callbacks) >= 2
    assert retry_callbacks == []


def test_retry_publishes_no_second_live_event(
    room, alice, bob, inbox, django_capture_on_commit_callbacks
):
    alices = inbox(alice)
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            do_send_message(bob, room=room, body="Once", client_token=TOKEN)
    news = [f for f in alices.frames() if f["type"] == "message.new"]
    assert len(news) == 1
    assert set(news[0]) == set(MessageEvent.__annotations__)


def test_tokens_are_per_sender_and_messages_without_one_never_collide(room, alice, bob):
    mine = do_send_message(bob, room=room, body="same token, other person", client_token=TOKEN)
    theirs = do_send_message(alice, room=room, body="same token, other person", client_token=TOKEN)
    plain = [do_send_message(bob, room=room, body="no token") for _ in range(2)]
    assert len({mine.pk, theirs.pk, *(m.pk for m in plain)}) == 4


def test_new_token_posts_a_new_message_with_the_same_text(room, bob):
    first = do_send_message(bob, room=room, body="ok", client_token=TOKEN)
    second = do_send_message(bob, room=room, body="ok", client_token=TOKEN[::-1])
    assert first.pk != second.pk


def test_token_of_a_message_in_another_room_is_refused(room, alice, bob):
    other = do_create_room(alice, kind=RoomKind.GROUP, title="Other", members=[bob])
    do_send_message(bob, room=room, body="here", client_token=TOKEN)
    with pytest.raises(ValidationError, match="already used"):
        do_send_message(bob, room=other, body="there", client_token=TOKEN)
    assert not Message.objects.filter(room=other).exists()


@pytest.mark.parametrize("token", ["x" * 65, "short", "has space in it", "ünïcode-token", 12345678])
def test_bad_token_is_refused_by_the_action(room, bob, token):
    with pytest.raises(ValidationError, match="client token"):
        do_send_message(bob, room=room, body="hi", client_token=token)
    assert not Message.objects.exists()


def test_view_answers_a_retry_with_the_stored_message(room, bob):
    client = client_for(bob)
    url = f"/rooms/{room.pk}/messages/"
    first = client.post(url, {"body": "Deploy at noon", "client_token": TOKEN})
    retry = client.post(url, {"body": "Deploy at noon", "client_token": TOKEN})
    assert (first.status_code, retry.status_code) == (201, 200)
    (message,) = Message.objects.filter(room=room)
    assert f'id="msg-{message.pk}"'.encode() in first.content
    assert retry.content == first.content


@pytest.mark.parametrize(
    "form, error",
    [
        ({"client_token": "x" * 65}, "client token is 8 to 64"),
        ({"client_token": "<script>alert(1)</script>"}, "client token is 8 to 64"),
        ({"client_token": [TOKEN, TOKEN[::-1]]}, "one client token"),
    ],
)
def test_view_refuses_a_bad_token_with_400(room, bob, form, error):
    response = client_for(bob).post(f"/rooms/{room.pk}/messages/", {"body": "hi", **form})
    assert response.status_code == 400
    assert error in response.content.decode()
    assert response["Content-Type"].startswith("text/plain")
    assert not Message.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_token_store_one_message(room, bob):
    results: list[int] = []
    errors: list[BaseException] = []

    def send() -> None:
        try:
            message = do_send_message(bob, room=room, body="racing", client_token=TOKEN)
            results.append(message.pk)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(results)) == 1 and len(results) == 4
    assert Message.objects.filter(room=room, body="racing").count() == 1
