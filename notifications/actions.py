"""Every write for notifications: preferences, mutes, the responder, and the email pipeline.

The pipeline, run by Celery tasks (never in a request):

1. `queue_message_emails(message_id)` puts the message into each wanting recipient's open
   `EmailBatch` for the room, or opens one due at the end of the batching window (or at the
   next digest time). `queue_room_emails(room_id)` runs it for each of a room's messages
   still waiting for it (`Message.emails_queued`), a task per busy room, not per message.
2. `send_due_emails()` claims due batches with a conditional UPDATE, renders one email per
   batch with only what is still unread, sends it, and marks it sent.
"""

from __future__ import annotations

import io
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import get_connection
from django.db import IntegrityError, transaction
from django.db.models import F, Prefetch, Q, QuerySet
from django.db.models.functions import Greatest, Least
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from rooms import actions as rooms_actions
from rooms.actions import do_send_message
from rooms.models import Attachment, Membership, Mention, Message, MessageKind, Room, RoomKind
from rooms.queries import access_membership, member_ids

from . import emails
from .models import (
    AutoReply,
    EmailBatch,
    Frequency,
    InboundReply,
    MutedRoom,
    NotificationSettings,
    OutOfOffice,
    ReplyToken,
    Scope,
)
from .queries import (
    active_out_of_office,
    due_time,
    message_email_recipients,
    settings_by_user,
    settings_for,
)

log = logging.getLogger(__name__)

# Batches claimed per run; a full run hands the rest to another worker.
SEND_CHUNK = 100
# A claim not renewed for this long was left by a sender that died: another run takes it over.
# A live sender renews its claim before each email, so this only has to outlast one email.
CLAIM_LEASE = timedelta(seconds=settings.PARLEY_NOTIFY_CLAIM_LEASE_SECONDS)
# A message whose emails were not queued this long after it was sent lost its task on the way
# (a killed worker, a Redis restart); the sweep queues it. Older ones are left alone.
LEFT_BEHIND_AFTER = timedelta(seconds=10)
LEFT_BEHIND_WITHIN = timedelta(hours=1)
# An email lists at most this many messages and counts the rest.
MAX_LISTED = 20
# Messages loaded per room and chunk, so that a huge daily digest stays bounded.
MAX_LOADED = 1000
MAX_AWAY_MESSAGE = 2000
AUTO_CLOSING = "(automatic reply)"


# Preferences -------------------------------------------------------------------------------


@transaction.atomic
def do_update_notification_settings(user: User, **changes: object) -> NotificationSettings:
    """Set any of the NotificationSettings fields named in `changes`."""
    allowed = {
        "frequency",
        "scope",
        "email_new_messages",
        "email_files_shared",
        "email_added_to_room",
        "email_report_reviewed",
        "desktop",
        "all_off",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"Not a notification setting: {', '.join(sorted(unknown))}")
    if "frequency" in changes and changes["frequency"] not in Frequency.values:
        raise ValidationError(f"Unknown email frequency {changes['frequency']!r}.")
    if "scope" in changes and changes["scope"] not in Scope.values:
        raise ValidationError(f"Unknown choice of messages {changes['scope']!r}.")
    prefs, _ = NotificationSettings.objects.select_for_update().get_or_create(user=user)
    for name, value in changes.items():
        setattr(prefs, name, value)
    prefs.save()
    return prefs


def do_set_all_notifications_off(user: User, *, off: bool) -> NotificationSettings:
    return do_update_notification_settings(user, all_off=off)


def do_unsubscribe(user: User) -> NotificationSettings:
    """The one-click unsubscribe: no more notification emails, other settings kept."""
    return do_update_notification_settings(user, frequency=Frequency.NEVER)


@transaction.atomic
def do_set_room_muted(user: User, *, room: Room, muted: bool) -> None:
    access_membership(user, room.pk)
    if muted:
        MutedRoom.objects.get_or_create(user=user, room=room)
    else:
        MutedRoom.objects.filter(user=user, room=room).delete()


@transaction.atomic
def do_update_out_of_office(
    user: User, *, enabled: bool, message: str, start: date, end: date
) -> OutOfOffice:
    message = message.strip()
    if end < start:
        raise ValidationError("The end date must be on or after the start date.")
    if len(message) > MAX_AWAY_MESSAGE:
        raise ValidationError(f"An away message can be at most {MAX_AWAY_MESSAGE} characters.")
    row, _ = OutOfOffice.objects.update_or_create(
        user=user, defaults={"enabled": enabled, "message": message, "start": start, "end": end}
    )
    return row


