"""Every write to rooms, memberships and messages.

Each `do_*` checks permission, writes in one transaction and publishes its live event on commit.
Pages, websockets, email replies, commands and tasks all come through here.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from datetime import timedelta
from functools import partial

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import User
from notifications import dispatch as notifications_dispatch

from . import events, files, links
from .formatting import MAX_MESSAGE_LENGTH, render_message, render_notepad
from .fragments import message_html, remember_message_html, room_item_html
from .models import (
    Attachment,
    Gif,
    Link,
    Membership,
    Mention,
    Message,
    MessageKind,
    Note,
    Reaction,
    Role,
    Room,
    RoomKind,
    Upload,
    UploadChunk,
    direct_key,
)
from .queries import (
    access_membership,
    in_address_book,
    known_empty,
    mentionable,
    room_for_event,
    room_with_last,
    unread_counts,
)

MAX_TITLE_LENGTH = 200


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def check_body(body: str) -> str:
    body = normalize_newlines(body).strip()
    if not body:
        raise ValidationError("A message cannot be empty.")
    if len(body) > MAX_MESSAGE_LENGTH:
        raise ValidationError(
            f"A message can be at most {MAX_MESSAGE_LENGTH:,} characters; "
            f"this one has {len(body):,}."
        )
    return body


def check_title(title: str) -> str:
    title = " ".join(title.split())
    if not title:
        raise ValidationError("A room needs a title.")
    if len(title) > MAX_TITLE_LENGTH:
        raise ValidationError(f"A room title can be at most {MAX_TITLE_LENGTH} characters.")
    return title


def check_writable(room: Room) -> None:
    if room.is_archived:
        raise ValidationError("This room is archived and read-only. Unarchive it to write here.")


# Rendered mentions carry the username; user text cannot forge this markup (it is escaped).
_RENDERED_MENTION = re.compile(r'<span class="mention" data-username="([^"]+)">')


def _record_mentions(message: Message, *, new: bool = False) -> None:
    usernames = set(_RENDERED_MENTION.findall(message.body_html))
    if not new:
        Mention.objects.filter(message=message).delete()
    if usernames:
        people = User.objects.filter(
            username__in=usernames, memberships__room_id=message.room_id
        ).exclude(pk=message.sender_id)
        Mention.objects.bulk_create(Mention(message=message, user=p) for p in people)


def _publish_room_updated(room: Room, *, joining: Iterable[int] = ()) -> None:
    """Update the room's entry in every member's list; `joining` members start listening first.

    Joiners get the entry through their own group: they are not subscribed to the room yet.
    """
    room = room_for_event(room.pk)
    event: events.RoomEvent = {
        "type": "room.updated",
        "room": room.pk,
        "html": room_item_html(room),
        "ts": events.now_ts(),
    }
    joining = list(joining)
    for user_id in joining:
        events.control_on_commit(user_id, {"type": "room.join", "room": room.pk})
    events.publish_on_commit(event, room_id=room.pk)
    if joining:
        events.publish_on_commit(event, user_ids=joining)


def publish_rename(user: User) -> None:
    """Show a person's new name on every open page of the people they share a room with, and
    their own: on their messages, in member lists, as a direct room's name (its list entry)."""
    event: events.PersonRenamedEvent = {
        "type": "person.renamed",
        "user": user.pk,
        "name": user.name,
        "ts": events.now_ts(),
    }
    rooms = Room.objects.filter(memberships__user=user)
    for room_id in rooms.values_list("pk", flat=True):
        events.publish_on_commit(event, room_id=room_id)
    events.publish_on_commit(event, user_ids=[user.pk])
    for room in rooms.filter(kind=RoomKind.DIRECT):
        _publish_room_updated(room)


def _publish_message(
    message: Message, kind: str, *, list_changed: bool, prev: int = 0, room: Room | None = None
) -> None:
    """Publish the message's fragment; with `list_changed`, also the room's list entry, from
    `room` (the room loaded by a send, whose last message this now is) or read afresh."""
    room_html = ""
    if list_changed and room is not None:
        room_html = room_item_html(room_with_last(room, message))
    elif list_changed:
        room_html = room_item_html(room_for_event(message.room_id))
    message.rendered_html = message_html(message)
    remember_message_html(message)
    event: events.MessageEvent = {
        "type": kind,  # type: ignore[typeddict-item]
        "room": message.room_id,
        "id": message.pk,
        "sender": message.sender_id,
        "html": message.rendered_html,
        "room_html": room_html,
        "prev": prev,
        "ts": events.now_ts(),
    }
    events.publish_on_commit(event, room_id=message.room_id)


