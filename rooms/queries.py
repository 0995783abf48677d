"""Reads and access checks for rooms and messages.

`access_*` raise Http404 for what the user may not see, so a room's existence is never
revealed to an outsider, and PermissionDenied for what they may see but not change.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import (
    Count,
    Exists,
    OuterRef,
    Prefetch,
    Q,
    Subquery,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce
from django.http import Http404

from accounts.models import Contact, User
from moderation.queries import blockers_of, direct_rooms_blocked_for, is_direct_room_blocked_for

from . import presence
from .models import Attachment, Link, Membership, Message, Note, Reaction, Role, Room, RoomKind


def access_membership(
    user: User,
    room_id: int,
    *,
    min_role: Role = Role.MEMBER,
    lock_room: bool = False,
    with_user: bool = False,
) -> Membership:
    """The user's membership of the room, with the room; `lock_room` (inside a transaction)
    also locks the room's row until the commit, so the room read is the room written.
    `with_user` reads the person too, as stored now (`membership.user`), in the same query."""
    memberships = Membership.objects.select_related("room", *(["user"] if with_user else []))
    if lock_room:
        memberships = memberships.select_for_update(no_key=True, of=("room",))
    try:
        # get(), not first(): a membership is unique per room and person, and get() compiles
        # no ORDER BY (this runs on every request about a room).
        membership = memberships.get(room_id=room_id, user_id=user.pk)
    except Membership.DoesNotExist:
        raise Http404("No such room.") from None
    if membership.room.is_direct and is_direct_room_blocked_for(user.pk, membership.room):
        raise PermissionDenied("This conversation is unavailable.")
    if membership.role < min_role:
        raise PermissionDenied(f"Only a room {Role(min_role).label.lower()} may do that.")
    return membership


def access_room(user: User, room_id: int, *, min_role: Role = Role.MEMBER) -> Room:
    return access_membership(user, room_id, min_role=min_role).room


def with_reactions(messages):
    """Messages ready for the message fragment: sender, reactions, files and links loaded."""
    return messages.select_related("sender").prefetch_related(
        "reactions__user", "attachments", "links"
    )


def access_message(user: User, message_id: int) -> Message:
    message = (
        with_reactions(Message.objects.select_related("room"))
        .filter(pk=message_id, room__memberships__user_id=user.pk)
        .first()
    )
    if message is None:
        raise Http404("No such message.")
    if message.room.is_direct and is_direct_room_blocked_for(user.pk, message.room):
        raise PermissionDenied("This conversation is unavailable.")
    return message


def access_note(user: User, note_id: int) -> Note:
    """Only the person who wrote a note may read it; for anyone else it does not exist."""
    note = Note.objects.filter(
        pk=note_id, user_id=user.pk, room__memberships__user_id=user.pk
    ).first()
    if note is None:
        raise Http404("No such note.")
    return note


def note_for(user: User, room: Room) -> Note:
    """The user's note in the room, or an unsaved empty one (version 0)."""
    return Note.objects.filter(room=room, user_id=user.pk).first() or Note(room=room, user=user)


def member_ids(room: Room) -> list[int]:
    return list(Membership.objects.filter(room=room).values_list("user_id", flat=True))


def listening_room_ids(user_id: int) -> list[int]:
    """The rooms whose live events a person's tabs receive: theirs, less direct rooms whose
    other member blocked them."""
    rooms = Membership.objects.filter(user_id=user_id)
    # Most people are blocked by nobody: two plain queries cost half of the one with the
    # exclusion's subquery (every socket asks as it connects).
    if blockers_of(user_id).exists():
        rooms = rooms.exclude(room_id__in=direct_rooms_blocked_for(user_id))
    return list(rooms.values_list("room_id", flat=True))