# The out-of-office responder -----------------------------------------------------------------


def away_text(away: OutOfOffice) -> str:
    text = away.message or f"I am out of office until {away.end:%B %-d, %Y}."
    return f"{text}\n\n{AUTO_CLOSING}"


def post_auto_replies(message_id: int) -> list[Message]:
    """Answer a direct or contract-room message for each recipient whose responder is on.

    At most once per sender, room and day, and never in answer to an automatic message.
    """
    message = Message.objects.select_related("room", "sender").filter(pk=message_id).first()
    if message is None or message.is_deleted or not message.sender.is_active:
        return []
    if message.room.kind not in (RoomKind.DIRECT, RoomKind.CONTRACT):
        return []
    if message.kind != MessageKind.USER:
        return []  # never answer an automatic (or system) message: two responders never loop
    others = [uid for uid in member_ids(message.room) if uid != message.sender_id]
    away = active_out_of_office(others)
    if not away:
        return []
    today = timezone.localdate()
    replies = []
    for row in away.values():
        if not row.user.is_active:
            continue
        try:
            replies.append(_post_auto_reply(row, message, today))
        except IntegrityError:
            continue  # already answered this person here today
        except (ValidationError, PermissionDenied, Http404) as refusal:
            # The room was archived or the responder left meanwhile: nothing to answer.
            log.info("No automatic reply in room %s: %s", message.room_id, refusal)
    return replies


@transaction.atomic
def _post_auto_reply(away: OutOfOffice, message: Message, today: date) -> Message:
    # The unique (responder, answered, room, day) row is taken first: a second run stops here.
    marker = AutoReply.objects.create(
        responder=away.user, answered=message.sender, room=message.room, day=today
    )
    reply = do_send_message(
        away.user, room=message.room, body=away_text(away), kind=MessageKind.AUTOMATIC
    )
    marker.message = reply
    marker.save(update_fields=["message"])
    return reply


# Queueing message emails ---------------------------------------------------------------------


def queue_message_emails(message_id: int) -> int:
    """Put one new message into its recipients' email batches; returns how many want it.

    Safe to repeat: a message already in a batch widens nothing, and a batch already sent
    is not sent again for it (see `_plan`).
    """
    message = Message.objects.select_related("room").filter(pk=message_id).first()
    queued = Message.objects.filter(pk=message_id, emails_queued=False)
    if message is None or message.is_deleted:
        queued.update(emails_queued=True)
        return 0
    wanted = message_email_recipients(message)
    if not wanted:
        queued.update(emails_queued=True)
        return 0
    now = timezone.now()
    with transaction.atomic():
        queued.update(emails_queued=True)
        open_batches = EmailBatch.objects.filter(
            room_id=message.room_id, user_id__in=list(wanted), claimed__isnull=True
        )
        widen = {
            "first_message_id": Least(F("first_message_id"), message.pk),
            "last_message_id": Greatest(F("last_message_id"), message.pk),
        }
        open_batches.update(**widen)
        have = set(open_batches.values_list("user_id", flat=True))
        new = [
            EmailBatch(
                user_id=uid,
                room_id=message.room_id,
                frequency=frequency,
                first_message_id=message.pk,
                last_message_id=message.pk,
                due=due_time(frequency, now),
            )
            for uid, frequency in wanted.items()
            if uid not in have
        ]
        if new:
            EmailBatch.objects.bulk_create(new, ignore_conflicts=True)
            # A batch another worker opened between our read and insert gets the message too.
            open_batches.filter(user_id__in=[b.user_id for b in new]).update(**widen)
    _send_when_due(message.room_id, opened=any(b.frequency == Frequency.IMMEDIATELY for b in new))
    return len(wanted)


def queue_room_emails(room_id: int) -> int:
    """Queue the emails of the room's messages waiting for them, oldest first, at most
    SEND_CHUNK; returns how many. What `tasks.room_messages_sent` runs.

    Like the sweep, it leaves alone messages older than LEFT_BEHIND_WITHIN.
    """
    waiting = _waiting_for_emails(timezone.now()).filter(room_id=room_id).order_by("pk")
    return _queue_and_answer(list(waiting.values_list("pk", flat=True)[:SEND_CHUNK]))