@transaction.atomic
def do_create_room(
    owner: User,
    *,
    kind: str,
    title: str = "",
    members: Iterable[User],
    contract_active: bool = False,
) -> Room:
    """Create a room owned by `owner`; for a direct room, return the pair's existing one."""
    others = {m.pk: m for m in members if m.pk != owner.pk}
    for person in others.values():
        if not in_address_book(owner, person):
            raise ValidationError(f"{person.name} is not in your address book.")
    if kind not in RoomKind.values:
        raise ValidationError(f"Unknown room kind {kind!r}.")
    if kind == RoomKind.DIRECT:
        if len(others) != 1:
            raise ValidationError("A direct conversation is between exactly two people.")
        key = direct_key(owner.pk, next(iter(others)))
        existing = Room.objects.filter(direct_key=key).first()
        if existing is not None:
            return existing
        title = ""
    else:
        title = check_title(title)
        key = None

    now = timezone.now()
    try:
        with transaction.atomic():
            room = Room.objects.create(
                kind=kind,
                title=title,
                last_activity=now,
                direct_key=key,
                contract_active=contract_active and kind == RoomKind.CONTRACT,
            )
    except IntegrityError:
        # Both people opened the conversation at the same moment: use the one that won.
        return Room.objects.get(direct_key=key)
    Membership.objects.create(room=room, user=owner, role=Role.OWNER)
    Membership.objects.bulk_create(
        Membership(room=room, user=person, role=Role.MEMBER) for person in others.values()
    )
    _publish_room_updated(room, joining=[owner.pk, *others])
    for person in others:
        transaction.on_commit(
            partial(notifications_dispatch.member_added, room.pk, person, owner.pk)
        )
    return room


def do_open_direct(user: User, *, other: User) -> Room:
    return do_create_room(user, kind=RoomKind.DIRECT, members=[other])


@transaction.atomic
def do_rename_room(actor: User, *, room: Room, title: str) -> None:
    access_membership(actor, room.pk, min_role=Role.OWNER)
    if room.is_direct:
        raise ValidationError("A direct conversation has no title to change.")
    room.title = check_title(title)
    room.save(update_fields=["title"])
    _publish_room_updated(room)


@transaction.atomic
def do_invite_member(actor: User, *, room: Room, user: User) -> Membership:
    access_membership(actor, room.pk, min_role=Role.ADMIN)
    if room.is_direct:
        raise ValidationError("A direct conversation is for two people; start a group room.")
    if Membership.objects.filter(room=room, user=user).exists():
        raise ValidationError(f"{user.name} is already in this room.")
    if not in_address_book(actor, user):
        raise ValidationError(f"{user.name} is not in your address book.")
    membership = Membership.objects.create(room=room, user=user, role=Role.MEMBER)
    _publish_room_updated(room, joining=[user.pk])
    transaction.on_commit(partial(notifications_dispatch.member_added, room.pk, user.pk, actor.pk))
    return membership


@transaction.atomic
def do_remove_member(actor: User, *, room: Room, user: User) -> None:
    if actor.pk == user.pk:
        do_leave_room(actor, room=room)
        return
    mine = access_membership(actor, room.pk, min_role=Role.ADMIN)
    theirs = Membership.objects.select_for_update().filter(room=room, user=user).first()
    if theirs is None:
        raise ValidationError(f"{user.name} is not in this room.")
    if theirs.role >= mine.role:
        raise PermissionDenied(f"A room {mine.get_role_display().lower()} cannot remove them.")
    theirs.delete()
    _after_departure(room, user)


@transaction.atomic
def do_leave_room(user: User, *, room: Room) -> None:
    mine = Membership.objects.select_for_update().filter(room=room, user=user).first()
    if mine is None:
        raise ValidationError("You are not in this room.")
    mine.delete()
    if mine.role == Role.OWNER:
        heir = (
            Membership.objects.filter(room=room)
            .order_by("-role", "joined", "id")
            .select_for_update()
            .first()
        )
        if heir is not None:
            heir.role = Role.OWNER
            heir.save(update_fields=["role"])
    _after_departure(room, user)


