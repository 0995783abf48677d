"""Two server processes sharing the test database and Redis, as in a scaled-out deployment.

A message posted through one process reaches a socket held by the other, and a socket that
reconnects to the other process replays what it missed from the database.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from websockets.sync.client import ClientConnection, connect

from accounts.models import User
from conftest import FAST_HASHERS, GENEROUS_RATE_LIMITS, client_for
from tests.live import AppServer, HttpTab

pytestmark = pytest.mark.multiprocess

# A database of its own, so that a local run does not share live groups with the dev server.
FALLBACK_REDIS_URL = "redis://127.0.0.1:6379/11"
DELIVERY_TIMEOUT = 5.0


@pytest.fixture(scope="module")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if url:
        return url
    try:
        redis.Redis.from_url(FALLBACK_REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        pytest.skip(
            f"REDIS_URL is unset and no Redis answers at {FALLBACK_REDIS_URL} ({error}); "
            "server processes share live events only through Redis"
        )
    return FALLBACK_REDIS_URL


@pytest.fixture(scope="module")
def servers(test_database_url, redis_url) -> Iterator[tuple[AppServer, AppServer]]:
    env = {
        "DATABASE_URL": test_database_url,
        "REDIS_URL": redis_url,
        "PASSWORD_HASHERS": ",".join(FAST_HASHERS),
        "LOG_LEVEL": "WARNING",
        **GENEROUS_RATE_LIMITS,
    }
    with AppServer(env=env) as server_a, AppServer(env=env) as server_b:
        yield server_a, server_b


@contextmanager
def live_socket(server: AppServer, user: User) -> Iterator[ClientConnection]:
    session = client_for(user).cookies["sessionid"].value
    with connect(
        server.ws_url,
        origin=server.url,
        additional_headers={"Cookie": f"sessionid={session}"},
        proxy=None,
        open_timeout=10,
    ) as socket:
        yield socket


def frames_until(socket: ClientConnection, done, timeout: float = DELIVERY_TIMEOUT) -> list[dict]:
    """Frames received until one satisfies `done` (that one included), or fail after `timeout`."""
    frames = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        try:
            frame = json.loads(socket.recv(timeout=max(remaining, 0)))
        except TimeoutError:
            pytest.fail(f"no matching frame within {timeout}s; got {frames}")
        frames.append(frame)
        if done(frame):
            return frames


@pytest.fixture
def alice_on_b(servers, transactional_db, alice, room) -> Iterator[HttpTab]:
    """Alice's keep-alive HTTP connection to server B, with her session and CSRF cookies."""
    tab = HttpTab(servers[1].port, {"sessionid": client_for(alice).cookies["sessionid"].value})
    tab.fetch_csrf_token(room.get_absolute_url())
    yield tab
    tab.close()


def test_message_posted_on_one_server_reaches_socket_on_the_other(
    servers, alice_on_b, alice, bob, room
):
    server_a, _ = servers
    with live_socket(server_a, bob) as bob_socket:
        message_id = alice_on_b.send_message(room.pk, "Posted through B")
        frames = frames_until(
            bob_socket, lambda f: f["type"] == "message.new" and f["id"] == message_id
        )

    frame = frames[-1]
    assert (frame["room"], frame["sender"]) == (room.pk, alice.pk)
    assert "Posted through B" in frame["html"]


def test_socket_reconnecting_to_the_other_server_replays_what_it_missed(
    servers, alice_on_b, bob, room
):
    server_a, server_b = servers
    with live_socket(server_a, bob) as bob_socket:
        seen = alice_on_b.send_message(room.pk, "Seen live")
        frames_until(bob_socket, lambda f: f["type"] == "message.new" and f["id"] == seen)

    missed = [alice_on_b.send_message(room.pk, f"Missed {n}") for n in range(1, 4)]

    with live_socket(server_b, bob) as bob_socket:
        bob_socket.send(json.dumps({"type": "resume", "last_id": seen}))
        frames = frames_until(bob_socket, lambda f: f["type"] == "resume.done")

    # Live news about people (presence, typing) may interleave; the messages may not.
    replayed = [f for f in frames if f["type"].startswith("message.")]
    assert [(f["type"], f["id"]) for f in replayed] == [("message.new", m) for m in missed]
    assert [f"Missed {n}" in f["html"] for n, f in enumerate(replayed, 1)] == [True] * 3
    assert frames[-1] == {"type": "resume.done", "truncated": False}
