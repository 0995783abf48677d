from __future__ import annotations

from functools import cached_property

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.models import ConversationView
from moderation.models import Warning
from moderation.queries import blocked_by

from .fragments import with_room_item_html
from .queries import categorized, room_page


def live_cursor(request: HttpRequest) -> dict:
    cursor = getattr(request, "live_cursor", None)
    if cursor is None:
        return {}
    return {"live_last_id": cursor[0], "live_since": cursor[1]}


class Sidebar:
    """The conversation list beside every page, loaded only when a template shows it."""

    views = ConversationView.choices

    def __init__(self, user) -> None:
        self.user = user
        self.view = user.conversation_view

    @cached_property
    def page(self):
        page = room_page(self.user)
        with_room_item_html(page.memberships)
        return page

    @cached_property
    def categories(self):
        categories = categorized(self.user)
        with_room_item_html([m for _, _, page in categories for m in page.memberships])
        return categories


def sidebar(request: HttpRequest) -> dict:
    if not request.user.is_authenticated:
        return {}
    return {"sidebar": SimpleLazyObject(lambda: Sidebar(request.user))}


class Safety:
    """Who the viewer blocked (their messages collapse) and unseen staff warnings."""

    def __init__(self, user) -> None:
        self.user = user

    @cached_property
    def blocked_ids(self) -> list[int]:
        return blocked_by(self.user.pk)

    @cached_property
    def warnings(self):
        return list(Warning.objects.filter(user=self.user, seen__isnull=True)[:3])


def safety(request: HttpRequest) -> dict:
    if not request.user.is_authenticated:
        return {}
    return {"safety": SimpleLazyObject(lambda: Safety(request.user))}