def _after_departure(room: Room, user: User) -> None:
    from .calls import do_leave_calls_of_member  # calls.py builds on this module

    do_leave_calls_of_member(user, room=room)
    removed: events.RoomRemovedEvent = {
        "type": "room.removed",
        "room": room.pk,
        "ts": events.now_ts(),
    }
    events.leave_room_on_commit(user.pk, room.pk)
    events.publish_on_commit(removed, user_ids=[user.pk])
    _publish_room_updated(room)


@transaction.atomic
def do_set_role(actor: User, *, room: Room, user: User, role: Role) -> None:
    access_membership(actor, room.pk, min_role=Role.OWNER)
    if role not in (Role.ADMIN, Role.MEMBER):
        raise ValidationError("A member can be made an Admin or a Member.")
    theirs = Membership.objects.select_for_update().filter(room=room, user=user).first()
    if theirs is None:
        raise ValidationError(f"{user.name} is not in this room.")
    if theirs.role == Role.OWNER:
        raise ValidationError("The owner's role cannot be changed.")
    theirs.role = role
    theirs.save(update_fields=["role"])
    _publish_room_updated(room)


class SignedOut(PermissionDenied):
    """The sender's account was deactivated after their socket or request was let in."""


@transaction.atomic
def do_send_message(
    sender: User,
    *,
    room: Room | int,
    body: str,
    gif_url: str = "",
    gif_title: str = "",
    kind: MessageKind = MessageKind.USER,
    attachments: Sequence[int] = (),
    client_token: str = "",
) -> Message:
    """Post a message to `room` (a room or its id; the sender's membership is checked here,
    under the room's lock); `attachments` are ids of the sender's finished uploads in it.

    A `client_token` the sender already used returns the message stored with it, unchanged
    and not published again: the composer retries a failed request with the same token.
    """
    client_token = check_client_token(client_token)
    # Locked from here to the commit (see _post): checked and written under the same lock.
    room_id = room if isinstance(room, int) else room.pk
    membership = access_membership(sender, room_id, lock_room=True, with_user=True)
    # The sender as stored now, read with the lock: a socket's person may have been renamed
    # (the message shows the new name) or deactivated since the socket opened.
    sender, room = membership.user, membership.room
    if not sender.is_active:
        raise SignedOut("This account can no longer send messages.")
    check_writable(room)
    to_attach = _check_attachments(sender, room, attachments)
    # A message of files alone needs no text.
    body = check_body(body) if body.strip() or not to_attach else ""
    message = _post(
        sender,
        room,
        body,
        kind=kind,
        gif_url=gif_url,
        gif_title=gif_title,
        attachments=to_attach,
        client_token=client_token,
        prev=room.last_message_id or 0,
    )
    if getattr(message, "retried", False):
        return message
    transaction.on_commit(partial(notifications_dispatch.message_sent, message.room_id))
    return message


CLIENT_TOKEN = re.compile(r"[A-Za-z0-9_-]{8,64}")


def check_client_token(token: object) -> str:
    if token == "":
        return ""
    if not isinstance(token, str) or not CLIENT_TOKEN.fullmatch(token):
        raise ValidationError(
            "A message's client token is 8 to 64 letters, digits, dashes or underscores."
        )
    return token


def _create_once(sender: User, room: Room, client_token: str, **fields) -> Message:
    """Message.objects.create, or the message this sender already stored with `client_token`
    (marked `retried`), also when a concurrent request with the same token wins the race."""
    if not client_token:
        return Message.objects.create(room=room, sender=sender, **fields)
    try:
        with transaction.atomic():
            return Message.objects.create(
                room=room, sender=sender, client_token=client_token, **fields
            )
    except IntegrityError:
        earlier = Message.objects.get(sender=sender, client_token=client_token)
    earlier.sender = sender
    if earlier.room_id != room.pk:
        raise ValidationError("That client token was already used for a message elsewhere.")
    earlier.retried = True
    return earlier


