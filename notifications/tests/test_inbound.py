"""Reply by email: what gets posted, and everything that is refused without a word back."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import TestCase
from django.utils import timezone

from accounts.actions import do_change_email
from notifications.emails import reply_address
from notifications.inbound import html_to_text, receive_email
from notifications.models import InboundReply, ReplyToken
from rooms.actions import do_archive_room, do_leave_room
from rooms.models import Message

from .conftest import reply_mail

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(room, bob) -> ReplyToken:
    return ReplyToken.objects.create(
        token="0123456789abcdef0123456789abcdef",
        user=bob,
        room=room,
        expires=timezone.now() + timedelta(days=30),
    )


def receive(raw: bytes, **envelope):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return receive_email(raw, **envelope)


def posted() -> list[str]:
    return list(Message.objects.values_list("body", flat=True))


def test_reply_is_posted_as_the_token_owner_without_quoted_history(token, room, bob, inbox):
    alice_tab = inbox(room.memberships.get(role=3).user)
    outcome = receive(reply_mail(reply_address(token.token)), envelope_sender="bob@example.com")
    assert outcome.accepted, outcome
    message = Message.objects.get(pk=outcome.message_id)
    assert (message.sender, message.room, message.body) == (bob, room, "Sounds good.")
    frames = [f for f in alice_tab.frames() if f["type"] == "message.new"]
    assert [f["id"] for f in frames] == [message.pk]
    assert "Sounds good." in frames[0]["html"]


def test_the_from_header_is_not_trusted(token, bob):
    outcome = receive(reply_mail(reply_address(token.token), sender="mallory@evil.example"))
    assert outcome.accepted
    assert Message.objects.get().sender == bob  # the token decides, From changes nothing


def test_token_is_found_in_the_envelope_recipient(token):
    raw = reply_mail("someone-else@example.com")
    outcome = receive(raw, envelope_recipients=[reply_address(token.token).upper()])
    assert outcome.accepted


def test_html_only_reply_is_turned_into_text(token):
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"] = "bob@example.com"
    msg["To"] = reply_address(token.token)
    msg["Subject"] = "Re: hi"
    msg.set_content(
        "<html><body><div>Yes, <b>Friday</b> works.</div><div>See you&nbsp;then</div>"
        '<div class="gmail_quote">On Tue Parley wrote:<blockquote>old</blockquote></div>'
        "</body></html>",
        subtype="html",
    )
    assert receive(msg.as_bytes()).accepted
    assert posted() == ["Yes, Friday works.\nSee you then"]


def test_html_to_text_keeps_lists_and_breaks():
    html = "<p>One<br>Two</p><ul><li>a</li><li>b</li></ul><style>p{}</style>"
    assert html_to_text(html) == "One\nTwo\n\n- a\n- b"


def test_signature_is_stripped(token):
    body = "The budget is fine.\n\n-- \nBob Jones\nFreelance illustrator\n"
    assert receive(reply_mail(reply_address(token.token), body)).accepted
    assert posted() == ["The budget is fine."]


def test_a_reply_can_be_posted_through_the_receive_email_command(token, monkeypatch):
    raw = reply_mail(reply_address(token.token))
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(raw)))
    out = io.StringIO()
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command("receive_email", "--sender", "bob@example.com", stdout=out)
    assert out.getvalue().startswith("posted: posted (message ")
    assert posted() == ["Sounds good."]


def test_the_command_refuses_quietly_and_exits_zero(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\x00\xff garbage")))
    out = io.StringIO()
    call_command("receive_email", stdout=out)
    assert out.getvalue().startswith("refused: ")
    assert posted() == []


# Refusals: nothing posted, nothing sent back -------------------------------------------------


def assert_refused(outcome, reason: str) -> None:
    assert not outcome.accepted
    assert reason in outcome.reason
    assert posted() == []
    assert mail.outbox == []


def test_unknown_token_is_refused(token):
    raw = reply_mail(reply_address("f" * 32))
    assert_refused(receive(raw), "unknown or expired token")


def test_address_without_token_is_refused(token):
    assert_refused(receive(reply_mail("parley@example.com")), "unknown or expired token")


def test_token_for_another_domain_is_refused(token):
    raw = reply_mail(f"reply+{token.token}@evil.example")
    assert_refused(receive(raw), "unknown or expired token")


def test_expired_token_is_refused(token):
    token.expires = timezone.now() - timedelta(seconds=1)
    token.save()
    assert_refused(receive(reply_mail(reply_address(token.token))), "unknown or expired token")


def test_a_token_mailed_before_the_address_changed_is_refused(token, bob):
    do_change_email(bob, email="bob@new.example")
    assert_refused(receive(reply_mail(reply_address(token.token))), "unknown or expired token")
    assert not Message.objects.exists()


def test_owner_who_left_the_room_is_refused(token, room, bob):
    do_leave_room(bob, room=room)
    assert_refused(receive(reply_mail(reply_address(token.token))), "left the room")


def test_suspended_owner_is_refused(token, bob):
    bob.is_active = False
    bob.save()
    assert_refused(receive(reply_mail(reply_address(token.token))), "suspended")


def test_archived_room_is_refused(token, room, alice):
    do_archive_room(alice, room=room)
    assert_refused(receive(reply_mail(reply_address(token.token))), "not allowed")


@pytest.mark.parametrize(
    "headers, reason",
    [
        ({"Auto-Submitted": "auto-replied"}, "Auto-Submitted"),
        ({"Auto-Submitted": "auto-generated"}, "Auto-Submitted"),
        ({"Auto-Submitted": "auto-notified; owner-email=x@example.com"}, "Auto-Submitted"),
        ({"Return-Path": "<>"}, "bounce"),
        ({"X-Autoreply": "yes"}, "out-of-office"),
        ({"X-Autorespond": "Out of office"}, "out-of-office"),
        ({"Precedence": "auto_reply"}, "Precedence"),
        ({"Precedence": "bulk"}, "Precedence"),
        ({"Precedence": "junk"}, "Precedence"),
    ],
)
def test_automatic_mail_is_refused(token, headers, reason):
    raw = reply_mail(reply_address(token.token), headers=headers)
    assert_refused(receive(raw), reason)


def test_auto_submitted_no_is_a_person(token):
    raw = reply_mail(reply_address(token.token), headers={"Auto-Submitted": "no"})
    assert receive(raw).accepted


@pytest.mark.parametrize("sender", ["", "<>"])
def test_null_envelope_sender_is_a_bounce(token, sender):
    raw = reply_mail(reply_address(token.token))
    assert_refused(receive(raw, envelope_sender=sender), "bounce")


def test_mailer_daemon_is_a_bounce(token):
    raw = reply_mail(reply_address(token.token), sender="MAILER-DAEMON@mx.example.com")
    assert_refused(receive(raw), "bounce")


def test_delivery_status_report_is_a_bounce(token):
    address = reply_address(token.token)
    raw = (
        f"From: postmaster@mx.example.com\r\nTo: {address}\r\nSubject: Undelivered\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n\r\nFinal-Recipient: rfc822; x@example.com\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n--b--\r\n"
    ).encode()
    assert_refused(receive(raw, envelope_sender="postmaster@mx.example.com"), "bounce")


def test_oversized_mail_is_refused(token, settings):
    settings.PARLEY_INBOUND_MAX_BYTES = 2000
    raw = reply_mail(reply_address(token.token), "x" * 3000)
    assert_refused(receive(raw), "too large")


def test_too_many_replies_per_token_are_refused(token, settings):
    settings.PARLEY_REPLIES_PER_TOKEN_PER_HOUR = 2
    address = reply_address(token.token)
    assert receive(reply_mail(address, "one")).accepted
    assert receive(reply_mail(address, "two")).accepted
    outcome = receive(reply_mail(address, "three"))
    assert not outcome.accepted and outcome.reason == "too many replies"
    assert posted() == ["one", "two"]
    InboundReply.objects.update(received=timezone.now() - timedelta(hours=1, seconds=1))
    assert receive(reply_mail(address, "an hour later")).accepted


def test_the_same_mail_delivered_twice_is_posted_once(token):
    raw = reply_mail(reply_address(token.token))
    assert receive(raw).accepted
    assert not receive(raw).accepted
    assert posted() == ["Sounds good."]


def test_empty_reply_is_refused(token):
    raw = reply_mail(reply_address(token.token), "\n\nOn Tue, Parley wrote:\n> only history\n")
    assert_refused(receive(raw), "empty")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe not an email at all",
        b"Subject: no recipient headers at all\r\n\r\nhello",
        b"From: bob@example.com\r\nTo: \r\nSubject: =?bogus?Q?x?=\r\n\r\nhi",
    ],
)
def test_malformed_mail_is_refused_without_crashing(token, raw):
    outcome = receive(raw)
    assert not outcome.accepted
    assert posted() == []


def test_bad_charset_still_reads_the_reply(token):
    address = reply_address(token.token)
    raw = (
        f"From: bob@example.com\r\nTo: {address}\r\nSubject: hi\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=no-such-charset\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\nCaf\xc3\xa9 at noon\r\n"
    ).encode("latin-1")
    outcome = receive(raw)
    assert outcome.accepted, outcome
    assert posted() == ["Café at noon"]


def test_broken_mime_is_refused_or_read_but_never_crashes(token):
    address = reply_address(token.token)
    raw = (
        f"From: bob@example.com\r\nTo: {address}\r\nSubject: hi\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="never-closed"\r\n\r\n'
        "--never-closed\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        "!!!not base64!!!\r\n"
    ).encode()
    outcome = receive(raw)
    assert outcome.reason in {"posted", "empty reply", "malformed"}


# Attached files --------------------------------------------------------------------------------


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def mail_with_files(address: str, body: str, files: list[tuple[str, str, bytes]]) -> bytes:
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"] = "bob@example.com"
    msg["To"] = address
    msg["Subject"] = "Re: files"
    msg["Message-ID"] = f"<files-{len(files)}-{len(body)}@mail.example>"
    msg.set_content(body)
    for name, ctype, data in files:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


def test_attached_files_become_room_attachments(token, room, bob, media):
    raw = mail_with_files(
        reply_address(token.token),
        "Here is the brief.",
        [("brief.txt", "text/plain", b"The brief, in plain words.\n")],
    )
    outcome = receive(raw)
    assert outcome.accepted, outcome
    message = Message.objects.get(pk=outcome.message_id)
    assert message.body == "Here is the brief."
    (attachment,) = message.attachments.all()
    assert (attachment.name, attachment.uploader, attachment.room) == ("brief.txt", bob, room)
    assert attachment.file.read() == b"The brief, in plain words.\n"


def test_a_reply_of_files_alone_is_posted(token, media):
    raw = mail_with_files(reply_address(token.token), "", [("a.txt", "text/plain", b"hi\n")])
    outcome = receive(raw)
    assert outcome.accepted, outcome
    assert Message.objects.get().attachments.count() == 1


def test_a_refused_file_is_named_in_the_message(token, media, settings):
    settings.MAX_UPLOAD_BYTES = 10
    raw = mail_with_files(
        reply_address(token.token),
        "Two files.",
        [("small.txt", "text/plain", b"tiny\n"), ("big.txt", "text/plain", b"x" * 100)],
    )
    outcome = receive(raw)
    assert outcome.accepted, outcome
    message = Message.objects.get()
    assert [a.name for a in message.attachments.all()] == ["small.txt"]
    assert message.body.startswith("Two files.\n\nNot attached from the email: big.txt (")
