from __future__ import annotations

import time

from django.db.models import Max
from django.http import HttpRequest, HttpResponse

from .models import Message


class LiveCursorMiddleware:
    """Note the newest message id before a page's view runs.

    The page's socket replays everything after it, so a message sent while the page was being
    rendered is neither lost nor counted twice. Taken before the view, never after.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "GET" and not request.htmx and request.user.is_authenticated:
            newest = Message.objects.aggregate(n=Max("id"))["n"] or 0
            request.live_cursor = (newest, time.time())
        return self.get_response(request)