def _post(
    sender: User,
    room: Room,
    body: str,
    *,
    kind: MessageKind,
    gif_url: str = "",
    gif_title: str = "",
    attachments: Sequence[Attachment] = (),
    client_token: str = "",
    prev: int | None = None,
) -> Message:
    """Store and publish a message whose sender and text were already checked.

    `prev` is the room's last message id, read by a caller that already holds the room's row
    lock (access_membership's `lock_room`); without it the lock is taken here.
    """
    # Sends to one room take turns from the lock to the commit, so that a room's messages
    # commit in id order and each knows its predecessor: a tab that never saw `prev` missed a
    # frame.
    if prev is None:
        prev = (
            Room.objects.select_for_update(no_key=True)
            .filter(pk=room.pk)
            .values_list("last_message_id", flat=True)
            .get()
        )
    message = _create_once(
        sender,
        room,
        client_token,
        kind=kind,
        body=body,
        # Only a message with an "@" can mention anyone: skip loading the members otherwise.
        body_html=render_message(body, mentions=mentionable(room) if "@" in body else None),
        gif_url=gif_url,
        gif_title=gif_title[:200],
    )
    if getattr(message, "retried", False):
        return message
    _record_mentions(message, new=True)
    _attach_files(message, attachments)
    linked = _record_links(message, new=True)
    # A new message has no reactions yet, and these files and links only: the fragment about
    # to be rendered need not ask the database for what was just written.
    known_empty([message], "reactions")
    if not attachments:
        known_empty([message], "attachments")
    if not linked:
        known_empty([message], "links")
    Room.objects.filter(pk=room.pk).update(last_activity=message.created, last_message=message)
    # Your own message is read by you.
    Membership.objects.filter(room=room, user=sender).update(
        last_read_id=Greatest(F("last_read_id"), message.pk)
    )
    _publish_message(message, "message.new", list_changed=True, prev=prev or 0, room=room)
    return message


def _lock_own_message(actor: User, message: Message) -> Message:
    locked = access_message_for_write(actor, message)
    if locked.sender_id != actor.pk:
        raise PermissionDenied("You can only change your own messages.")
    return locked


@transaction.atomic
def do_edit_message(editor: User, *, message: Message, body: str) -> Message:
    message = _lock_own_message(editor, message)
    body = check_body(body)
    if body == message.body:
        return message
    message.body = body
    message.body_html = render_message(body, mentions=mentionable(message.room))
    message.edited = timezone.now()
    message.save(update_fields=["body", "body_html", "edited", "changed"])
    _record_mentions(message)
    _record_links(message)
    is_last = message.room.last_message_id == message.pk
    _publish_message(message, "message.changed", list_changed=is_last)
    return message


@transaction.atomic
def do_delete_message(actor: User, *, message: Message) -> Message:
    return _erase(_lock_own_message(actor, message))


@transaction.atomic
def do_remove_message(staff: User, *, message: Message) -> Message:
    """Staff take a message down for everyone (a report's "Remove message")."""
    if not staff.is_staff:
        raise PermissionDenied("Only staff can remove other people's messages.")
    message = (
        Message.objects.select_for_update().select_related("room", "sender").get(pk=message.pk)
    )
    if message.is_deleted:
        return message
    return _erase(message)


def _erase(message: Message) -> Message:
    message.body = ""
    message.body_html = ""
    message.gif_url = ""
    message.deleted = timezone.now()
    message.save(update_fields=["body", "body_html", "gif_url", "deleted", "changed"])
    Mention.objects.filter(message=message).delete()
    is_last = message.room.last_message_id == message.pk
    _publish_message(message, "message.changed", list_changed=is_last)
    return message


@transaction.atomic
def do_end_contract(actor: User, *, room: Room) -> None:
    """End a contract room's contract (its owner, or staff reviewing a report)."""
    if not actor.is_staff:
        room = access_membership(actor, room.pk, min_role=Role.OWNER).room
    room = Room.objects.select_for_update().get(pk=room.pk)
    if room.kind != RoomKind.CONTRACT:
        raise ValidationError("Only contract rooms have a contract to end.")
    if not room.contract_active:
        return
    room.contract_active = False
    room.save(update_fields=["contract_active"])
    _post(actor, room, "The contract was ended.", kind=MessageKind.SYSTEM)
    _publish_room_updated(room)


