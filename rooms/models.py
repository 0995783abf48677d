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


class MessageKind(models.TextChoices):
    USER = "user", "User"
    # Posted by Parley itself: call started/ended, contract ended.
    SYSTEM = "system", "System"
    # Sent on someone's behalf by a responder; never answered by another responder.
    AUTOMATIC = "automatic", "Automatic"


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
    # Archived rooms are read-only and leave every list; only group rooms can be archived.
    archived = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_activity"]

    def __str__(self) -> str:
        return self.title or f"{self.get_kind_display()} room {self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("room", args=[self.pk])

    @property
    def is_direct(self) -> bool:
        return self.kind == RoomKind.DIRECT

    @property
    def is_archived(self) -> bool:
        return self.archived is not None

    @property
    def can_be_archived(self) -> bool:
        return self.kind == RoomKind.GROUP


class Membership(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.PositiveSmallIntegerField(choices=Role.choices, default=Role.MEMBER)
    joined = models.DateTimeField(auto_now_add=True)
    # Id of the newest message this member has read; unread = messages after it.
    last_read_id = models.BigIntegerField(default=0)
    favorite = models.BooleanField(default=False)
    hidden = models.BooleanField(default=False)

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
    kind = models.CharField(max_length=16, choices=MessageKind.choices, default=MessageKind.USER)
    body = models.TextField()
    body_html = models.TextField()
    created = models.DateTimeField(auto_now_add=True)
    edited = models.DateTimeField(null=True, blank=True)
    deleted = models.DateTimeField(null=True, blank=True)
    # A GIF chosen with /giphy: shown as an image under the text.
    gif_url = models.CharField(max_length=1000, blank=True)
    gif_title = models.CharField(max_length=200, blank=True)
    # Bumped by every edit or delete; a reconnecting tab replays changes made after it left.
    changed = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["room", "id"], name="message_room_id")]

    def __str__(self) -> str:
        return f"{self.sender} in {self.room_id}: {self.body[:40]}"

    def get_absolute_url(self) -> str:
        return f"{reverse('room', args=[self.room_id])}?around={self.pk}#msg-{self.pk}"

    @property
    def is_deleted(self) -> bool:
        return self.deleted is not None

    def reaction_summary(self) -> list[tuple[str, int, str]]:
        """(emoji, count, who) per emoji, in the order first used; needs reactions prefetched."""
        who: dict[str, list[str]] = {}
        for reaction in self.reactions.all():
            who.setdefault(reaction.emoji, []).append(reaction.user.name)
        return [(emoji, len(names), ", ".join(names)) for emoji, names in who.items()]


class Note(models.Model):
    """A person's private notepad in one room: nobody else can read it, staff included."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    body = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    # Bumped by every save; a save based on an older version is refused, not merged.
    version = models.PositiveIntegerField(default=0)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "user"], name="note_one_per_person_per_room"),
        ]

    def __str__(self) -> str:
        return f"Note of {self.user_id} in {self.room_id}"


class Mention(models.Model):
    """Someone @mentioned in a message: feeds the separate mention count beside unread."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="mentions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "user"], name="mention_unique_user"),
        ]
        indexes = [models.Index(fields=["user", "message"], name="mention_user_message")]

    def __str__(self) -> str:
        return f"@{self.user_id} in {self.message_id}"


class Reaction(models.Model):
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reactions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    emoji = models.CharField(max_length=32)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "user", "emoji"], name="reaction_unique_user_emoji"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.emoji} by {self.user_id} on {self.message_id}"


class Gif(models.Model):
    """A GIF in the built-in library that /giphy searches when no GIPHY key is set."""

    title = models.CharField(max_length=200)
    # Space-separated words /giphy matches against.
    keywords = models.CharField(max_length=500)
    image = models.FileField(upload_to="gifs/")
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.title
