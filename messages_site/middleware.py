from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url

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


class SignedOutScriptMiddleware:
    """A script's request (fetch, XHR, htmx) that needs the session it no longer has gets 401
    with a sentence, not login_required's redirect: a script follows the redirect and takes the
    login page, answered 200, for the reply (an upload chunk "stored", a fragment swapped in).
    A page the browser navigates to is still sent to the login page.
    """

    SIGNED_OUT = "You are signed out. Sign in again (reload the page) to go on."

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code == 302
            and not request.user.is_authenticated
            and response["Location"].startswith(resolve_url(settings.LOGIN_URL))
            and _from_a_script(request)
        ):
            return text_response(self.SIGNED_OUT, status=401)
        return response


def _from_a_script(request: HttpRequest) -> bool:
    # Browsers say how a request was made (Fetch Metadata); htmx says so itself.
    mode = request.headers.get("Sec-Fetch-Mode")
    return request.headers.get("HX-Request") == "true" or mode not in (None, "navigate")


def text_response(text: str, *, status: int) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")