def room_members(room: Room) -> list[Membership]:
    """Members, owner first, each with `.presence` (online, away or offline)."""
    members = list(
        Membership.objects.filter(room=room).select_related("user").order_by("-role", "joined")
    )
    states = presence.states([m.user_id for m in members])
    for member in members:
        member.presence = states[member.user_id]
    return members


def mentionable(room: Room) -> dict[str, str]:
    rows = User.objects.filter(memberships__room=room).values_list("username", "display_name")
    return {username.lower(): display or username for username, display in rows}


# What a person's name is made of (User.name), for lists that show many people's names.
NAME_FIELDS = ("username", "first_name", "last_name", "display_name")


def _with_direct_members(rooms: Iterable[Room]) -> None:
    """Load the two members of each direct room among `rooms` as `direct_members`: their
    names title the room. Other rooms are left alone (one query, none without a direct room)."""
    direct = [room for room in rooms if room.is_direct]
    if not direct:
        return  # every group room's message passes here: not even the queryset is built
    members = Membership.objects.select_related("user").only(
        "room_id", "user_id", *(f"user__{field}" for field in NAME_FIELDS)
    )
    prefetch_related_objects(
        direct, Prefetch("memberships", queryset=members, to_attr="direct_members")
    )


def _unread_subquery(user_id: int, *, mentions: bool):
    messages = Message.objects.filter(
        room=OuterRef("room_id"), id__gt=OuterRef("last_read_id"), deleted__isnull=True
    ).exclude(sender_id=user_id)
    if mentions:
        messages = messages.filter(mentions__user_id=user_id)
    counted = messages.order_by().values("room").annotate(n=Count("id")).values("n")
    return Coalesce(Subquery(counted), 0)


# The conversation list shows this many rooms at first and loads the rest as it is scrolled,
# so a page costs the same for someone in 10 rooms and someone in 500.
LIST_PAGE = 50

CATEGORIES = (
    ("favorites", "Favorites"),
    ("interviews", "Interviews"),
    ("rooms", "Rooms"),
    ("people", "People"),
)
CATEGORY_FILTERS = {
    "favorites": Q(favorite=True),
    "interviews": Q(favorite=False, room__kind=RoomKind.INTERVIEW),
    "rooms": Q(favorite=False, room__kind__in=[RoomKind.GROUP, RoomKind.CONTRACT]),
    "people": Q(favorite=False, room__kind=RoomKind.DIRECT),
}


@dataclass(frozen=True)
class ListCursor:
    """Where the next page of the list starts: after this room, in latest-activity order."""

    activity: datetime
    room_id: int

    def __str__(self) -> str:
        return f"{self.activity.isoformat()}~{self.room_id}"

    @classmethod
    def parse(cls, text: str) -> ListCursor:
        activity, _, room_id = text.partition("~")
        try:
            parsed = cls(datetime.fromisoformat(activity), int(room_id))
        except ValueError:
            raise ValidationError("That is not a place in the conversation list.") from None
        if parsed.activity.tzinfo is None or not 0 < parsed.room_id < 2**63:
            raise ValidationError("That is not a place in the conversation list.")
        return parsed

    def rooms_after(self) -> Q:
        return Q(room__last_activity__lt=self.activity) | Q(
            room__last_activity=self.activity, room_id__lt=self.room_id
        )


@dataclass(frozen=True)
class ListPage:
    memberships: list[Membership]
    # Where the next page starts, or None when this is the last one.
    next: ListCursor | None


# The columns a conversation-list entry shows (rooms/room_list.html#room_item), and what the
# list pages by. Reading only these takes about a fifth off the list query's CPU.
LISTED_FIELDS = (
    "room_id",
    "user_id",
    "last_read_id",
    "room__kind",
    "room__title",
    "room__last_activity",
    "room__archived",
    "room__last_message__sender_id",
    "room__last_message__body_html",
    "room__last_message__deleted",
    *(f"room__last_message__sender__{field}" for field in NAME_FIELDS),
)


