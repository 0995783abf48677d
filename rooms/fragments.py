"""HTML fragments shared by pages, htmx responses and live events (one markup source each)."""

from __future__ import annotations

from django.template.loader import render_to_string

from .models import Message, Room


def message_html(message: Message) -> str:
    """The message fragment; the one an action just published is reused, not rendered again."""
    rendered = getattr(message, "rendered_html", None)
    if rendered is not None:
        return rendered
    return render_to_string("rooms/room.html#message", {"message": message})


def room_item_html(room: Room) -> str:
    return render_to_string("rooms/room_list.html#room_item", {"room": room})
