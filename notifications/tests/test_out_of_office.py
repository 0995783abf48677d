"""The Out-of-Office Responder: dates, once a day, never answering a machine, the badge."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.utils import timezone

from conftest import befriend
from notifications.actions import do_update_out_of_office, post_auto_replies
from notifications.models import AutoReply
from rooms.actions import do_create_room
from rooms.models import Message, MessageKind, RoomKind

from .conftest import send

pytestmark = pytest.mark.django_db


@pytest.fixture
def direct(alice, bob):
    befriend(alice, bob)
    return do_create_room(alice, kind=RoomKind.DIRECT, members=[bob])


def away(user, *, start_in: int = -1, end_in: int = 3, enabled: bool = True, text: str = ""):
    today = timezone.localdate()
    return do_update_out_of_office(
        user,
        enabled=enabled,
        message=text or "On holiday, back soon.",
        start=today + timedelta(days=start_in),
        end=today + timedelta(days=end_in),
    )


def bodies(room) -> list[tuple[str, str]]:
    return [(m.sender.username, m.body) for m in Message.objects.filter(room=room)]


def test_direct_message_gets_the_away_message_once(direct, alice, bob):
    away(bob)
    send(alice, direct, "Are you there?")
    send(alice, direct, "Hello?")
    assert bodies(direct) == [
        ("alice", "Are you there?"),
        ("bob", "On holiday, back soon.\n\n(automatic reply)"),
        ("alice", "Hello?"),
    ]
    reply = Message.objects.filter(sender=bob).get()
    assert reply.kind == MessageKind.AUTOMATIC
    assert AutoReply.objects.get(message=reply).answered == alice


def test_the_next_day_the_sender_is_answered_again(direct, alice, bob):
    away(bob)
    send(alice, direct, "Monday")
    AutoReply.objects.update(day=timezone.localdate() - timedelta(days=1))
    send(alice, direct, "Tuesday")
    assert [b for s, b in bodies(direct) if s == "bob"] == [
        "On holiday, back soon.\n\n(automatic reply)"
    ] * 2


def test_contract_room_messages_are_answered(alice, bob):
    befriend(alice, bob)
    contract = do_create_room(alice, kind=RoomKind.CONTRACT, title="Site", members=[bob])
    away(bob)
    send(alice, contract, "Status?")
    assert [s for s, _ in bodies(contract)] == ["alice", "bob"]


def test_group_room_messages_are_not_answered(room, alice, bob):
    away(bob)
    send(alice, room, "Team update")
    assert [s for s, _ in bodies(room)] == ["alice"]


@pytest.mark.parametrize(
    "start_in, end_in, enabled",
    [(1, 3, True), (-5, -1, True), (-1, 3, False)],
    ids=["before the start", "after the end", "switched off"],
)
def test_responder_is_quiet_outside_its_dates_or_when_off(
    direct, alice, bob, start_in, end_in, enabled
):
    away(bob, start_in=start_in, end_in=end_in, enabled=enabled)
    send(alice, direct, "ping")
    assert [s for s, _ in bodies(direct)] == ["alice"]


def test_first_and_last_day_are_included(direct, alice, bob):
    away(bob, start_in=0, end_in=0)
    send(alice, direct, "today only")
    assert [s for s, _ in bodies(direct)] == ["alice", "bob"]


def test_two_responders_never_answer_each_other(direct, alice, bob):
    away(alice, text="Alice is away.")
    away(bob, text="Bob is away.")
    send(alice, direct, "Before I leave")
    assert bodies(direct) == [
        ("alice", "Before I leave"),
        ("bob", "Bob is away.\n\n(automatic reply)"),
    ]


def test_running_the_responder_twice_answers_once(direct, alice, bob):
    away(bob)
    message = send(alice, direct, "hi")
    assert post_auto_replies(message.pk) == []
    assert Message.objects.filter(sender=bob).count() == 1


def test_a_suspended_responder_says_nothing(direct, alice, bob):
    away(bob)
    bob.is_active = False
    bob.save()
    send(alice, direct, "hi")
    assert [s for s, _ in bodies(direct)] == ["alice"]


def test_default_away_text_names_the_last_day(direct, alice, bob):
    row = away(bob, end_in=3)
    row.message = ""
    row.save()
    send(alice, direct, "hi")
    reply = Message.objects.get(sender=bob)
    assert reply.body.startswith(f"I am out of office until {row.end:%B %-d, %Y}.")


def test_badge_shows_until_when_while_away(bob, carol):
    row = away(bob, end_in=3)
    request = RequestFactory().get("/")
    request.user = carol
    html = render_to_string("notifications/ooo_badge.html", {"person": bob}, request=request)
    assert f"Out of office until {row.end:%b} {row.end.day}" in html
    assert render_to_string("notifications/ooo_badge.html", {"person": carol}).strip() == ""


def test_badge_is_gone_after_the_last_day(bob):
    away(bob, start_in=-5, end_in=-1)
    assert "Out of office" not in render_to_string("notifications/ooo_badge.html", {"person": bob})


def test_no_reply_in_a_room_archived_meanwhile(alice, bob, monkeypatch):
    from django.core.exceptions import ValidationError

    import notifications.actions as actions

    befriend(alice, bob)
    contract = do_create_room(alice, kind=RoomKind.CONTRACT, title="Site", members=[bob])
    away(bob)
    message = send(alice, contract, "hi")
    AutoReply.objects.all().delete()
    Message.objects.filter(sender=bob).delete()

    def archived(*args, **kwargs):
        raise ValidationError("This room is archived and read-only.")

    monkeypatch.setattr(actions, "do_send_message", archived)
    assert post_auto_replies(message.pk) == []
    assert not AutoReply.objects.exists()  # so a later message may still be answered
