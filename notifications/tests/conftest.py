"""Notification test helpers: eager Celery, sending with on-commit work run, due batches."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

import pytest
from django.test import TestCase
from django.utils import timezone

from accounts.models import User
from messages_site.celery import app
from notifications.models import EmailBatch
from rooms.actions import do_send_message
from rooms.models import Message, Room


@pytest.fixture(autouse=True)
def eager_celery():
    """Tasks run inline here, as in the embedded default, whatever REDIS_URL says."""
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def send(sender: User, room: Room, body: str) -> Message:
    """Send as a page would, and run what waits for the commit (events, the notification task)."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return do_send_message(sender, room=room, body=body)


def make_due() -> None:
    """Let every open batching window and digest period end now."""
    EmailBatch.objects.filter(sent__isnull=True).update(due=timezone.now() - timedelta(seconds=1))


def reply_mail(
    to: str,
    body: str = "Sounds good.\n\nOn Tue, Mar 12, 2024 at 10:02 AM Parley wrote:\n> old text\n",
    *,
    sender: str = "bob@example.com",
    headers: dict[str, str] | None = None,
) -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = "Re: Alice Adams in Design"
    mail["Message-ID"] = f"<{timezone.now().timestamp()}-{id(body)}@mail.example>"
    for name, value in (headers or {}).items():
        mail[name] = value
    mail.set_content(body)
    return mail.as_bytes()
