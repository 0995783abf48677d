from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse


class RoomKind(models.TextChoices):
    DIRECT = "direct", "Direct"
    GROUP = "group", "Group"
    INTERVIEW = "interview", "Interview"
    CONTRACT = "contract", "Contract"


class Role(models.IntegerChoices):
    # Ordered so that `role >= Role.ADMIN` reads as "at least an admin".
    MEMBER = 1, "Member"
    ADMIN = 2, "Admin"
    OWNER = 3, "Owner"


class Room(models.Model):
    kind = models.CharField(max_length=16, choices=RoomKind.choices)
    title = models.CharField(max_length=200, blank=True)
    # Only meaningful for contract rooms; blocking is refused while it is true.
    contract_active = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    # Denormalised so the room list is one ordered query.
    last_activity = models.DateTimeField(db_index=True)
    last_message = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # For direct rooms: "<smaller user id>:<larger user id>", so a pair has at most one room.
    direct_key = models.CharField(max_length=64, null=True, blank=True, unique=True)

    class Meta:
        ordering = ["-last_activity"]

    def __str__(self) -> str:
        return self.title or f"{self.get_kind_display()} room {self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("room", args=[self.pk])

    @property
    def is_direct(self) -> bool:
        return self.kind == RoomKind.DIRECT


class Membership(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.PositiveSmallIntegerField(choices=Role.choices, default=Role.MEMBER)
    joined = models.DateTimeField(auto_now_add=True)
    # Id of the newest message this member has read; unread = messages after it.
    last_read_id = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "user"], name="membership_unique_user"),
        ]
        indexes = [models.Index(fields=["user", "room"], name="membership_user_room")]

    def __str__(self) -> str:
        return f"{self.user} in {self.room} ({self.get_role_display()})"


class Message(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="messages_sent"
    )
    body = models.TextField()
    body_html = models.TextField()
    created = models.DateTimeField(auto_now_add=True)
    edited = models.DateTimeField(null=True, blank=True)
    deleted = models.DateTimeField(null=True, blank=True)
    # Bumped by every edit or delete; a reconnecting tab replays changes made after it left.
    changed = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["room", "id"], name="message_room_id")]

    def __str__(self) -> str:
        return f"{self.sender} in {self.room_id}: {self.body[:40]}"

    def get_absolute_url(self) -> str:
        return f"{reverse('room', args=[self.room_id])}#msg-{self.pk}"

    @property
    def is_deleted(self) -> bool:
        return self.deleted is not None
