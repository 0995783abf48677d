"""The cluster's front door: deploy/nginx.conf in front of a server started as deploy/Procfile
starts it. People reach Parley from their own addresses, which are what rate limits count:
seen from the server process, every request comes from nginx.

Clients connect from 127.0.0.2 and 127.0.0.3 (all of 127/8 is loopback on Linux), two
machines as far as nginx and the rate limits can tell.
"""

from __future__ import annotations

import http.client
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from conftest import FAST_HASHERS, GENEROUS_RATE_LIMITS, PASSWORD, client_for
from moderation import ratelimit
from tests.live import ROOT, AppServer, HttpTab, SocketTab, free_port, wait_until_listening

pytestmark = pytest.mark.multiprocess

ALICE_MACHINE = "127.0.0.2"
BOB_MACHINE = "127.0.0.3"
# Per person and per address alike (the address factor is 1): two of each.
TIGHT_LIMITS = {
    "RATE_LIMIT_LOGIN_FAILURES": "2",
    "RATE_LIMIT_SEND": "2",
    "RATE_LIMIT_IP_FACTOR": "1",
}


def nginx_config(listen_port: int, upstream_port: int) -> str:
    """deploy/nginx.conf with its ports swapped for these, and static files served from the
    source folder (`make cluster` collects them); fails if that file changed shape."""
    config = (ROOT / "deploy" / "nginx.conf").read_text()
    swaps = {
        "listen 127.0.0.1:8000;": f"listen 127.0.0.1:{listen_port};",
        "server 127.0.0.1:8001 ": f"server 127.0.0.1:{upstream_port} ",
        "server 127.0.0.1:8002 ": f"server 127.0.0.1:{upstream_port} ",
        "alias ../staticfiles/;": f"alias {ROOT / 'static'}/;",
    }
    for old, new in swaps.items():
        assert config.count(old) == 1, f"deploy/nginx.conf no longer has {old!r}"
        config = config.replace(old, new)
    return config


@contextmanager
def nginx_in_front_of(upstream_port: int) -> Iterator[int]:
    """deploy/nginx.conf running in front of `upstream_port`; yields nginx's port."""
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    assert nginx is not None, "nginx is not installed (make test installs Debian's nginx-light)"
    port = free_port()
    prefix = ROOT / "var" / f"nginx-test-{port}"
    for folder in ("logs", "tmp"):
        (prefix / folder).mkdir(parents=True, exist_ok=True)
    (prefix / "nginx.conf").write_text(nginx_config(port, upstream_port))
    output = prefix / "logs" / "output.log"
    with output.open("wb") as log:
        process = subprocess.Popen(
            [nginx, "-p", f"{prefix}/", "-c", "nginx.conf", "-g", "daemon off;"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_listening(port, process, "nginx", 10, output.read_text)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(prefix, ignore_errors=True)


@pytest.fixture(scope="module")
def front_door(test_database_url) -> Iterator[int]:
    """nginx's port, in front of one server process."""
    env = {
        "DATABASE_URL": test_database_url,
        "PASSWORD_HASHERS": ",".join(FAST_HASHERS),
        "LOG_LEVEL": "WARNING",
        **GENEROUS_RATE_LIMITS,
        **TIGHT_LIMITS,
    }
    with AppServer(env=env) as server, nginx_in_front_of(server.port) as port:
        yield port


def test_static_files_are_served_from_disk_with_no_app_process():
    # Nothing listens upstream: pages fail, static files do not.
    with nginx_in_front_of(free_port()) as port:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            for path, kind in [("css/parley.css", "text/css"), ("js/live.js", "javascript")]:
                connection.request("GET", f"/static/{path}")
                response = connection.getresponse()
                assert (response.status, response.read()) == (
                    200,
                    (ROOT / "static" / path).read_bytes(),
                )
                assert kind in response.headers["Content-Type"]  # ES modules need the type
                assert response.headers["X-Content-Type-Options"] == "nosniff"
                assert response.headers["Cache-Control"] == "public, max-age=60"
            connection.request("GET", "/accounts/login/")
            assert connection.getresponse().status == 502
        finally:
            connection.close()


@pytest.fixture
def clean_counts() -> None:
    # The server process counts in Redis when it has one (the same REDIS_URL as this process).
    ratelimit.forget_all()


def session_of(person) -> str:
    return client_for(person).cookies["sessionid"].value


def login_page(port: int, source: str) -> HttpTab:
    tab = HttpTab(port, {}, source=source)
    tab.fetch_csrf_token("/accounts/login/")
    return tab


def log_in(tab: HttpTab, username: str, password: str, **headers: str) -> int:
    form = {
        "username": username,
        "password": password,
        "csrfmiddlewaretoken": tab.cookies["csrftoken"],
    }
    status, _ = tab.request("POST", "/accounts/login/", form, headers=headers)
    return status


def test_failed_logins_from_one_machine_do_not_lock_out_another(
    front_door, clean_counts, transactional_db, alice
):
    guesser = login_page(front_door, ALICE_MACHINE)
    assert [log_in(guesser, f"nobody{n}", "wrong") for n in (1, 2)] == [200, 200]
    # Over its address's limit; a forged header naming another address changes nothing.
    assert log_in(guesser, "nobody3", "wrong") == 429
    assert log_in(guesser, "nobody4", "wrong", **{"X-Forwarded-For": "127.0.0.9"}) == 429

    # Alice, from her own machine, is not held back by the guesser's failures.
    assert log_in(login_page(front_door, BOB_MACHINE), "alice", PASSWORD) == 302


def test_sends_over_sockets_through_nginx_count_per_machine(
    front_door, clean_counts, transactional_db, alice, bob, room
):
    tabs = [
        SocketTab(front_door, {"sessionid": session_of(person)}, source=machine)
        for person, machine in ((alice, ALICE_MACHINE), (bob, BOB_MACHINE))
    ]
    try:
        # Two each: the limit of each person and of each address, not of nginx's address.
        sent = [tab.send_message(room.pk, f"Hello {n}") for tab in tabs for n in (1, 2)]
        with pytest.raises(RuntimeError, match="429"):
            tabs[0].send_message(room.pk, "One too many")
    finally:
        for tab in tabs:
            tab.close()

    assert list(room.messages.order_by("id").values_list("id", "sender__username")) == [
        (sent[0], "alice"),
        (sent[1], "alice"),
        (sent[2], "bob"),
        (sent[3], "bob"),
    ]