def room_list(
    user: User,
    *,
    hidden: bool = False,
    category: str | None = None,
    after: ListCursor | None = None,
    limit: int | None = None,
) -> list[Membership]:
    """The user's listed rooms, most recent activity first, with unread and mention counts.

    Hidden and archived rooms stay out (or, with `hidden=True`, only hidden ones). `category`
    keeps one of CATEGORIES; `after` and `limit` page through the list. A fixed number of
    queries whatever the number of rooms.
    """
    order = ("-room__last_activity", "-room_id")
    listed = Membership.objects.filter(
        user_id=user.pk, hidden=hidden, room__archived__isnull=True
    ).exclude(room_id__in=direct_rooms_blocked_for(user.pk))
    if category is not None:
        listed = listed.filter(CATEGORY_FILTERS[category])
    if after is not None:
        listed = listed.filter(after.rooms_after())
    if limit is not None:
        # The page is chosen first, so the unread counts below are worked out for its rooms
        # only (SQLite would count them for every room before sorting).
        listed = Membership.objects.filter(pk__in=listed.order_by(*order).values("pk")[:limit])
    memberships = (
        listed.select_related("room__last_message__sender")
        .only(*LISTED_FIELDS)
        .annotate(
            unread=_unread_subquery(user.pk, mentions=False),
            unread_mentions=_unread_subquery(user.pk, mentions=True),
        )
        .order_by(*order)
    )
    memberships = list(memberships)
    _with_direct_members(membership.room for membership in memberships)
    return memberships


def room_page(
    user: User, *, category: str | None = None, after: ListCursor | None = None
) -> ListPage:
    """One page of the conversation list (LIST_PAGE rooms) and where the next one starts."""
    memberships = room_list(user, category=category, after=after, limit=LIST_PAGE + 1)
    if len(memberships) <= LIST_PAGE:
        return ListPage(memberships, None)
    last = memberships[LIST_PAGE - 1]
    return ListPage(memberships[:LIST_PAGE], ListCursor(last.room.last_activity, last.room_id))


def archived_rooms(user: User) -> list[Membership]:
    memberships = list(
        Membership.objects.filter(user_id=user.pk, room__archived__isnull=False)
        .select_related("room")
        .order_by("-room__archived")
    )
    _with_direct_members(membership.room for membership in memberships)
    return memberships


def categorized(user: User) -> list[tuple[str, str, ListPage]]:
    """The first page of each category of the list, in CATEGORIES order."""
    return [(key, label, room_page(user, category=key)) for key, label in CATEGORIES]


def unread_counts(membership: Membership) -> tuple[int, int]:
    """Unread messages and unread @mentions of the user in one room."""
    unread = Message.objects.filter(
        room_id=membership.room_id, id__gt=membership.last_read_id, deleted__isnull=True
    ).exclude(sender_id=membership.user_id)
    counts = unread.aggregate(
        unread=Count("id"), mentions=Count("id", filter=Q(mentions__user_id=membership.user_id))
    )
    return counts["unread"], counts["mentions"]


def room_with_last(room: Room, message: Message) -> Room:
    """`room` as its list entry shows it once `message` is its last, without reading it again
    (only a direct room's two members are fetched, for its name)."""
    room.last_message, room.last_activity = message, message.created
    _with_direct_members([room])
    return room


def room_for_event(room_id: int) -> Room:
    """A room loaded with what its conversation-list entry shows."""
    room = Room.objects.select_related("last_message__sender").get(pk=room_id)
    _with_direct_members([room])
    return room


# What the message fragment shows besides the row itself. A page fetches each kind only for the
# messages that have some, so a page of plain text is one query, and no page takes more than four.
PAGE_EXTRAS = {
    "reactions": Reaction.objects.select_related("user"),
    "attachments": Attachment.objects.all(),
    "links": Link.objects.all(),
}


