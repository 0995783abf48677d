"""Outgoing notification emails: plain text and HTML parts, reply address, unsubscribe headers.

Rendering only; which email goes to whom and when is decided in `actions.py`.
"""

from __future__ import annotations

from email.utils import formataddr, parseaddr

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.models import User
from rooms.models import Message, Room, RoomKind

from .models import Frequency

UNSUBSCRIBE_SALT = "notifications.unsubscribe"
# Mail clients and list software read these; "OOF, AutoReply" asks Exchange not to auto-answer.
AUTOMATIC_HEADERS = {
    "Auto-Submitted": "auto-generated",
    "X-Auto-Response-Suppress": "OOF, AutoReply",
}
DIGEST_NAMES = {
    Frequency.EVERY_15_MINUTES: "15-minute digest",
    Frequency.HOURLY: "Hourly digest",
    Frequency.DAILY: "Daily digest",
}


def absolute(path: str) -> str:
    return f"{settings.PARLEY_BASE_URL}{path}"


def reply_address(token: str) -> str:
    return f"reply+{token}@{settings.PARLEY_REPLY_DOMAIN}"


def unsubscribe_token(user: User) -> str:
    return signing.dumps(user.pk, salt=UNSUBSCRIBE_SALT)


def user_for_unsubscribe_token(token: str) -> int | None:
    try:
        return int(signing.loads(token, salt=UNSUBSCRIBE_SALT))
    except (signing.BadSignature, TypeError, ValueError):
        return None


def unsubscribe_url(user: User) -> str:
    return absolute(reverse("unsubscribe", args=[unsubscribe_token(user)]))


def room_label(room: Room, recipient: User, senders: list[User]) -> str:
    if room.kind != RoomKind.DIRECT:
        return str(room)
    others = [s.name for s in senders if s.pk != recipient.pk]
    return f"your conversation with {others[0]}" if others else "a direct conversation"


def _from_header(senders: list[User]) -> str:
    name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    if len({s.pk for s in senders}) == 1:
        name = f"{senders[0].name} via {name or 'Parley'}"
    return formataddr((name or "Parley", address))


def _headers(recipient: User, room: Room, *, message_id: str) -> dict[str, str]:
    domain = settings.PARLEY_REPLY_DOMAIN
    thread = f"<room-{room.pk}@{domain}>"
    return {
        **AUTOMATIC_HEADERS,
        "List-Unsubscribe": f"<{unsubscribe_url(recipient)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "Message-ID": message_id,
        # Every email about one room threads together in the recipient's mail client.
        "In-Reply-To": thread,
        "References": thread,
    }


def message_batch_email(
    *,
    recipient: User,
    room: Room,
    messages: list[Message],
    more: int,
    frequency: str,
    reply_token: str,
    batch_id: int,
) -> EmailMultiAlternatives:
    """One email listing `messages` (oldest first) of one room; `more` were left out."""
    senders = [m.sender for m in messages]
    label = room_label(room, recipient, senders)
    count = len(messages) + more
    if frequency in DIGEST_NAMES:
        subject = f"{DIGEST_NAMES[frequency]}: {count} new message{'s' * (count != 1)} in {label}"
    elif count == 1:
        subject = f"{senders[0].name} in {label}"
    else:
        subject = f"{count} new messages in {label}"
    context = {
        "recipient": recipient,
        "room_label": label,
        "messages": messages,
        "more": more,
        "room_url": absolute(room.get_absolute_url()),
        "base_url": settings.PARLEY_BASE_URL,
        "settings_url": absolute(reverse("notification_settings")),
        "unsubscribe_url": unsubscribe_url(recipient),
        "can_reply": True,
    }
    email = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("email/messages.txt", context),
        from_email=_from_header(senders),
        to=[formataddr((recipient.name, recipient.email))],
        reply_to=[reply_address(reply_token)],
        headers=_headers(
            recipient, room, message_id=f"<batch-{batch_id}@{settings.PARLEY_REPLY_DOMAIN}>"
        ),
    )
    email.attach_alternative(render_to_string("email/messages.html", context), "text/html")
    return email


def added_to_room_email(*, recipient: User, room: Room, by: User) -> EmailMultiAlternatives:
    context = {
        "recipient": recipient,
        "room_label": str(room),
        "by": by,
        "room_url": absolute(room.get_absolute_url()),
        "settings_url": absolute(reverse("notification_settings")),
        "unsubscribe_url": unsubscribe_url(recipient),
    }
    email = EmailMultiAlternatives(
        subject=f"{by.name} added you to {room}",
        body=render_to_string("email/added_to_room.txt", context),
        from_email=_from_header([by]),
        to=[formataddr((recipient.name, recipient.email))],
        headers={
            **AUTOMATIC_HEADERS,
            "List-Unsubscribe": f"<{unsubscribe_url(recipient)}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    email.attach_alternative(render_to_string("email/added_to_room.html", context), "text/html")
    return email
