from __future__ import annotations

from django.http import HttpRequest


def live_cursor(request: HttpRequest) -> dict:
    cursor = getattr(request, "live_cursor", None)
    if cursor is None:
        return {}
    return {"live_last_id": cursor[0], "live_since": cursor[1]}
