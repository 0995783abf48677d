"""Emails survive a lost task and a dead sender: the database says what is still to do.

The fault test (tests/test_faults.py) kills a real worker mid-send; these pin the pieces.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from notifications import actions
from notifications.models import EmailBatch
from notifications.tasks import send_due_notifications
from rooms.actions import do_send_message
from rooms.models import Message

from .conftest import make_due, send

pytestmark = pytest.mark.django_db


def lose_the_task(sender, room, body: str) -> Message:
    """Send as a page would, but the room task never runs (its worker was killed)."""
    message = do_send_message(sender, room=room, body=body)  # on-commit work is dropped here
    Message.objects.filter(pk=message.pk).update(created=timezone.now() - timedelta(seconds=11))
    return message


def test_a_sent_message_is_marked_queued_by_its_task(room, alice):
    message = send(alice, room, "Kick-off at 10")
    message.refresh_from_db()
    assert message.emails_queued


def test_sweep_queues_and_mails_a_message_whose_task_was_lost(room, alice, bob, carol):
    lost = lose_the_task(alice, room, "Nobody queued me")
    assert not Message.objects.get(pk=lost.pk).emails_queued

    send_due_notifications()  # the beat's sweep: queues it, its batch is not due yet
    assert Message.objects.get(pk=lost.pk).emails_queued
    make_due()
    send_due_notifications()

    assert sorted(e.to[0] for e in mail.outbox) == [
        "Bob Jones <bob@example.com>",
        "Carol Chen <carol@example.com>",
    ]
    assert all("Nobody queued me" in e.body for e in mail.outbox)
    # The next sweep finds nothing left behind and sends nothing again.
    make_due()
    send_due_notifications()
    assert len(mail.outbox) == 2


def test_sweep_leaves_a_message_whose_task_may_still_be_on_its_way(room, alice):
    message = do_send_message(alice, room=room, body="just now")
    assert actions.queue_left_behind() == 0
    assert not Message.objects.get(pk=message.pk).emails_queued


def test_a_running_sender_keeps_its_claim_alive(room, alice, bob, carol):
    send(alice, room, "hold on")
    make_due()
    claimed = actions.claim_due_batches()
    old = timezone.now() - actions.CLAIM_LEASE - timedelta(seconds=1)
    EmailBatch.objects.update(claimed=old)
    # Renewing before the first email refreshes every batch the run still holds.
    assert actions._renew_claim(claimed[0].claim, claimed[0].pk)
    assert actions.claim_due_batches() == []


def test_a_sender_whose_claim_was_taken_over_sends_nothing_more(room, alice, bob, carol):
    send(alice, room, "slow sender")
    make_due()
    slow = actions.claim_due_batches()
    EmailBatch.objects.update(claimed=timezone.now() - actions.CLAIM_LEASE - timedelta(seconds=1))
    assert actions.send_due_emails().sent == 2  # another run took both over and sent them
    assert not actions._renew_claim(slow[0].claim, slow[0].pk)
    assert len(mail.outbox) == 2


def test_a_late_queued_message_is_mailed_even_after_later_ones_were(room, alice, bob, carol):
    lost = lose_the_task(alice, room, "Lost on the way")
    # The later message's emails queued first, by themselves (a room task would take both):
    # the order `_plan` must cope with.
    later = do_send_message(alice, room=room, body="Sent after it")
    actions.queue_message_emails(later.pk)
    make_due()
    actions.send_due_emails()
    assert [("Sent after it" in e.body, "Lost on the way" in e.body) for e in mail.outbox] == [
        (True, False)
    ] * 2

    send_due_notifications()  # the sweep finds the lost one and opens batches for it
    make_due()
    send_due_notifications()

    late = mail.outbox[2:]
    assert [("Lost on the way" in e.body, "Sent after it" in e.body) for e in late] == [
        (True, False)
    ] * 2
    assert Message.objects.get(pk=lost.pk).emails_queued


def test_a_lost_task_is_made_up_for_by_the_next_message_in_its_room(room, alice, bob, carol):
    lose_the_task(alice, room, "Lost on the way")
    send(alice, room, "Sent after it")  # its room task takes every message still waiting
    make_due()
    actions.send_due_emails()
    assert [("Lost on the way" in e.body, "Sent after it" in e.body) for e in mail.outbox] == [
        (True, True)
    ] * 2