def _publish_read_state(membership: Membership) -> None:
    unread, mentions = unread_counts(membership)
    event: events.RoomReadEvent = {
        "type": "room.read",
        "room": membership.room_id,
        "last_read_id": membership.last_read_id,
        "unread": unread,
        "mentions": mentions,
        "ts": events.now_ts(),
    }
    events.publish_on_commit(event, user_ids=[membership.user_id])


@transaction.atomic
def do_mark_read(user: User, *, room: Room, up_to: int) -> None:
    """Move the read pointer forward to `up_to`; every tab of the user clears the count."""
    updated = Membership.objects.filter(room=room, user=user, last_read_id__lt=up_to).update(
        last_read_id=up_to
    )
    if updated:
        # What the event needs of the membership is known: no need to read it back.
        _publish_read_state(Membership(room=room, user=user, last_read_id=up_to))


@transaction.atomic
def do_mark_unread(user: User, *, message: Message) -> None:
    """Set the read pointer just before `message`: the room reads as unread from there."""
    membership = access_membership(user, message.room_id)
    membership.last_read_id = message.pk - 1
    membership.save(update_fields=["last_read_id"])
    _publish_read_state(membership)


def _set_membership_flag(user: User, room: Room, **flags: bool) -> Membership:
    membership = access_membership(user, room.pk)
    for name, value in flags.items():
        setattr(membership, name, value)
    membership.save(update_fields=list(flags))
    event: events.MembershipEvent = {
        "type": "membership.changed",
        "room": room.pk,
        "favorite": membership.favorite,
        "hidden": membership.hidden,
        "ts": events.now_ts(),
    }
    events.publish_on_commit(event, user_ids=[user.pk])
    return membership


@transaction.atomic
def do_set_favorite(user: User, *, room: Room, favorite: bool) -> Membership:
    return _set_membership_flag(user, room, favorite=favorite)


@transaction.atomic
def do_set_hidden(user: User, *, room: Room, hidden: bool) -> Membership:
    return _set_membership_flag(user, room, hidden=hidden)


@transaction.atomic
def do_archive_room(actor: User, *, room: Room) -> None:
    room = access_membership(actor, room.pk).room
    # The kind comes first: nobody can archive a direct room, so say that rather than "admins".
    if not room.can_be_archived:
        raise ValidationError(
            f"{room.get_kind_display()} rooms cannot be archived; hide it from your list instead."
        )
    access_membership(actor, room.pk, min_role=Role.ADMIN)
    if room.is_archived:
        return
    room.archived = timezone.now()
    room.save(update_fields=["archived"])
    _publish_room_updated(room)


@transaction.atomic
def do_unarchive_room(actor: User, *, room: Room) -> None:
    room = access_membership(actor, room.pk, min_role=Role.ADMIN).room
    if not room.is_archived:
        return
    room.archived = None
    room.save(update_fields=["archived"])
    _publish_room_updated(room)


def archive_inactive_rooms(*, inactive_days: int, dry_run: bool = False) -> list[Room]:
    """Archive group rooms with no message in `inactive_days` days, as their owner.

    For the scheduled `archive_rooms` command; running it twice archives nothing new.
    """
    cutoff = timezone.now() - timedelta(days=inactive_days)
    stale = list(
        Room.objects.filter(
            kind=RoomKind.GROUP, archived__isnull=True, last_activity__lt=cutoff
        ).order_by("last_activity")
    )
    if dry_run:
        return stale
    archived = []
    for room in stale:
        owner = Membership.objects.filter(room=room, role=Role.OWNER).select_related("user").first()
        if owner is not None:
            do_archive_room(owner.user, room=room)
            archived.append(room)
    return archived


@transaction.atomic
def do_toggle_reaction(user: User, *, message: Message, emoji: str) -> bool:
    """Add `emoji` from `user` to the message, or take it back; True when it was added."""
    message = access_message_for_write(user, message)
    emoji = emoji.strip()
    if not emoji or len(emoji) > 32:
        raise ValidationError("Pick an emoji to react with.")
    removed, _ = Reaction.objects.filter(message=message, user=user, emoji=emoji).delete()
    if not removed:
        Reaction.objects.create(message=message, user=user, emoji=emoji)
    Message.objects.filter(pk=message.pk).update(changed=timezone.now())
    message.refresh_from_db()
    _publish_message(message, "message.changed", list_changed=False)
    return not removed


