from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse

from moderation.ratelimit import RateLimited


class UserErrorMiddleware:
    """Turn a refused write into a 4xx whose body is the reason, for htmx and fetch callers.

    Actions raise ValidationError (400), PermissionDenied (403) or RateLimited (429) with a
    message meant for people.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, ValidationError):
            return text_response(" ".join(exception.messages), status=400)
        if isinstance(exception, RateLimited):
            response = text_response(str(exception), status=429)
            response["Retry-After"] = str(exception.retry_after)
            return response
        if isinstance(exception, PermissionDenied):
            return text_response(str(exception) or "You may not do that.", status=403)
        return None


def text_response(text: str, *, status: int) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")