def queue_left_behind() -> int:
    """Queue the emails of recent messages whose room task never ran; returns how many.

    The database, not the broker, decides what is still to do: a task lost with a killed
    worker or a restarted Redis is made up for here (the beat runs this with each sweep).
    """
    now = timezone.now()
    left = _waiting_for_emails(now).filter(created__lt=now - LEFT_BEHIND_AFTER).order_by("created")
    queued = _queue_and_answer(list(left.values_list("pk", flat=True)[:SEND_CHUNK]))
    if queued:
        log.warning("Queued the emails of %d messages whose task was lost", queued)
    return queued


def _waiting_for_emails(now: datetime) -> QuerySet[Message]:
    # Read through the partial index message_emails_not_queued: only messages still waiting.
    return Message.objects.filter(emails_queued=False, created__gte=now - LEFT_BEHIND_WITHIN)


def _queue_and_answer(message_ids: list[int]) -> int:
    """Answer and queue each message; returns how many were done. One that fails is logged and
    stays waiting (the sweep tries it again): it must not hold back the rest of its room."""
    done = 0
    for message_id in message_ids:
        try:
            # The answers first: a run that dies between the two leaves the message waiting,
            # and the run that takes it again posts no second answer (see `_post_auto_reply`).
            post_auto_replies(message_id)
            queue_message_emails(message_id)
        except Exception:
            log.exception("Could not queue the emails of message %s; it stays waiting", message_id)
        else:
            done += 1
    return done


def _send_when_due(room_id: int, *, opened: bool) -> None:
    from .tasks import celery_is_eager, send_due_notifications

    if celery_is_eager():
        # Embedded run: no worker can wait for the window and no beat sweeps, so each message
        # sends what is already due in its room (never a batch whose window is still open);
        # `manage.py send_notifications --every N` covers quiet rooms and digests.
        send_due_emails(room_id=room_id)
    elif opened:
        countdown = settings.PARLEY_NOTIFY_BATCH_SECONDS + 0.5
        send_due_notifications.apply_async(kwargs={"room_id": room_id}, countdown=countdown)


# Sending due emails --------------------------------------------------------------------------


@dataclass
class SendReport:
    claimed: int = 0
    sent: int = 0
    skipped: int = 0

    def __add__(self, other: SendReport) -> SendReport:
        return SendReport(
            self.claimed + other.claimed, self.sent + other.sent, self.skipped + other.skipped
        )


def claim_due_batches(*, room_id: int | None = None, limit: int = SEND_CHUNK) -> list[EmailBatch]:
    """Take up to `limit` due batches for this run; a batch is taken by one run only."""
    now = timezone.now()
    claimable = EmailBatch.objects.filter(
        Q(claimed__isnull=True) | Q(claimed__lt=now - CLAIM_LEASE),
        sent__isnull=True,
        due__lte=now,
    )
    if room_id is not None:
        claimable = claimable.filter(room_id=room_id)
    ids = list(claimable.order_by("due").values_list("pk", flat=True)[:limit])
    if not ids:
        return []
    claim = secrets.token_hex(16)
    # The WHERE clause is checked again against the row as it is now: losers update nothing.
    claimable.filter(pk__in=ids).update(claimed=now, claim=claim)
    return list(EmailBatch.objects.filter(claim=claim).select_related("user", "room"))


@dataclass
class Planned:
    batch: EmailBatch
    messages: list[Message]
    more: int


