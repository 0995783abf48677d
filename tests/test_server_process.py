"""The server process as deploy/Procfile runs it (tests/live.py AppServer): what a load balancer
or a browser in front of it relies on."""

from __future__ import annotations

import http.client
import time

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
