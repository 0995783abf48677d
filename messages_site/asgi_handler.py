"""Django's ASGI handler, with each request's middleware and view run in one thread hand-off.

Django builds its middleware chain for async mode under ASGI, and the chain's innermost step
(URL resolving, calling the view) is async. With sync middleware (ours, WhiteNoise's) a request
for a sync view crosses from the event loop to a thread for the middleware, back to the loop for
that step, and to a thread again for the view: each crossing costs CPU on both sides, and a
4xx response one more for its log line. Built for sync mode, as under WSGI, the whole chain runs
in the one thread. Parley has no async views; one would run through async_to_sync.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse


class OneHopASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponse:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)