def _plan(batches: list[EmailBatch]) -> tuple[list[Planned], list[EmailBatch]]:
    """Split claimed batches into emails to send and batches with nothing left to say.

    Preferences, mutes and read pointers are read now, at sending time, so a change made
    after the message arrived still counts. A fixed number of queries per room.
    """
    users = {b.user_id for b in batches}
    rooms = {b.room_id for b in batches}
    read_upto = {
        (room_id, user_id): last_read
        for room_id, user_id, last_read in Membership.objects.filter(
            room_id__in=rooms, user_id__in=users
        ).values_list("room_id", "user_id", "last_read_id")
    }
    prefs = settings_by_user(list(users))
    muted = set(
        MutedRoom.objects.filter(room_id__in=rooms, user_id__in=users).values_list(
            "user_id", "room_id"
        )
    )
    lowest = min(b.first_message_id for b in batches)
    # What earlier batches of the same person and room cover (sent, or claimed to be sent by
    # this run or another), by range: a message whose task was lost is queued late, into a
    # batch opened after the batches of the messages that followed it.
    covered: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for user_id, room_id, pk, first, last in EmailBatch.objects.filter(
        user_id__in=users,
        room_id__in=rooms,
        claimed__isnull=False,
        last_message_id__gte=lowest,
    ).values_list("user_id", "room_id", "pk", "first_message_id", "last_message_id"):
        covered.setdefault((user_id, room_id), []).append((pk, first, last))
    loaded = {
        room_id: _load_messages(room_id, [b for b in batches if b.room_id == room_id])
        for room_id in rooms
    }

    planned, skipped = [], []
    for batch in batches:
        user, room = batch.user, batch.room
        pref = prefs[user.pk]
        key = (room.pk, user.pk)
        if (
            key not in read_upto
            or not user.is_active
            or not user.email
            or not pref.wants_message_email(has_files=True)
            or (user.pk, room.pk) in muted
        ):
            skipped.append(batch)
            continue
        floor = max(batch.first_message_id - 1, read_upto[key])
        earlier = [
            (first, last)
            for pk, first, last in covered.get((user.pk, room.pk), [])
            if pk < batch.pk
        ]
        messages, mentions = loaded[room.pk]
        only_mentions = pref.scope == Scope.DIRECT_AND_MENTIONS and room.kind != RoomKind.DIRECT
        chosen = [
            m
            for m in messages
            if floor < m.pk <= batch.last_message_id
            and not any(first <= m.pk <= last for first, last in earlier)
            and m.sender_id != user.pk
            and (not only_mentions or (m.pk, user.pk) in mentions)
            and pref.wants_message_email(has_files=bool(m.files))
        ]
        if not chosen:
            skipped.append(batch)
            continue
        planned.append(Planned(batch, chosen[-MAX_LISTED:], max(len(chosen) - MAX_LISTED, 0)))
    return planned, skipped


def _load_messages(
    room_id: int, batches: list[EmailBatch]
) -> tuple[list[Message], set[tuple[int, int]]]:
    low = min(b.first_message_id for b in batches)
    high = max(b.last_message_id for b in batches)
    shared = Prefetch(
        "attachments", queryset=Attachment.objects.filter(deleted__isnull=True), to_attr="files"
    )
    messages = list(
        Message.objects.filter(room_id=room_id, pk__gte=low, pk__lte=high, deleted__isnull=True)
        .select_related("sender")
        .prefetch_related(shared)
        .order_by("-pk")[:MAX_LOADED]
    )
    messages.reverse()
    mentions = set(
        Mention.objects.filter(message_id__in=[m.pk for m in messages]).values_list(
            "message_id", "user_id"
        )
    )
    return messages, mentions


def _new_reply_tokens(planned: list[Planned]) -> list[str]:
    expires = timezone.now() + timedelta(days=settings.PARLEY_REPLY_TOKEN_DAYS)
    rows = [
        ReplyToken(
            token=secrets.token_hex(16),
            user_id=p.batch.user_id,
            room_id=p.batch.room_id,
            expires=expires,
        )
        for p in planned
    ]
    ReplyToken.objects.bulk_create(rows)
    return [row.token for row in rows]


def send_due_emails(*, room_id: int | None = None, limit: int = SEND_CHUNK) -> SendReport:
    """Claim due batches (of one room, or all) and send their emails; safe to run twice."""
    batches = claim_due_batches(room_id=room_id, limit=limit)
    if not batches:
        return SendReport()
    planned, skipped = _plan(batches)
    now = timezone.now()
    EmailBatch.objects.filter(pk__in=[b.pk for b in skipped]).update(sent=now, message_count=0)
    report = SendReport(claimed=len(batches), skipped=len(skipped))
    if not planned:
        return report
    tokens = _new_reply_tokens(planned)
    claim = batches[0].claim
    connection = get_connection()
    try:
        connection.open()
        for item, token in zip(planned, tokens, strict=True):
            if not _renew_claim(claim, item.batch.pk):
                continue  # this run was too slow and another took the batch over
            email = emails.message_batch_email(
                recipient=item.batch.user,
                room=item.batch.room,
                messages=item.messages,
                more=item.more,
                frequency=item.batch.frequency,
                reply_token=token,
                batch_id=item.batch.pk,
            )
            connection.send_messages([email])
            EmailBatch.objects.filter(pk=item.batch.pk).update(
                sent=timezone.now(), message_count=len(item.messages) + item.more
            )
            report.sent += 1
    except Exception:
        # Let a retry take the unsent batches over at once instead of after the lease.
        EmailBatch.objects.filter(claim=claim, sent__isnull=True).update(
            claimed=timezone.now() - CLAIM_LEASE - timedelta(seconds=1)
        )
        raise
    finally:
        connection.close()
    return report


