"""Request bodies read as they arrive from the ASGI server, for views that copy them elsewhere.

Django's ASGI handler reads a whole request body into a temporary file before the view runs.
For an upload chunk that costs a copy of every byte and lets the body in before the view has
checked anything. A view marked `@reads_body_as_stream` is served by `StreamedBodyHandler`
instead: the same middleware and the same view, but `request.read(n)` takes the bytes from the
ASGI receive loop when the view asks for them. A view refusing the request never reads it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from asgiref.sync import async_to_sync
from django.core.handlers.asgi import get_script_prefix
from django.urls import Resolver404, resolve

from .asgi_handler import OneHopASGIHandler

Receive = Callable[[], Awaitable[dict]]
ASGIApp = Callable[[dict, Receive, Callable], Awaitable[None]]


def reads_body_as_stream(view):
    """Mark a view that reads its body with `request.read(n)` in blocks (see the module)."""
    view.reads_body_as_stream = True
    return view


class ReceivedBody:
    """The request body as a file the view reads from its worker thread, fed by `receive`.

    A client that goes away mid-body gives a short read; the view sees fewer bytes than it was
    promised and refuses the request, as it would a body cut short.
    """

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._leftover = b""
        self._more = True

    async def _take(self, size: int) -> bytes:
        # Runs on the event loop's thread, so the blocks are allocated there too: memory freed
        # after a request goes back to one heap, not to one per short-lived worker thread.
        parts = [self._leftover]
        have = len(self._leftover)
        while self._more and (size < 0 or have < size):
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._more = False
                break
            body = message.get("body", b"")
            parts.append(body)
            have += len(body)
            self._more = message.get("more_body", False)
        self._leftover = b""
        if 0 <= size < have:
            last = parts[-1]
            keep = len(last) - (have - size)
            parts[-1], self._leftover = last[:keep], last[keep:]
        return b"".join(parts)

    def read(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        if not self._more and 0 <= size <= len(self._leftover):
            block, self._leftover = self._leftover[:size], self._leftover[size:]
            return block
        # One trip to the event loop per block the view asks for, not per ASGI message.
        return async_to_sync(self._take)(size)

    def close(self) -> None:
        self._leftover = b""


class StreamedBodyHandler(OneHopASGIHandler):
    """Django's ASGI handler with the body left in the receive loop until the view reads it."""

    async def read_body(self, receive: Receive) -> ReceivedBody:
        return ReceivedBody(receive)

    async def listen_for_disconnect(self, receive: Receive) -> None:
        # The body stream owns `receive` and notices a disconnect itself; listening here as
        # well would take its messages. Cancelled once the response is sent.
        await asyncio.Event().wait()


def streams_body(scope: dict) -> bool:
    path = scope["path"].removeprefix(get_script_prefix(scope))
    try:
        match = resolve(path if path.startswith("/") else f"/{path}")
    except Resolver404:
        return False
    return getattr(match.func, "reads_body_as_stream", False)


def route_streamed_bodies(django_app: ASGIApp) -> ASGIApp:
    """HTTP requests for views marked `@reads_body_as_stream` go to a StreamedBodyHandler."""
    streamed_app = StreamedBodyHandler()

    async def app(scope: dict, receive: Receive, send: Callable) -> None:
        if scope["type"] == "http" and scope["method"] != "GET" and streams_body(scope):
            await streamed_app(scope, receive, send)
        else:
            await django_app(scope, receive, send)

    return app
