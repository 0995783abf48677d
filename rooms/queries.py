"""Reads and access checks for rooms and messages.

`access_*` raise Http404 for what the user may not see, so a room's existence is never
revealed to an outsider, and PermissionDenied for what they may see but not change.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, Prefetch, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404

from accounts.models import Contact, User

from .models import Membership, Message, Role, Room, RoomKind


def access_membership(user: User, room_id: int, *, min_role: Role = Role.MEMBER) -> Membership:
    membership = (
        Membership.objects.select_related("room").filter(room_id=room_id, user_id=user.pk).first()
    )
    if membership is None:
        raise Http404("No such room.")
    if membership.role < min_role:
        raise PermissionDenied(f"Only a room {Role(min_role).label.lower()} may do that.")
    return membership


def access_room(user: User, room_id: int, *, min_role: Role = Role.MEMBER) -> Room:
    return access_membership(user, room_id, min_role=min_role).room


def access_message(user: User, message_id: int) -> Message:
    message = (
        Message.objects.select_related("room", "sender")
        .filter(pk=message_id, room__memberships__user_id=user.pk)
        .first()
    )
    if message is None:
        raise Http404("No such message.")
    return message


def is_member(user_id: int, room_id: int) -> bool:
    return Membership.objects.filter(room_id=room_id, user_id=user_id).exists()


def member_ids(room: Room) -> list[int]:
    return list(Membership.objects.filter(room=room).values_list("user_id", flat=True))


def room_members(room: Room) -> list[Membership]:
    return list(
        Membership.objects.filter(room=room).select_related("user").order_by("-role", "joined")
    )


def mentionable(room: Room) -> dict[str, str]:
    rows = User.objects.filter(memberships__room=room).values_list("username", "display_name")
    return {username.lower(): display or username for username, display in rows}


def _with_direct_members(rooms):
    direct = Membership.objects.filter(room__kind=RoomKind.DIRECT).select_related("user")
    return rooms.prefetch_related(Prefetch("memberships", queryset=direct, to_attr="direct_members"))


def room_list(user: User) -> list[Membership]:
    """The user's rooms, most recent activity first, each with its unread count.

    A fixed number of queries whatever the number of rooms.
    """
    unread = (
        Message.objects.filter(
            room=OuterRef("room_id"), id__gt=OuterRef("last_read_id"), deleted__isnull=True
        )
        .exclude(sender_id=user.pk)
        .order_by()
        .values("room")
        .annotate(n=Count("id"))
        .values("n")
    )
    memberships = (
        Membership.objects.filter(user_id=user.pk)
        .select_related("room__last_message__sender")
        .annotate(unread=Coalesce(Subquery(unread), 0))
        .order_by("-room__last_activity", "-room_id")
    )
    direct = Membership.objects.filter(room__kind=RoomKind.DIRECT).select_related("user")
    return list(
        memberships.prefetch_related(
            Prefetch("room__memberships", queryset=direct, to_attr="direct_members")
        )
    )


def room_for_event(room_id: int) -> Room:
    """A room loaded with what its conversation-list entry shows."""
    return _with_direct_members(Room.objects.select_related("last_message__sender")).get(
        pk=room_id
    )


def messages_before(room: Room, *, before: int | None = None, limit: int | None = None):
    """The page of messages just older than `before` (or the newest page), oldest first."""
    limit = limit or settings.MESSAGE_PAGE_SIZE
    qs = Message.objects.filter(room=room).select_related("sender").order_by("-id")
    if before is not None:
        qs = qs.filter(id__lt=before)
    page = list(qs[: limit + 1])
    has_more = len(page) > limit
    return list(reversed(page[:limit])), has_more


def catch_up(user: User, *, last_id: int, since: datetime | None) -> tuple[list[Message], bool]:
    """What a reconnecting tab missed: newer messages, and older ones edited or deleted since.

    Returns the messages in id order and whether there was more than the replay limit.
    """
    limit = settings.CATCH_UP_LIMIT
    rooms = Membership.objects.filter(user_id=user.pk).values("room_id")
    changed = Q(id__gt=last_id)
    if since is not None:
        changed |= Q(changed__gt=since)
    qs = (
        Message.objects.filter(changed, room_id__in=rooms)
        .select_related("sender")
        .order_by("id")
    )
    messages = list(qs[: limit + 1])
    return messages[:limit], len(messages) > limit


def address_book(user: User):
    """People the user shares a room with, plus people they added by hand."""
    my_rooms = Membership.objects.filter(user_id=user.pk).values("room_id")
    added = Contact.objects.filter(owner_id=user.pk).values("person_id")
    return (
        User.objects.filter(
            Q(memberships__room_id__in=my_rooms) | Q(pk__in=added), is_active=True
        )
        .exclude(pk=user.pk)
        .distinct()
        .order_by("display_name", "username")
    )


def in_address_book(user: User, person: User) -> bool:
    return address_book(user).filter(pk=person.pk).exists()


def direct_key(a: int, b: int) -> str:
    low, high = sorted((a, b))
    return f"{low}:{high}"