def _renew_claim(claim: str, batch_id: int) -> bool:
    """Keep this run's unsent batches from looking abandoned; False when `batch_id` was
    taken over meanwhile."""
    now = timezone.now()
    ours = EmailBatch.objects.filter(claim=claim, sent__isnull=True)
    if not ours.filter(pk=batch_id).update(claimed=now):
        return False
    ours.exclude(pk=batch_id).update(claimed=now)
    return True


def send_all_due_emails() -> SendReport:
    """What the beat runs: every due batch, chunk by chunk."""
    total = SendReport()
    while True:
        report = send_due_emails()
        total += report
        if report.claimed < SEND_CHUNK:
            return total


@transaction.atomic
def do_expire_reply_tokens(user: User) -> int:
    """The reply addresses mailed to the person so far stop working (their email address
    changed: whoever reads the old mailbox must not post as them). The beat deletes them later."""
    now = timezone.now()
    return ReplyToken.objects.filter(user=user, expires__gt=now).update(expires=now)


def delete_expired_reply_tokens() -> int:
    deleted, _ = ReplyToken.objects.filter(expires__lt=timezone.now()).delete()
    return deleted


def delete_old_email_batches(*, days: int = 30) -> int:
    """Sent batches are only needed while a newer batch of the same room may overlap them."""
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = EmailBatch.objects.filter(sent__lt=cutoff).delete()
    return deleted


# Event emails ------------------------------------------------------------------------------


def send_added_to_room_email(*, room_id: int, user_id: int, by_id: int) -> bool:
    """Tell someone they were added to a room, if they want that; True when an email went."""
    membership = (
        Membership.objects.select_related("room", "user")
        .filter(room_id=room_id, user_id=user_id)
        .first()
    )
    by = User.objects.filter(pk=by_id).first()
    if membership is None or by is None or by_id == user_id:
        return False
    user = membership.user
    if not user.is_active or not user.email:
        return False
    if not settings_for(user).wants_event_email("added_to_room"):
        return False
    # One email per membership, however often the task runs.
    if not cache.add(f"notify:added:{membership.pk}", 1, timeout=7 * 24 * 3600):
        return False
    emails.added_to_room_email(recipient=user, room=membership.room, by=by).send()
    return True


# Reply by email ----------------------------------------------------------------------------


def do_attach_email_file(
    user: User, *, room: Room, name: str, declared_type: str, data: bytes
) -> Attachment:
    """A file from an email, stored as the user's finished upload in `room`, ready to send.

    Goes through the same upload actions as the browser, so the same limits and checks hold.
    """
    upload = rooms_actions.do_create_upload(
        user, room=room, name=name, size=len(data), declared_type=declared_type
    )
    for index in range(upload.chunk_count):
        start = index * upload.chunk_size
        chunk = data[start : start + upload.chunk_length(index)]
        rooms_actions.do_store_chunk(
            user, upload=upload, index=index, source=io.BytesIO(chunk), length=len(chunk)
        )
    return rooms_actions.do_finish_upload(user, upload=upload)


@transaction.atomic
def do_post_email_reply(
    token: ReplyToken, *, body: str, email_message_id: str, attachments: Sequence[int] = ()
) -> Message:
    """Post `body` (and finished uploads) as the token's owner in the token's room.

    The caller has checked the mail and the token.
    """
    message = do_send_message(token.user, room=token.room, body=body, attachments=list(attachments))
    InboundReply.objects.create(token=token, message=message, email_message_id=email_message_id)
    return message
