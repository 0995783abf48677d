from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Frequency(models.TextChoices):
    IMMEDIATELY = "immediately", "Immediately"
    EVERY_15_MINUTES = "15min", "Every 15 minutes"
    HOURLY = "hourly", "Hourly"
    DAILY = "daily", "Daily digest"
    NEVER = "never", "Never"


class Scope(models.TextChoices):
    ALL = "all", "All messages"
    DIRECT_AND_MENTIONS = "direct", "Only direct messages and @mentions"


class NotificationSettings(models.Model):
    """A person's notification preferences; people without a row have the defaults."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_settings"
    )
    frequency = models.CharField(
        max_length=16, choices=Frequency.choices, default=Frequency.IMMEDIATELY
    )
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.ALL)
    email_new_messages = models.BooleanField(default=True)
    # With new messages off, messages that carry files are still emailed.
    email_files_shared = models.BooleanField(default=True)
    email_added_to_room = models.BooleanField(default=True)
    # Kept until moderation reviews reports (no source of "report reviewed" events yet).
    email_report_reviewed = models.BooleanField(default=True)
    desktop = models.BooleanField(default=False)
    # "Turn off all notifications": overrides everything above without forgetting it.
    all_off = models.BooleanField(default=False)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "notification settings"

    def __str__(self) -> str:
        return f"Notification settings of {self.user_id}"

    def wants_message_email(self, *, has_files: bool = False) -> bool:
        """Whether a message (one carrying files, with `has_files`) is worth an email."""
        if self.all_off or self.frequency == Frequency.NEVER:
            return False
        return self.email_new_messages or (has_files and self.email_files_shared)

    def wants_event_email(self, event: str) -> bool:
        """`event` is one of "added_to_room", "files_shared", "report_reviewed"."""
        return (
            not self.all_off
            and self.frequency != Frequency.NEVER
            and getattr(self, f"email_{event}")
        )


class MutedRoom(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "room"], name="mutedroom_unique_room"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} muted {self.room_id}"


class EmailBatch(models.Model):
    """The messages of one room that one recipient will get in one email.

    A batch is open (collecting messages) until a sender claims it; claiming is a conditional
    UPDATE of `claimed`, so two senders never send the same batch.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="+")
    frequency = models.CharField(max_length=16, choices=Frequency.choices)
    first_message_id = models.BigIntegerField()
    last_message_id = models.BigIntegerField()
    # Not sent before this moment: the end of the batching window or the digest time.
    due = models.DateTimeField()
    claimed = models.DateTimeField(null=True, blank=True)
    # Which sender run holds the claim; a claim older than the lease may be taken over.
    claim = models.CharField(max_length=32, blank=True, db_index=True)
    sent = models.DateTimeField(null=True, blank=True)
    # How many messages the email listed; 0 when it was skipped (read meanwhile, muted, ...).
    message_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "room"],
                condition=Q(claimed__isnull=True),
                name="emailbatch_one_open_per_room",
            ),
        ]
        indexes = [
            models.Index(fields=["due"], condition=Q(sent__isnull=True), name="emailbatch_unsent"),
            models.Index(fields=["user", "room", "last_message_id"], name="emailbatch_user_room"),
        ]

    def __str__(self) -> str:
        return f"Email to {self.user_id} about room {self.room_id} ({self.first_message_id}…)"


class ReplyToken(models.Model):
    """The random part of a Reply-To address: it alone decides who posts where."""

    token = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    expires = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"Reply token of {self.user_id} for room {self.room_id}"


class InboundReply(models.Model):
    """A reply posted from an email: counts toward the per-token rate limit."""

    token = models.ForeignKey(ReplyToken, on_delete=models.CASCADE, related_name="replies")
    message = models.ForeignKey("rooms.Message", on_delete=models.CASCADE, related_name="+")
    # The mail's Message-ID, so that an MTA delivering the same mail twice posts it once.
    email_message_id = models.CharField(max_length=998, blank=True)
    received = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["token", "received"], name="inboundreply_token_time")]
        verbose_name_plural = "inbound replies"

    def __str__(self) -> str:
        return f"Reply by email → message {self.message_id}"


class OutOfOffice(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="out_of_office"
    )
    enabled = models.BooleanField(default=False)
    message = models.TextField(blank=True)
    # Both inclusive, in TIME_ZONE (the user's own time zone once profiles have one).
    start = models.DateField()
    end = models.DateField()

    class Meta:
        verbose_name_plural = "out of office"
        constraints = [
            models.CheckConstraint(
                condition=Q(end__gte=models.F("start")), name="ooo_end_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} away {self.start}–{self.end}"


class AutoReply(models.Model):
    """A reply the out-of-office responder posted; its unique key allows one per day and pair.

    The message itself is marked `MessageKind.AUTOMATIC`, so no responder answers it.
    """

    responder = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    # The person whose message was answered.
    answered = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    message = models.OneToOneField(
        "rooms.Message", null=True, on_delete=models.CASCADE, related_name="auto_reply"
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["responder", "answered", "room", "day"], name="autoreply_once_a_day"
            ),
        ]
        verbose_name_plural = "auto replies"

    def __str__(self) -> str:
        return f"Auto reply by {self.responder_id} to {self.answered_id} on {self.day}"