def _page_query(messages):
    """Messages with their sender, flagged with which extras each one has."""
    flags = {
        f"has_{name}": Exists(extra.model.objects.filter(message=OuterRef("pk")))
        for name, extra in PAGE_EXTRAS.items()
    }
    return messages.select_related("sender").annotate(**flags)


def known_empty(messages: Iterable[Message], name: str) -> None:
    """Tell the message fragment that these messages have none of extra `name`: what
    prefetch_related leaves for an empty relation, without asking the database and without
    building a queryset per message (most of a page's CPU otherwise)."""
    # As prefetch_related_objects leaves a relation it found empty: a queryset already
    # evaluated, so the template's `.all` neither queries nor compiles any SQL.
    empty = PAGE_EXTRAS[name].none()
    empty._result_cache, empty._prefetch_done = [], True
    for message in messages:
        message.__dict__.setdefault("_prefetched_objects_cache", {})[name] = empty


def _load_extras(page: list[Message]) -> list[Message]:
    for name, extra in PAGE_EXTRAS.items():
        having = [message for message in page if getattr(message, f"has_{name}")]
        prefetch_related_objects(having, Prefetch(name, queryset=extra))
        known_empty((message for message in page if not getattr(message, f"has_{name}")), name)
    return page


def messages_before(room: Room, *, before: int | None = None, limit: int | None = None):
    """The page of messages just older than `before` (or the newest page), oldest first."""
    limit = limit or settings.MESSAGE_PAGE_SIZE
    qs = _page_query(Message.objects.filter(room=room)).order_by("-id")
    if before is not None:
        qs = qs.filter(id__lt=before)
    page = list(qs[: limit + 1])
    has_more = len(page) > limit
    return _load_extras(list(reversed(page[:limit]))), has_more


def messages_after(room: Room, *, after: int, limit: int | None = None):
    """The page of messages just newer than `after`, oldest first, and whether more follow."""
    limit = limit or settings.MESSAGE_PAGE_SIZE
    page = list(
        _page_query(Message.objects.filter(room=room, id__gt=after)).order_by("id")[: limit + 1]
    )
    return _load_extras(page[:limit]), len(page) > limit


def messages_around(room: Room, *, around: int):
    """A page centred on message `around`, for jumping to a search result or a link.

    Returns (messages, has_older, has_newer).
    """
    half = settings.MESSAGE_PAGE_SIZE // 2
    older, has_older = messages_before(room, before=around + 1, limit=half)
    newer, has_newer = messages_after(room, after=around, limit=half)
    return older + newer, has_older, has_newer


def catch_up(
    room_ids: Collection[int], *, last_id: int, since: datetime | None
) -> tuple[list[Message], bool]:
    """What a reconnecting tab missed in the rooms it listens to (listening_room_ids): newer
    messages, and older ones edited or deleted since.

    Returns the messages in id order and whether there was more than the replay limit.
    """
    limit = settings.CATCH_UP_LIMIT
    changed = Q(id__gt=last_id)
    if since is not None:
        changed |= Q(changed__gt=since)
    qs = _page_query(Message.objects.filter(changed, room_id__in=room_ids)).order_by("id")
    messages = list(qs[: limit + 1])
    return _load_extras(messages[:limit]), len(messages) > limit


def address_book(user: User):
    """People the user shares a room with, plus people they added by hand.

    Whoever blocked the user is not in it, so they cannot be invited or messaged.
    """
    my_rooms = Membership.objects.filter(user_id=user.pk).values("room_id")
    added = Contact.objects.filter(owner_id=user.pk).values("person_id")
    return (
        User.objects.filter(Q(memberships__room_id__in=my_rooms) | Q(pk__in=added), is_active=True)
        .exclude(pk=user.pk)
        .exclude(pk__in=blockers_of(user.pk))
        .distinct()
        .order_by("display_name", "username")
    )


def in_address_book(user: User, person: User) -> bool:
    return address_book(user).filter(pk=person.pk).exists()
