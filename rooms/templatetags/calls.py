"""Template tags for calls: the room's live call banner, and the ICE servers for the browser."""

from __future__ import annotations

from django import template
from django.conf import settings
from django.utils.safestring import SafeString

from rooms.calls import banner_html, live_call, peers
from rooms.models import Room

register = template.Library()


@register.simple_tag
def call_banner(room: Room) -> SafeString:
    """The banner as it is now, for a page load (live events replace it afterwards)."""
    call = live_call(room)
    return SafeString(banner_html(room, call, peers(call) if call else []))


@register.simple_tag
def ice_servers() -> list[dict]:
    return settings.ICE_SERVERS
