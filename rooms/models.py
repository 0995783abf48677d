from __future__ import annotations

from html import unescape

import nh3
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


def direct_key(a: int, b: int) -> str:
    """The key that makes a pair of people share at most one direct room."""
    low, high = sorted((a, b))
    return f"{low}:{high}"


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
    # Chosen by the sender's tab for each message it sends: a retried request carrying the same
    # token gets the stored message back instead of posting it twice.
    client_token = models.CharField(max_length=64, blank=True, default="")
    # Set by the notifications worker once the message is in its recipients' email batches;
    # the periodic sweep queues any message whose task was lost (a killed worker, a Redis restart).
    emails_queued = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["room", "id"], name="message_room_id"),
            models.Index(
                fields=["created"],
                condition=models.Q(emails_queued=False),
                name="message_emails_not_queued",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["sender", "client_token"],
                condition=~models.Q(client_token=""),
                name="message_client_token_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sender} in {self.room_id}: {self.body[:40]}"

    def get_absolute_url(self) -> str:
        return f"{reverse('room', args=[self.room_id])}?around={self.pk}#msg-{self.pk}"

    @property
    def is_deleted(self) -> bool:
        return self.deleted is not None

    @property
    def preview(self) -> str:
        """The message as one line of plain text, as the conversation list shows it: what the
        rendered message reads, without its markup (emoji shortcodes already emoji)."""
        return " ".join(unescape(nh3.clean(self.body_html, tags=set())).split())

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


class Attachment(models.Model):
    """A file shared in a room: uploaded in chunks (an Upload), then attached to a message."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="attachments")
    # Empty until the message carrying it is sent; only the uploader sees it meanwhile.
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=255)
    size = models.BigIntegerField()
    # Sniffed from the first bytes at finish; what the browser declared is never used.
    content_type = models.CharField(max_length=100)
    file = models.FileField(max_length=500, blank=True)
    thumbnail = models.FileField(max_length=500, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    # Set when the sharer or a room admin deletes it: the bytes leave storage, the row stays so
    # the message can say "File deleted".
    deleted = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["room", "message"], name="attachment_room_message")]

    def __str__(self) -> str:
        return f"{self.name} in {self.room_id}"

    def get_absolute_url(self) -> str:
        return reverse("file_download", args=[self.pk])

    @property
    def is_deleted(self) -> bool:
        return self.deleted is not None

    @property
    def preview(self) -> str:
        """The message as one line of plain text, as the conversation list shows it: what the
        rendered message reads, without its markup (emoji shortcodes already emoji)."""
        return " ".join(unescape(nh3.clean(self.body_html, tags=set())).split())

    @property
    def kind(self) -> str:
        """The family of the file for its icon and preview: image, pdf, video, audio or file."""
        from .files import kind_of

        return kind_of(self.content_type)


class Upload(models.Model):
    """A file on its way up in chunks; finishing it makes an Attachment."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+")
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=255)
    size = models.BigIntegerField()
    declared_type = models.CharField(max_length=100, blank=True)
    chunk_size = models.PositiveIntegerField()
    # Where the chunks go until finished: a partial file, an S3 key or a folder of chunk objects.
    store_key = models.CharField(max_length=500)
    # The S3 multipart upload id, when storage is S3.
    multipart_id = models.CharField(max_length=1024, blank=True)
    # The first bytes of the file, kept when chunk 0 arrives, to sniff the type at finish.
    head = models.BinaryField(max_length=4096, blank=True, default=b"")
    attachment = models.OneToOneField(
        Attachment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Upload {self.pk} of {self.name}"

    @property
    def chunk_count(self) -> int:
        return -(-self.size // self.chunk_size)

    def chunk_length(self, index: int) -> int:
        return min(self.chunk_size, self.size - index * self.chunk_size)


class UploadChunk(models.Model):
    """One stored chunk of an Upload; a chunk sent twice is stored once."""

    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    # S3's ETag of the part, needed to complete a multipart upload.
    etag = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["index"]
        constraints = [
            models.UniqueConstraint(fields=["upload", "index"], name="upload_chunk_unique_index"),
        ]

    def __str__(self) -> str:
        return f"Chunk {self.index} of upload {self.upload_id}"


class CloudProvider(models.TextChoices):
    DROPBOX = "dropbox", "Dropbox"
    GOOGLE_DRIVE = "google_drive", "Google Drive"
    ONEDRIVE = "onedrive", "OneDrive"


class Link(models.Model):
    """A URL shared in a message, for the room's Files & Links panel."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="links")
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    url = models.CharField(max_length=2000)
    # Set for a cloud-drive share link, which the message shows as a file card.
    provider = models.CharField(max_length=16, choices=CloudProvider.choices, blank=True)
    # For a cloud-drive link: the file name read from the URL, or what kind of document it is.
    title = models.CharField(max_length=255, blank=True)
    created = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["message", "url"], name="link_unique_url_per_message"),
        ]
        indexes = [models.Index(fields=["room", "id"], name="link_room_id")]

    def __str__(self) -> str:
        return self.url


class CallKind(models.TextChoices):
    VOICE = "voice", "Voice"
    VIDEO = "video", "Video"


class Call(models.Model):
    """A voice or video call in a room: a mesh of browsers that signal through the websocket."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="calls")
    kind = models.CharField(max_length=8, choices=CallKind.choices)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    started_at = models.DateTimeField()
    # Set when the last participant leaves or someone ends it for everyone.
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["room"],
                condition=models.Q(ended_at__isnull=True),
                name="call_one_live_per_room",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} call {self.pk} in {self.room_id}"

    @property
    def is_live(self) -> bool:
        return self.ended_at is None


class CallParticipant(models.Model):
    """One person's seat in a call, held by the one websocket (tab) that joined."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # The seat's address in signaling frames ("to"/"from"); new for every join.
    peer_id = models.CharField(max_length=32, unique=True)
    # The Channels channel of the socket that joined: signaling for this seat goes only there.
    channel_name = models.CharField(max_length=200, db_index=True)
    joined_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)
    muted = models.BooleanField(default=False)
    camera = models.BooleanField(default=True)
    sharing_screen = models.BooleanField(default=False)
    recording = models.BooleanField(default=False)

    class Meta:
        ordering = ["joined_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["call", "user"],
                condition=models.Q(left_at__isnull=True),
                name="call_participant_one_seat_per_person",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in call {self.call_id}"