def access_message_for_write(user: User, message: Message) -> Message:
    locked = Message.objects.select_for_update().select_related("room", "sender").get(pk=message.pk)
    access_membership(user, locked.room_id)
    check_writable(locked.room)
    if locked.is_deleted:
        raise ValidationError("This message was deleted.")
    return locked


@transaction.atomic
def do_add_library_gif(*, title: str, keywords: str, data: bytes) -> Gif:
    """Add a GIF to the built-in /giphy library (staff use Django admin, which lands here too)."""
    from django.core.files.base import ContentFile
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "GIF":
                raise ValidationError("Only GIF images can go in the GIF library.")
            width, height = image.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise ValidationError("That file is not a readable GIF.") from None
    gif = Gif(title=title.strip()[:200], keywords=" ".join(keywords.lower().split())[:500])
    gif.width, gif.height = width, height
    gif.image.save(f"{slugify(gif.title) or 'gif'}.gif", ContentFile(data), save=False)
    gif.save()
    return gif


MAX_NOTE_BYTES = 100 * 1024


@transaction.atomic
def do_save_note(user: User, *, room: Room, body: str, version: int) -> Note:
    """Save the user's notepad in `room`, if `version` is the one they started from.

    Two tabs editing at once: the second save is refused with a message, never merged silently.
    """
    room = access_membership(user, room.pk).room
    size = len(body.encode())
    if size > MAX_NOTE_BYTES:
        raise ValidationError(
            f"A notepad holds at most 100 KB; this is {size / 1024:.0f} KB. Nothing was saved."
        )
    note, _ = Note.objects.select_for_update().get_or_create(room=room, user=user)
    if note.version != version:
        raise NoteConflict(note)
    note.body = body
    note.body_html = render_notepad(body)
    note.version += 1
    note.save()
    return note


class NoteConflict(ValidationError):
    def __init__(self, note: Note) -> None:
        self.note = note
        super().__init__(
            "This notepad was changed in another tab. Copy your text, reload the notepad, "
            "and paste what you need."
        )


# Files & Links -------------------------------------------------------------------------------


def _check_attachments(sender: User, room: Room, ids: Sequence[int]) -> list[Attachment]:
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    if len(wanted) > files.MAX_ATTACHMENTS_PER_MESSAGE:
        raise ValidationError(
            f"A message can carry at most {files.MAX_ATTACHMENTS_PER_MESSAGE} files."
        )
    ready = Attachment.objects.select_for_update().filter(
        pk__in=wanted,
        uploader_id=sender.pk,
        room_id=room.pk,
        message__isnull=True,
        deleted__isnull=True,
    )
    found = {attachment.pk: attachment for attachment in ready}
    if len(found) != len(wanted):
        raise ValidationError(
            "A file is not ready to send: it is still uploading, was removed, or was sent already."
        )
    return [found[pk] for pk in wanted]


def _attach_files(message: Message, attachments: Sequence[Attachment]) -> None:
    if attachments:
        Attachment.objects.filter(pk__in=[a.pk for a in attachments]).update(message=message)


def _record_links(message: Message, *, new: bool = False) -> int:
    """List the URLs linked in the message for Files & Links (a new message has none yet).

    Returns how many links were added."""
    urls = links.extract_urls(message.body_html)
    known: set[str] = set()
    if not new:
        Link.objects.filter(message=message).exclude(url__in=urls).delete()
        known = set(Link.objects.filter(message=message).values_list("url", flat=True))
    fresh = []
    for url in urls:
        if url in known:
            continue
        cloud = links.cloud_file(url)
        fresh.append(
            Link(
                room_id=message.room_id,
                message=message,
                sender_id=message.sender_id,
                url=url,
                provider=cloud.provider if cloud else "",
                title=cloud.title if cloud else "",
                created=message.edited or message.created,
            )
        )
    if fresh:
        Link.objects.bulk_create(fresh, ignore_conflicts=True)
    return len(fresh)


