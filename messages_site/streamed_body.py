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
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.urls import Resolver404, resolve

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
        self._pending = bytearray()
        self._more = True

    async def _fill(self, size: int) -> None:
        while self._more and (size < 0 or len(self._pending) < size):
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._more = False
                break
            self._pending += message.get("body", b"")
            self._more = message.get("more_body", False)

    def read(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        if self._more and (size < 0 or len(self._pending) < size):
            # One trip to the event loop per block the view asks for, not per ASGI message.
            async_to_sync(self._fill)(size)
        if size < 0 or size >= len(self._pending):
            block = bytes(self._pending)
            self._pending.clear()
        else:
            block = bytes(self._pending[:size])
            del self._pending[:size]
        return block

    def close(self) -> None:
        self._pending.clear()


class StreamedBodyHandler(ASGIHandler):
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
