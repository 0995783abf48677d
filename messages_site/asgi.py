from __future__ import annotations

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "messages_site.settings")
django.setup(set_prefix=False)  # as get_asgi_application() does

from messages_site.asgi_handler import OneHopASGIHandler  # noqa: E402

django_asgi_app = OneHopASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from messages_site.socket_auth import SessionUserStack  # noqa: E402
from messages_site.streamed_body import route_streamed_bodies  # noqa: E402
from rooms.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Upload chunks stream from the receive loop to storage (see streamed_body.py).
        "http": route_streamed_bodies(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(
            SessionUserStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

# Everything loaded so far lives as long as the process: keeping it out of the collector's
# full passes shortens them from ~60-100 ms (a long pause in the middle of a fan-out) to ~12.
gc.collect()
gc.freeze()
