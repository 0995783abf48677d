"""Reads for notifications: preferences with their defaults, who is away, who wants an email."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from accounts.models import User
from rooms.models import Membership, Mention, Message, RoomKind

from .models import Frequency, MutedRoom, NotificationSettings, OutOfOffice, Scope


def settings_for(user: User) -> NotificationSettings:
    """The person's preferences; an unsaved row with the defaults when they never changed any."""
    found = NotificationSettings.objects.filter(user_id=user.pk).first()
    return found or NotificationSettings(user=user)


def settings_by_user(user_ids: list[int]) -> dict[int, NotificationSettings]:
    rows = {s.user_id: s for s in NotificationSettings.objects.filter(user_id__in=user_ids)}
    return {uid: rows.get(uid) or NotificationSettings(user_id=uid) for uid in user_ids}


def muted_room_ids(user: User) -> set[int]:
    return set(MutedRoom.objects.filter(user_id=user.pk).values_list("room_id", flat=True))


def is_muted(user_id: int, room_id: int) -> bool:
    return MutedRoom.objects.filter(user_id=user_id, room_id=room_id).exists()


def due_time(frequency: str, now: datetime) -> datetime:
    """When an email opened now at `frequency` goes out: the batching window or digest time."""
    if frequency == Frequency.IMMEDIATELY:
        return now + timedelta(seconds=settings.PARLEY_NOTIFY_BATCH_SECONDS)
    local = timezone.localtime(now).replace(second=0, microsecond=0)
    if frequency == Frequency.EVERY_15_MINUTES:
        start = local.replace(minute=local.minute - local.minute % 15)
        return start + timedelta(minutes=15)
    if frequency == Frequency.HOURLY:
        return local.replace(minute=0) + timedelta(hours=1)
    if frequency == Frequency.DAILY:
        today = local.replace(hour=settings.PARLEY_DIGEST_HOUR, minute=0)
        return today if today > local else today + timedelta(days=1)
    raise ValueError(f"No email goes out at frequency {frequency!r}")


def message_email_recipients(message: Message) -> dict[int, str]:
    """{user id: frequency} of the members who want an email about `message`.

    Never the sender, nor a muted room, an inactive person, someone without an address,
    someone who has already read it, or someone who blocked the sender.
    A fixed number of queries whatever the size of the room.
    """
    members = list(
        Membership.objects.filter(
            room_id=message.room_id, last_read_id__lt=message.pk, user__is_active=True
        )
        .exclude(user_id=message.sender_id)
        .exclude(user__email="")
        .exclude(user__blocks_made__blocked_id=message.sender_id)
        .values_list("user_id", flat=True)
    )
    if not members:
        return {}
    muted = set(
        MutedRoom.objects.filter(room_id=message.room_id, user_id__in=members).values_list(
            "user_id", flat=True
        )
    )
    prefs = settings_by_user([uid for uid in members if uid not in muted])
    is_direct = message.room.kind == RoomKind.DIRECT
    has_files = message.attachments.filter(deleted__isnull=True).exists()
    mentioned: set[int] | None = None
    wanted = {}
    for uid, pref in prefs.items():
        if not pref.wants_message_email(has_files=has_files):
            continue
        if pref.scope == Scope.DIRECT_AND_MENTIONS and not is_direct:
            if mentioned is None:
                mentioned = set(
                    Mention.objects.filter(message_id=message.pk).values_list("user_id", flat=True)
                )
            if uid not in mentioned:
                continue
        wanted[uid] = pref.frequency
    return wanted


def active_out_of_office(user_ids: list[int], *, on: date | None = None) -> dict[int, OutOfOffice]:
    """The people among `user_ids` whose responder is on today (in TIME_ZONE)."""
    today = on or timezone.localdate()
    rows = OutOfOffice.objects.filter(
        user_id__in=user_ids, enabled=True, start__lte=today, end__gte=today
    ).select_related("user")
    return {row.user_id: row for row in rows}


def out_of_office_until(user: User) -> date | None:
    """The last day away, while the person's responder is on; None otherwise."""
    row = active_out_of_office([user.pk]).get(user.pk)
    return row.end if row else None
