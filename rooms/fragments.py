"""HTML fragments shared by pages, htmx responses and live events (one markup source each).

A page takes its message fragments and conversation-list entries from the cache: each is the same
for every viewer (per-viewer differences come from CSS), so whoever shows one first renders it for
everyone. An entry's key is everything the fragment shows plus its templates' source, so an edit,
a reaction, a renamed person or room, or a new deploy makes a new key: nothing is invalidated and
nothing stale is shown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import lru_cache
from hashlib import blake2b

from django.core.cache import cache
from django.db import transaction
from django.template.loader import get_template, render_to_string
from django.utils.safestring import SafeString
from django.utils.timezone import get_current_timezone_name
from django.utils.translation import get_language
from redis.exceptions import RedisError

from .models import Membership, Message, Room

log = logging.getLogger(__name__)

# Entries are keyed by their content, so this only bounds how long an unused one is kept.
FRAGMENT_TTL = 24 * 60 * 60
# The templates each fragment is rendered from, includes included.
MESSAGE_TEMPLATES = ("rooms/room.html", "rooms/files.html")
ROOM_ITEM_TEMPLATES = ("rooms/room_list.html", "rooms/room_name.html")


def message_html(message: Message) -> str:
    """The message fragment; the one an action just published is reused, not rendered again."""
    rendered = getattr(message, "rendered_html", None)
    if rendered is not None:
        return rendered
    return render_to_string("rooms/room.html#message", {"message": message})


def room_item_html(
    room: Room, *, unread: int | None = None, unread_mentions: int | None = None
) -> str:
    """The room's conversation-list entry; without counts its badges start hidden."""
    context = {"room": room, "unread": unread, "unread_mentions": unread_mentions}
    return render_to_string("rooms/room_list.html#room_item", context)


def message_shown(message: Message) -> tuple:
    """Everything the message fragment prints (`changed` too, bumped by every write to it).

    Needs the sender, reactions, files and links loaded, as a page of messages has them.
    """
    return (
        message.pk,
        message.changed,
        str(message.kind),  # a message just created holds the enum, one read back its value
        message.sender_id,
        message.sender.name,
        message.created,
        message.edited,
        message.deleted,
        message.body_html,
        message.gif_url,
        message.gif_title,
        [
            (file.pk, file.deleted, file.content_type, file.name, file.size, file.thumbnail.name)
            for file in message.attachments.all()
        ],
        [(link.provider, link.url, link.title) for link in message.links.all()],
        message.reaction_summary(),
    )


def room_item_shown(membership: Membership) -> tuple:
    """Everything a conversation-list entry prints, as room_list() loads it."""
    room, last = membership.room, membership.room.last_message
    names = [(m.user_id, m.user.name) for m in room.direct_members] if room.is_direct else None
    return (
        room.pk,
        membership.unread,
        membership.unread_mentions,
        room.archived,
        str(room.kind),
        room.title,
        names,
        None if last is None else (last.sender_id, last.deleted, last.sender.name, last.body_html),
    )


def with_message_html(messages: Sequence[Message]) -> Sequence[Message]:
    """Give each message of a page its fragment as `.html` (one cache round trip)."""
    _fill(messages, "message", MESSAGE_TEMPLATES, message_shown, message_html)
    return messages


def with_room_item_html(memberships: Sequence[Membership]) -> Sequence[Membership]:
    """Give each membership of a conversation-list page its room's entry as `.html`."""

    def render(membership: Membership) -> str:
        return room_item_html(
            membership.room, unread=membership.unread, unread_mentions=membership.unread_mentions
        )

    _fill(memberships, "room_item", ROOM_ITEM_TEMPLATES, room_item_shown, render)
    return memberships


def remember_message_html(message: Message) -> None:
    """Keep the fragment an action just rendered for a live event (`rendered_html`), so the
    pages that show the message next take it from the cache: rendered once, at write time.

    Stored once the transaction commits.
    """
    loaded = getattr(message, "_prefetched_objects_cache", {})
    if not all(name in loaded for name in ("reactions", "attachments", "links")):
        # Its key would cost queries of its own: the first page to show it renders it.
        return
    (key,) = _keys([message], "message", MESSAGE_TEMPLATES, message_shown)
    html = message.rendered_html

    def store() -> None:
        try:
            cache.set(key, html, FRAGMENT_TTL)
        except RedisError as error:
            log.warning("Fragment not cached, Redis is unreachable: %s", error)

    transaction.on_commit(store)


def _keys(
    items: Sequence, kind: str, templates: tuple[str, ...], shown: Callable[..., tuple]
) -> list[str]:
    # Dates print in the active time zone and language: they are part of what is shown.
    version = (_templates_version(templates), get_current_timezone_name(), get_language())
    return [
        f"fragment:{kind}:"
        + blake2b(
            repr((version, shown(item))).encode(errors="surrogatepass"), digest_size=16
        ).hexdigest()
        for item in items
    ]


@lru_cache(maxsize=16)
def _sources_digest(sources: tuple[str, ...]) -> str:
    return blake2b("\0".join(sources).encode(), digest_size=8).hexdigest()


def _templates_version(names: tuple[str, ...]) -> str:
    # Looked up each time, so a template reloaded in development changes the keys too.
    return _sources_digest(tuple(get_template(name).template.source for name in names))


def _fill(
    items: Sequence,
    kind: str,
    templates: tuple[str, ...],
    shown: Callable[..., tuple],
    render: Callable[..., str],
) -> None:
    if not items:
        return
    keys = _keys(items, kind, templates, shown)
    try:
        found = cache.get_many(keys)
    except RedisError as error:
        log.warning("Fragments rendered without the cache, Redis is unreachable: %s", error)
        found = None
    fresh = {}
    for item, key in zip(items, keys, strict=True):
        html = found.get(key) if found is not None else None
        if html is None:
            html = fresh[key] = render(item)
        item.html = SafeString(html)
    if fresh and found is not None:
        try:
            cache.set_many(fresh, FRAGMENT_TTL)
        except RedisError as error:
            log.warning("Fragments not cached, Redis is unreachable: %s", error)
