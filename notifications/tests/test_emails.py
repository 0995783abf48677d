"""Notification emails: who gets one, batching, digests, claiming, content and unsubscribe."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.utils import timezone

from conftest import befriend, client_for
from notifications import actions
from notifications.actions import send_due_emails
from notifications.emails import unsubscribe_url
from notifications.models import EmailBatch, Frequency, NotificationSettings, ReplyToken, Scope
from notifications.queries import due_time
from notifications.tasks import room_messages_sent
from rooms.actions import do_create_room, do_mark_read
from rooms.models import Message, RoomKind

from .conftest import make_due, send

pytestmark = pytest.mark.django_db


def recipients() -> list[str]:
    return sorted(address for email in mail.outbox for address in email.to)


def deliver() -> int:
    make_due()
    return send_due_emails().sent


def test_every_other_member_gets_an_email_after_the_window(room, alice, bob, carol):
    send(alice, room, "Kick-off at 10")
    assert mail.outbox == []  # the batching window is still open
    assert deliver() == 2
    assert recipients() == ["Bob Jones <bob@example.com>", "Carol Chen <carol@example.com>"]


def test_nothing_goes_out_before_the_window_ends(room, alice, settings):
    settings.PARLEY_NOTIFY_BATCH_SECONDS = 120
    send(alice, room, "hello")
    assert send_due_emails().sent == 0
    assert mail.outbox == []


def test_the_sender_never_gets_an_email(room, alice, bob, carol):
    send(alice, room, "mine")
    deliver()
    assert "alice@example.com" not in " ".join(recipients())


def test_messages_in_one_room_within_the_window_make_one_email(room, alice, bob, carol):
    for text in ("one", "two", "three"):
        send(alice, room, text)
    send(carol, room, "four")
    deliver()
    to_bob = [m for m in mail.outbox if m.to == ["Bob Jones <bob@example.com>"]]
    assert len(to_bob) == 1
    assert to_bob[0].subject == "4 new messages in Design"
    for text in ("one", "two", "three", "four"):
        assert text in to_bob[0].body


def test_a_message_after_an_email_went_out_makes_a_new_email(room, alice, bob, carol):
    send(alice, room, "first")
    deliver()
    mail.outbox.clear()
    send(alice, room, "second")
    deliver()
    to_bob = [m for m in mail.outbox if "bob@" in m.to[0]]
    assert len(to_bob) == 1
    assert "second" in to_bob[0].body and "first" not in to_bob[0].body


def test_one_email_per_room(room, alice, bob, carol):
    other = do_create_room(alice, kind=RoomKind.GROUP, title="Budget", members=[bob])
    send(alice, room, "in design")
    send(alice, other, "in budget")
    deliver()
    subjects = sorted(m.subject for m in mail.outbox if "bob@" in m.to[0])
    assert subjects == ["Alice Adams in Budget", "Alice Adams in Design"]


def test_no_email_when_the_recipient_read_it_before_it_went_out(room, alice, bob, carol):
    message = send(alice, room, "read me in the app")
    do_mark_read(bob, room=room, up_to=message.pk)
    deliver()
    assert recipients() == ["Carol Chen <carol@example.com>"]


def test_only_unread_messages_are_listed(room, alice, bob, carol):
    first = send(alice, room, "already seen")
    do_mark_read(bob, room=room, up_to=first.pk)
    send(alice, room, "still new")
    deliver()
    (email,) = [m for m in mail.outbox if "bob@" in m.to[0]]
    assert "still new" in email.body and "already seen" not in email.body


def test_deleted_messages_are_not_emailed(room, alice, bob, carol):
    from rooms.actions import do_delete_message

    message = send(alice, room, "oops")
    do_delete_message(alice, message=message)
    deliver()
    assert mail.outbox == []


def test_long_bursts_list_the_newest_and_count_the_rest(room, alice, bob, carol, monkeypatch):
    monkeypatch.setattr(actions, "MAX_LISTED", 3)
    for n in range(5):
        send(alice, room, f"burst {n}")
    deliver()
    (email,) = [m for m in mail.outbox if "bob@" in m.to[0]]
    assert "burst 0" not in email.body and "burst 4" in email.body
    assert "…and 2 more." in email.body
    assert email.subject == "5 new messages in Design"


def test_email_has_text_and_safe_html_parts_and_links(room, alice, bob, carol, settings):
    settings.PARLEY_BASE_URL = "https://parley.example"
    send(alice, room, "**bold** <script>alert(1)</script>")
    deliver()
    (email,) = [m for m in mail.outbox if "bob@" in m.to[0]]
    assert "**bold** <script>alert(1)</script>" in email.body
    html, mimetype = email.alternatives[0]
    assert mimetype == "text/html"
    assert "<strong>bold</strong>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    room_url = f"https://parley.example/rooms/{room.pk}/"
    assert room_url in email.body and room_url in html
    assert email.from_email.startswith("Alice Adams via Parley <")


def test_email_headers_say_automatic_and_offer_one_click_unsubscribe(room, alice, bob, carol):
    send(alice, room, "hi")
    deliver()
    (email,) = [m for m in mail.outbox if "bob@" in m.to[0]]
    message = email.message()
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"] == f"<{unsubscribe_url(bob)}>"
    assert unsubscribe_url(bob) in email.body


def test_reply_to_is_a_stored_token_for_one_person_and_room(room, alice, bob, carol, settings):
    settings.PARLEY_REPLY_DOMAIN = "reply.parley.example"
    send(alice, room, "answer me")
    deliver()
    (email,) = [m for m in mail.outbox if "bob@" in m.to[0]]
    (reply_to,) = email.reply_to
    local, domain = reply_to.split("@")
    assert domain == "reply.parley.example"
    token = ReplyToken.objects.get(token=local.removeprefix("reply+"))
    assert (token.user, token.room) == (bob, room)
    assert timedelta(days=29, hours=23) < token.expires - timezone.now() <= timedelta(days=30)
    assert len(token.token) == 32


def test_sending_twice_sends_nothing_twice(room, alice, bob, carol):
    send(alice, room, "once")
    make_due()
    assert send_due_emails().sent == 2
    assert send_due_emails().sent == 0
    assert len(mail.outbox) == 2


def test_a_batch_claimed_by_one_run_is_not_taken_by_another(room, alice, bob, carol):
    send(alice, room, "contested")
    make_due()
    first = actions.claim_due_batches()
    second = actions.claim_due_batches()
    assert len(first) == 2
    assert second == []


def test_a_claim_left_by_a_dead_sender_is_taken_over_after_the_lease(room, alice, bob, carol):
    send(alice, room, "stranded")
    make_due()
    actions.claim_due_batches()  # a sender claims, then dies before sending
    assert send_due_emails().sent == 0
    EmailBatch.objects.update(claimed=timezone.now() - actions.CLAIM_LEASE - timedelta(seconds=1))
    assert send_due_emails().sent == 2


def test_a_failed_smtp_send_is_retried_without_waiting_for_the_lease(
    room, alice, bob, carol, monkeypatch
):
    send(alice, room, "flaky network")
    make_due()
    real = actions.emails.message_batch_email
    calls = []

    def failing_once(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("connection reset")
        return real(**kwargs)

    monkeypatch.setattr(actions.emails, "message_batch_email", failing_once)
    with pytest.raises(OSError):
        send_due_emails()
    assert len(mail.outbox) == 1
    assert send_due_emails().sent == 1
    assert len(mail.outbox) == 2
    assert sorted(recipients()) == ["Bob Jones <bob@example.com>", "Carol Chen <carol@example.com>"]


def test_the_notification_task_is_safe_to_run_twice(room, alice, bob, carol):
    message = send(alice, room, "at least once delivery")
    deliver()
    # The broker delivered the task again, to a worker that read the message as waiting before
    # the first run marked it queued.
    Message.objects.filter(pk=message.pk).update(emails_queued=False)
    room_messages_sent(message.room_id)
    deliver()
    assert len([m for m in mail.outbox if "bob@" in m.to[0]]) == 1


def test_digest_run_twice_sends_one_digest(room, alice, bob, carol):
    NotificationSettings.objects.create(user=bob, frequency=Frequency.DAILY)
    send(alice, room, "for the digest")
    send(alice, room, "also for the digest")
    make_due()
    from notifications.tasks import send_due_notifications

    send_due_notifications()
    send_due_notifications()
    to_bob = [m for m in mail.outbox if "bob@" in m.to[0]]
    assert len(to_bob) == 1
    assert to_bob[0].subject == "Daily digest: 2 new messages in Design"


@pytest.mark.parametrize(
    "frequency, at, due",
    [
        (Frequency.EVERY_15_MINUTES, "09:07", "09:15"),
        (Frequency.EVERY_15_MINUTES, "09:15", "09:30"),
        (Frequency.HOURLY, "09:07", "10:00"),
        (Frequency.DAILY, "07:30", "08:00"),
        (Frequency.DAILY, "09:07", "next 08:00"),
    ],
)
def test_digests_are_due_at_the_next_period(frequency, at, due, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    settings.PARLEY_DIGEST_HOUR = 8
    zone = ZoneInfo("Europe/Berlin")
    hour, minute = map(int, at.split(":"))
    now = datetime(2025, 3, 12, hour, minute, 30, tzinfo=zone)
    day = 13 if due.startswith("next") else 12
    hour, minute = map(int, due.removeprefix("next ").split(":"))
    assert due_time(frequency, now) == datetime(2025, 3, day, hour, minute, tzinfo=zone)


def test_immediately_means_after_the_batching_window(settings):
    settings.PARLEY_NOTIFY_BATCH_SECONDS = 90
    now = timezone.now()
    assert due_time(Frequency.IMMEDIATELY, now) == now + timedelta(seconds=90)


def test_digest_batches_wait_for_the_digest_time(room, alice, bob, carol):
    NotificationSettings.objects.create(user=bob, frequency=Frequency.HOURLY)
    send(alice, room, "later")
    batch = EmailBatch.objects.get(user=bob)
    assert batch.frequency == Frequency.HOURLY
    assert timezone.localtime(batch.due).minute == 0


# Preferences ----------------------------------------------------------------------------------


def set_prefs(user, **changes):
    actions.do_update_notification_settings(user, **changes)


def test_defaults_are_immediately_and_all_messages(bob):
    from notifications.queries import settings_for

    prefs = settings_for(bob)
    assert (prefs.frequency, prefs.scope) == (Frequency.IMMEDIATELY, Scope.ALL)
    assert prefs.wants_message_email()


def test_frequency_never_sends_nothing(room, alice, bob, carol):
    set_prefs(bob, frequency=Frequency.NEVER)
    send(alice, room, "hello")
    deliver()
    assert recipients() == ["Carol Chen <carol@example.com>"]


def test_turning_off_new_message_emails(room, alice, bob, carol):
    set_prefs(bob, email_new_messages=False)
    send(alice, room, "hello")
    deliver()
    assert recipients() == ["Carol Chen <carol@example.com>"]


def test_turn_off_all_and_back_keeps_the_other_choices(room, alice, bob, carol):
    set_prefs(bob, frequency=Frequency.HOURLY)
    actions.do_set_all_notifications_off(bob, off=True)
    send(alice, room, "while off")
    deliver()
    assert recipients() == ["Carol Chen <carol@example.com>"]
    actions.do_set_all_notifications_off(bob, off=False)
    assert NotificationSettings.objects.get(user=bob).frequency == Frequency.HOURLY
    mail.outbox.clear()
    send(alice, room, "back on")
    deliver()
    assert "Bob Jones <bob@example.com>" in recipients()


def test_a_muted_room_sends_nothing(room, alice, bob, carol):
    actions.do_set_room_muted(bob, room=room, muted=True)
    send(alice, room, "shh")
    deliver()
    assert recipients() == ["Carol Chen <carol@example.com>"]
    actions.do_set_room_muted(bob, room=room, muted=False)
    send(alice, room, "loud again")
    deliver()
    assert "Bob Jones <bob@example.com>" in recipients()


def test_muting_after_the_message_still_stops_the_email(room, alice, bob, carol):
    send(alice, room, "before the mute")
    actions.do_set_room_muted(bob, room=room, muted=True)
    deliver()
    assert recipients() == ["Carol Chen <carol@example.com>"]


def test_only_direct_and_mentions_skips_plain_group_messages(room, alice, bob, carol):
    set_prefs(bob, scope=Scope.DIRECT_AND_MENTIONS)
    send(alice, room, "general chatter")
    send(alice, room, "@bob please look")
    deliver()
    (email,) = [m for m in mail.outbox if "bob@" in m.to[0]]
    assert "please look" in email.body and "general chatter" not in email.body


def test_only_direct_and_mentions_still_emails_direct_messages(alice, bob):
    befriend(alice, bob)
    direct = do_create_room(alice, kind=RoomKind.DIRECT, members=[bob])
    set_prefs(bob, scope=Scope.DIRECT_AND_MENTIONS)
    send(alice, direct, "just us")
    deliver()
    (email,) = mail.outbox
    assert email.subject == "Alice Adams in your conversation with Alice Adams"
    assert "just us" in email.body


def test_suspended_people_get_no_email(room, alice, bob, carol):
    bob.is_active = False
    bob.save()
    send(alice, room, "hello")
    deliver()
    assert recipients() == ["Carol Chen <carol@example.com>"]


def test_people_without_an_address_get_no_email(room, alice, bob, carol):
    bob.email = ""
    bob.save()
    send(alice, room, "hello")
    deliver()
    assert recipients() == ["Carol Chen <carol@example.com>"]


def test_event_preferences_are_stored(bob):
    set_prefs(bob, email_files_shared=False, email_report_reviewed=False, desktop=True)
    prefs = NotificationSettings.objects.get(user=bob)
    assert (prefs.email_files_shared, prefs.email_report_reviewed, prefs.desktop) == (
        False,
        False,
        True,
    )
    assert not prefs.wants_event_email("files_shared")


def test_added_to_a_room_email_goes_once(room, alice, bob, carol, dave):
    from rooms.actions import do_invite_member

    befriend(alice, dave)
    do_invite_member(alice, room=room, user=dave)
    assert actions.send_added_to_room_email(room_id=room.pk, user_id=dave.pk, by_id=alice.pk)
    assert not actions.send_added_to_room_email(room_id=room.pk, user_id=dave.pk, by_id=alice.pk)
    (email,) = mail.outbox
    assert email.subject == "Alice Adams added you to Design"
    assert email.message()["Auto-Submitted"] == "auto-generated"


def test_added_to_a_room_email_respects_the_preference(room, alice, dave):
    from rooms.actions import do_invite_member

    set_prefs(dave, email_added_to_room=False)
    befriend(alice, dave)
    do_invite_member(alice, room=room, user=dave)
    assert not actions.send_added_to_room_email(room_id=room.pk, user_id=dave.pk, by_id=alice.pk)
    assert mail.outbox == []


# Unsubscribe ----------------------------------------------------------------------------------


def test_unsubscribe_link_asks_first_and_posting_unsubscribes(client, bob):
    path = unsubscribe_url(bob).removeprefix("http://127.0.0.1:8000")
    page = client.get(path)
    assert page.status_code == 200
    assert b"Stop notification emails to bob@example.com?" in page.content
    assert not NotificationSettings.objects.filter(user=bob).exists()
    done = client.post(path, {"List-Unsubscribe": "One-Click"})  # RFC 8058, no session
    assert done.status_code == 200
    assert NotificationSettings.objects.get(user=bob).frequency == Frequency.NEVER


def test_a_forged_unsubscribe_token_is_refused(client, bob):
    response = client.post("/settings/unsubscribe/bob/")
    assert response.status_code == 400
    assert not NotificationSettings.objects.filter(user=bob).exists()


def test_logged_in_unsubscribe_page_renders(bob):
    path = unsubscribe_url(bob).removeprefix("http://127.0.0.1:8000")
    assert client_for(bob).get(path).status_code == 200


# The embedded run (eager Celery) and the schedules ---------------------------------------------


def test_eagerly_a_message_sends_what_is_already_due_in_its_room(room, alice, bob, carol):
    send(alice, room, "first")
    make_due()
    send(alice, room, "second")  # runs the task inline: the due batch goes, with both
    assert len(mail.outbox) == 2
    (email,) = [m for m in mail.outbox if "bob@" in m.to[0]]
    assert "first" in email.body and "second" in email.body
    send(alice, room, "third")  # opens a new window: nothing goes yet
    assert len(mail.outbox) == 2


def test_send_notifications_command_sends_due_emails(room, alice, bob, carol):
    import io

    from django.core.management import call_command

    send(alice, room, "hello")
    make_due()
    out = io.StringIO()
    call_command("send_notifications", stdout=out)
    assert out.getvalue().strip() == "sent 2, skipped 0"
    call_command("send_notifications", stdout=out)
    assert len(mail.outbox) == 2


def test_beat_runs_the_sweep_and_the_clean_up():
    from messages_site.celery import app

    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    # Other apps schedule their own work too (rooms purges stale uploads).
    assert tasks >= {
        "notifications.tasks.send_due_notifications",
        "notifications.tasks.delete_old_records",
    }
    assert tasks <= set(app.tasks)


def test_expired_reply_tokens_are_deleted(room, bob):
    old = ReplyToken.objects.create(
        token="a" * 32, user=bob, room=room, expires=timezone.now() - timedelta(seconds=1)
    )
    fresh = ReplyToken.objects.create(
        token="b" * 32, user=bob, room=room, expires=timezone.now() + timedelta(days=1)
    )
    assert actions.delete_expired_reply_tokens() == 1
    assert list(ReplyToken.objects.all()) == [fresh]
    assert not ReplyToken.objects.filter(pk=old.pk).exists()


def test_filing_a_message_costs_the_same_queries_in_a_bigger_room(
    room, alice, bob, carol, django_assert_num_queries
):
    from conftest import make_person
    from rooms.actions import do_invite_member

    small = send(alice, room, "small room")
    EmailBatch.objects.all().delete()
    with CaptureQueries() as counted:
        actions.queue_message_emails(small.pk)
    for n in range(6):
        person = make_person(f"extra{n}", f"Extra {n}")
        befriend(alice, person)
        do_invite_member(alice, room=room, user=person)
    big = send(alice, room, "bigger room")
    EmailBatch.objects.all().delete()
    with django_assert_num_queries(len(counted)):
        actions.queue_message_emails(big.pk)
    assert EmailBatch.objects.count() == 8


class CaptureQueries:
    def __enter__(self):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        self.context = CaptureQueriesContext(connection)
        self.context.__enter__()
        return self

    def __exit__(self, *exc):
        self.context.__exit__(*exc)

    def __len__(self) -> int:
        return len(self.context.captured_queries)


# Files shared ------------------------------------------------------------------------------------


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def send_file(sender, room, name: str, body: str = ""):
    from django.test import TestCase

    from rooms.actions import do_send_message

    attachment = actions.do_attach_email_file(
        sender, room=room, name=name, declared_type="text/plain", data=b"some text\n"
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        return do_send_message(sender, room=room, body=body, attachments=[attachment.pk])


def test_shared_files_are_named_in_the_email(room, alice, bob, carol, media):
    send_file(alice, room, "plan.txt", "The plan")
    deliver()
    (email,) = [m for m in mail.outbox if "bob@" in m.to[0]]
    assert "[File: plan.txt]" in email.body
    assert "plan.txt" in email.alternatives[0][0]


def test_files_shared_alone_when_new_messages_are_off(room, alice, bob, carol, media):
    set_prefs(bob, email_new_messages=False, email_files_shared=True)
    send(alice, room, "just words")
    send_file(alice, room, "contract.txt")
    deliver()
    (email,) = [m for m in mail.outbox if "bob@" in m.to[0]]
    assert "contract.txt" in email.body and "just words" not in email.body


def test_no_file_emails_when_both_are_off(room, alice, bob, carol, media):
    set_prefs(bob, email_new_messages=False, email_files_shared=False)
    send_file(alice, room, "contract.txt")
    deliver()
    assert recipients() == ["Carol Chen <carol@example.com>"]


def test_old_sent_batches_are_deleted(room, alice, bob, carol):
    send(alice, room, "long ago")
    deliver()
    EmailBatch.objects.update(sent=timezone.now() - timedelta(days=31))
    send(alice, room, "recent")
    deliver()
    assert actions.delete_old_email_batches() == 2
    assert EmailBatch.objects.count() == 2