def do_create_upload(
    user: User, *, room: Room, name: str, size: int, declared_type: str = ""
) -> Upload:
    """Start a chunked upload into `room`; a file over the limit is refused from its size alone."""
    room = access_membership(user, room.pk).room
    check_writable(room)
    name = files.clean_filename(name)
    files.check_size(name, size)
    key = files.new_storage_name("files")
    multipart_id = files.chunk_store().begin(key, size)
    return Upload.objects.create(
        room=room,
        uploader=user,
        name=name,
        size=size,
        declared_type=declared_type[:100],
        chunk_size=files.chunk_size(),
        store_key=key,
        multipart_id=multipart_id,
    )


class _HeadKeeper:
    """Passes reads through, keeping the first bytes (to sniff the file's type at finish)."""

    def __init__(self, source) -> None:
        self.source = source
        self.head = b""

    def read(self, size: int = -1) -> bytes:
        block = self.source.read(size)
        if len(self.head) < files.HEAD_BYTES:
            self.head += block[: files.HEAD_BYTES - len(self.head)]
        return block


def check_chunk(upload: Upload, index: int, length: int) -> None:
    """Refuse a chunk from its index and declared length, before any of its bytes is read."""
    if not 0 <= index < upload.chunk_count:
        raise ValidationError(
            f"Chunk {index} is beyond the end of {upload.name} "
            f"({upload.size:,} bytes in {upload.chunk_count} chunks)."
        )
    expected = upload.chunk_length(index)
    if length > expected:
        raise files.FileTooLarge(
            f"Chunk {index} of {upload.name} is {length:,} bytes; it must be {expected:,}."
        )
    if length != expected:
        raise ValidationError(
            f"Chunk {index} of {upload.name} is {length:,} bytes; it must be {expected:,}."
        )


def do_store_chunk(user: User, *, upload: Upload, index: int, source, length: int) -> bool:
    """Store chunk `index` of the user's upload, read from `source`; False if it was already in.

    The bytes are copied to storage outside any transaction (a database lock is not held for
    the length of a network copy); the chunk is recorded once they are all there. A chunk sent
    twice, or after the upload finished, is not written again.
    """
    upload = files.access_upload(user, upload.pk)
    check_chunk(upload, index, length)
    if upload.attachment_id is not None:
        return False
    if UploadChunk.objects.filter(upload=upload, index=index).exists():
        return False
    reader = _HeadKeeper(source) if index == 0 else source
    etag = files.chunk_store().write(upload, index, reader, length)
    with transaction.atomic():
        if not Upload.objects.select_for_update().filter(pk=upload.pk).exists():
            raise ValidationError("This upload was cancelled.")
        _, created = UploadChunk.objects.get_or_create(
            upload=upload, index=index, defaults={"etag": etag}
        )
        if index == 0 and created:
            Upload.objects.filter(pk=upload.pk).update(head=reader.head)
    return created


@transaction.atomic
def do_finish_upload(user: User, *, upload: Upload) -> Attachment:
    """Put the chunks together into a file ready to send; finishing twice gives the same file."""
    upload = files.access_upload(user, upload.pk, lock=True)
    if upload.attachment_id is not None:
        return Attachment.objects.get(pk=upload.attachment_id)
    etags = dict(UploadChunk.objects.filter(upload=upload).values_list("index", "etag"))
    missing = upload.chunk_count - len(etags)
    if missing:
        raise ValidationError(
            f"{missing} of {upload.chunk_count} chunks of {upload.name} have not arrived yet."
        )
    stored = files.assemble(upload, etags)
    attachment = Attachment.objects.create(
        room_id=upload.room_id,
        uploader=user,
        name=upload.name,
        size=upload.size,
        content_type=files.sniff(bytes(upload.head)),
        file=stored,
    )
    upload.attachment = attachment
    upload.save(update_fields=["attachment"])
    UploadChunk.objects.filter(upload=upload).delete()
    if attachment.content_type in files.THUMBNAIL_TYPES:
        transaction.on_commit(partial(_queue_thumbnail, attachment.pk))
    return attachment


def _queue_thumbnail(attachment_id: int) -> None:
    from .tasks import make_thumbnail

    make_thumbnail.delay(attachment_id)


