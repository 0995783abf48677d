"""One email-queueing task per busy room: what a send publishes, and what the task does.

The publishing tests use a real Redis broker, with Celery not eager, and read the task
messages in its queue; the clock of `dispatch` is a fake one that the tests move on.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import redis
from django.core import mail
from django.utils import timezone

from messages_site.celery import app
from notifications import actions, dispatch
from notifications.tasks import room_messages_sent
from rooms.actions import do_create_room, do_send_message
from rooms.models import Message, RoomKind
from tests.live import free_port

from .conftest import make_due, send

pytestmark = pytest.mark.django_db

FALLBACK_REDIS_URL = "redis://127.0.0.1:6379/12"
QUEUE = "celery"
ROOM_TASK = "notifications.tasks.room_messages_sent"
DELAY = 1


@dataclass
class QueuedTask:
    name: str
    args: list
    eta: datetime | None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextmanager
def broker_at(url: str) -> Iterator[None]:
    """Celery publishing to `url`, through connections of its own."""
    # Celery keeps the connection pools of the broker it had (it drops them after a fork).
    saved = app.conf.broker_url, app._pool, app.amqp._producer_pool
    app.conf.broker_url, app._pool, app.amqp._producer_pool = url, None, None
    try:
        yield
    finally:
        app.conf.broker_url, app._pool, app.amqp._producer_pool = saved


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(dispatch, "monotonic", fake)
    return fake


@pytest.fixture
def broker(settings, clock):
    """Celery publishing to Redis, not eager, as a server process does; its queue emptied."""
    url = os.environ.get("REDIS_URL") or FALLBACK_REDIS_URL
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as error:
        # On CI a skip fails the run, so a missing Redis cannot pass unnoticed there.
        pytest.skip(f"No Redis answers at {url} ({error}); the tests read the broker's queue")
    client.delete(QUEUE)
    settings.PARLEY_NOTIFY_ROOM_DELAY_SECONDS = DELAY
    dispatch._room_task_due.clear()
    app.conf.task_always_eager = False  # the autouse eager_celery puts it back
    with broker_at(url):
        yield client
    dispatch._room_task_due.clear()
    client.delete(QUEUE)


def queued(client: redis.Redis, name: str = ROOM_TASK) -> list[QueuedTask]:
    """The tasks named `name` waiting in the broker's queue, oldest first."""
    tasks = []
    for raw in reversed(client.lrange(QUEUE, 0, -1)):  # the Redis transport pushes on the left
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        headers = message["headers"]
        eta = headers.get("eta")
        tasks.append(QueuedTask(headers["task"], args, eta and datetime.fromisoformat(eta)))
    return [task for task in tasks if task.name == name]


def store_quietly(sender, room, body: str) -> Message:
    """A stored message whose on-commit work (the dispatch) does not run."""
    return do_send_message(sender, room=room, body=body)


def test_a_burst_in_one_room_publishes_one_task_due_after_the_delay(broker, room, alice):
    before = timezone.now()
    sent = [send(alice, room, text) for text in ("one", "two", "three")]
    (task,) = queued(broker)
    assert task.args == [room.pk]
    assert before + timedelta(seconds=DELAY) <= task.eta
    assert task.eta <= timezone.now() + timedelta(seconds=DELAY)
    # Nothing ran: the task finds all three waiting.
    assert not Message.objects.filter(pk__in=[m.pk for m in sent], emails_queued=True).exists()


def test_each_busy_room_gets_a_task_of_its_own(broker, room, alice, bob):
    other = do_create_room(alice, kind=RoomKind.GROUP, title="Budget", members=[bob])
    for text in ("one", "two"):
        send(alice, room, text)
        send(alice, other, text)
    assert sorted(task.args for task in queued(broker)) == sorted([[room.pk], [other.pk]])


@pytest.mark.parametrize(
    "later, tasks",
    [
        (DELAY / 2, 1),  # the queued task runs after this message's commit and finds it
        (DELAY - 0.1, 2),  # within SAFETY_MARGIN of its run: it may have read the room
        (DELAY + 5, 2),  # it has run
    ],
)
def test_a_message_near_or_after_the_end_of_the_delay_publishes_again(
    broker, clock, room, alice, later, tasks
):
    send(alice, room, "first")
    clock.advance(later)
    send(alice, room, "second")
    assert [task.args for task in queued(broker)] == [[room.pk]] * tasks


