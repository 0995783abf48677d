"""The server process as deploy/Procfile runs it (tests/live.py AppServer takes its options from
there): what a load balancer or a browser in front of it relies on."""

from __future__ import annotations

import http.client
import time

from websockets.sync.client import connect

from conftest import client_for

# Longer than Uvicorn's own default (5 s), after which it closes an idle keep-alive connection.
IDLE_SECONDS = 6.5


def test_an_idle_keep_alive_connection_is_still_served(app_server):
    """nginx keeps idle upstream connections for 60 s and reuses them; one the server closed
    meanwhile would turn the next POST on it into a 502."""
    connection = http.client.HTTPConnection("127.0.0.1", app_server.port, timeout=10)
    try:
        connection.request("GET", "/accounts/login/")
        first = connection.getresponse()
        first.read()
        assert first.status == 200
        time.sleep(IDLE_SECONDS)
        connection.request("GET", "/accounts/login/")
        again = connection.getresponse()
        again.read()
        assert again.status == 200
    finally:
        connection.close()


def test_websocket_frames_are_not_compressed(app_server, transactional_db, alice):
    """Browsers offer permessage-deflate; compressing every frame for every socket cost a
    fan-out 23 % more server CPU (docs/BENCHMARKS.md, "Compression"), so it is declined."""
    session = client_for(alice).cookies["sessionid"].value
    with connect(
        app_server.ws_url,
        origin=app_server.url,
        additional_headers={"Cookie": f"sessionid={session}"},
        compression="deflate",  # what a browser offers
        proxy=None,
        open_timeout=10,
    ) as socket:
        assert socket.response.status_code == 101
        assert "Sec-WebSocket-Extensions" not in socket.response.headers