@transaction.atomic
def do_cancel_upload(user: User, *, upload: Upload) -> None:
    """Stop an upload and drop what arrived; a finished file not sent yet is removed too."""
    upload = files.access_upload(user, upload.pk, lock=True)
    attachment = upload.attachment
    if attachment is not None:
        if attachment.message_id is not None:
            raise ValidationError(
                f"{attachment.name} was sent already; delete it from Files & Links instead."
            )
        names = [attachment.file.name, attachment.thumbnail.name]
        attachment.delete()
        transaction.on_commit(partial(files.delete_stored, names))
    else:
        transaction.on_commit(partial(files.chunk_store().abort, upload))
    upload.delete()


def do_make_thumbnail(attachment_id: int) -> bool:
    """Give an image file its thumbnail (a Celery task's work; running it twice is harmless).

    Huge or broken images get none. A message already showing the file is updated live.
    """
    attachment = Attachment.objects.filter(pk=attachment_id, deleted__isnull=True).first()
    if (
        attachment is None
        or attachment.thumbnail
        or attachment.content_type not in files.THUMBNAIL_TYPES
        or attachment.size > files.THUMBNAIL_MAX_FILE_BYTES
    ):
        return False
    try:
        with attachment.file.open("rb") as source:
            thumbnail = files.render_thumbnail(source)
    except FileNotFoundError:
        return False
    if thumbnail is None:
        return False
    name = files.save_thumbnail(thumbnail)
    with transaction.atomic():
        locked = (
            Attachment.objects.select_for_update()
            .filter(pk=attachment_id, deleted__isnull=True, thumbnail="")
            .first()
        )
        if locked is None:
            transaction.on_commit(partial(files.delete_stored, [name]))
            return False
        locked.thumbnail = name
        locked.width, locked.height = thumbnail.width, thumbnail.height
        locked.save(update_fields=["thumbnail", "width", "height"])
        if locked.message_id is not None:
            _publish_file_change(locked.message_id)
    return True


def _publish_file_change(message_id: int) -> None:
    Message.objects.filter(pk=message_id).update(changed=timezone.now())
    message = Message.objects.select_related("room", "sender").get(pk=message_id)
    _publish_message(message, "message.changed", list_changed=False)


@transaction.atomic
def do_delete_attachment(actor: User, *, attachment: Attachment) -> Attachment:
    """Delete a shared file (its sharer, or the room's owner or an admin): the bytes leave
    storage once this commits, and the message says "File deleted" in every open tab."""
    attachment, membership = files.access_attachment(actor, attachment.pk)
    if not files.can_delete(actor, attachment, membership):
        raise PermissionDenied(
            "Only the person who shared a file, or the room's owner or an admin, can delete it."
        )
    locked = Attachment.objects.select_for_update().get(pk=attachment.pk)
    if locked.is_deleted:
        return locked
    names = [locked.file.name, locked.thumbnail.name]
    locked.deleted = timezone.now()
    locked.file = ""
    locked.thumbnail = ""
    locked.save(update_fields=["deleted", "file", "thumbnail"])
    transaction.on_commit(partial(files.delete_stored, names))
    if locked.message_id is not None:
        _publish_file_change(locked.message_id)
    return locked


def do_purge_stale_files() -> int:
    """Remove what nobody will use: uploads never finished and files never sent (after
    UPLOAD_EXPIRY_HOURS), and the bytes of files whose message was deleted. For a schedule."""
    purged = 0
    stale = Upload.objects.filter(created__lt=files.expiry_cutoff()).select_related("attachment")
    for upload in stale:
        with transaction.atomic():
            attachment = upload.attachment
            if attachment is None:
                transaction.on_commit(partial(files.chunk_store().abort, upload))
                purged += 1
            elif attachment.message_id is None:
                names = [attachment.file.name, attachment.thumbnail.name]
                attachment.delete()
                transaction.on_commit(partial(files.delete_stored, names))
                purged += 1
            upload.delete()
    orphaned = Attachment.objects.filter(message__deleted__isnull=False, deleted__isnull=True)
    for attachment in orphaned:
        with transaction.atomic():
            names = [attachment.file.name, attachment.thumbnail.name]
            Attachment.objects.filter(pk=attachment.pk).update(
                deleted=timezone.now(), file="", thumbnail=""
            )
            transaction.on_commit(partial(files.delete_stored, names))
            purged += 1
    return purged