def test_rooms_whose_task_has_run_are_forgotten(broker, clock):
    for room_id in (-1, -2, -3):  # no rooms: only what is published is looked at
        dispatch.message_sent(room_id)
    clock.advance(DELAY)
    dispatch.message_sent(-4)
    assert list(dispatch._room_task_due) == [-4]


def test_a_failed_publish_keeps_the_message_and_the_next_message_publishes(
    broker, room, alice, caplog
):
    with (
        broker_at(f"redis://127.0.0.1:{free_port()}/0"),  # nothing listens there
        caplog.at_level(logging.ERROR, logger="notifications.dispatch"),
    ):
        kept = send(alice, room, "while the broker is down")
    assert Message.objects.filter(pk=kept.pk, body="while the broker is down").exists()
    assert f"Could not queue {ROOM_TASK}({room.pk},)" in caplog.text

    send(alice, room, "once it is back")
    assert [task.args for task in queued(broker)] == [[room.pk]]


def test_the_room_task_queues_every_waiting_message_once(room, alice, bob, carol):
    sent = [store_quietly(alice, room, text) for text in ("one", "two", "three")]
    assert room_messages_sent(room.pk) == 3
    assert Message.objects.filter(pk__in=[m.pk for m in sent], emails_queued=True).count() == 3
    make_due()
    actions.send_due_emails()
    assert sorted(m.to[0] for m in mail.outbox) == [
        "Bob Jones <bob@example.com>",
        "Carol Chen <carol@example.com>",
    ]
    for email in mail.outbox:
        assert email.subject == "3 new messages in Design"
        assert all(text in email.body for text in ("one", "two", "three"))

    assert room_messages_sent(room.pk) == 0  # the broker delivered it again
    make_due()
    actions.send_due_emails()
    assert len(mail.outbox) == 2


def test_the_room_task_leaves_other_rooms_to_their_own_task(room, alice, bob):
    other = do_create_room(alice, kind=RoomKind.GROUP, title="Budget", members=[bob])
    elsewhere = store_quietly(alice, other, "in budget")
    store_quietly(alice, room, "in design")
    room_messages_sent(room.pk)
    assert not Message.objects.get(pk=elsewhere.pk).emails_queued


def test_a_full_chunk_hands_the_rest_to_another_task(broker, monkeypatch, room, alice):
    monkeypatch.setattr(actions, "SEND_CHUNK", 2)
    first, second, third = [store_quietly(alice, room, f"burst {n}") for n in range(3)]

    assert room_messages_sent(room.pk) == 2
    waiting = Message.objects.filter(room=room, emails_queued=False)
    assert list(waiting) == [third]  # the oldest went first
    (again,) = queued(broker)
    assert (again.args, again.eta) == ([room.pk], None)

    assert room_messages_sent(*again.args) == 1
    assert not waiting.all().exists()
    assert len(queued(broker)) == 1  # a chunk not full hands on nothing


def test_a_message_that_cannot_be_queued_does_not_hold_back_its_room(
    monkeypatch, caplog, room, alice, bob, carol
):
    stuck, fine = store_quietly(alice, room, "stuck"), store_quietly(alice, room, "fine")
    queue_one = actions.queue_message_emails

    def failing_for_stuck(message_id: int) -> int:
        if message_id == stuck.pk:
            raise RuntimeError("a fault in one message's step")
        return queue_one(message_id)

    monkeypatch.setattr(actions, "queue_message_emails", failing_for_stuck)
    with caplog.at_level(logging.ERROR, logger="notifications.actions"):
        assert room_messages_sent(room.pk) == 1
    assert f"Could not queue the emails of message {stuck.pk}" in caplog.text
    waiting = Message.objects.filter(room=room, emails_queued=False)
    assert list(waiting) == [stuck]  # left for the sweep to try again
    assert Message.objects.get(pk=fine.pk).emails_queued
    make_due()
    actions.send_due_emails()
    assert {m.to[0] for m in mail.outbox} == {
        "Bob Jones <bob@example.com>",
        "Carol Chen <carol@example.com>",
    }
    assert all("fine" in m.body for m in mail.outbox)
