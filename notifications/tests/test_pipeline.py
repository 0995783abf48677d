"""End to end with real parts: a Uvicorn server, a Celery worker on Redis, SMTP out and SMTP in.

Alice posts through the server; the worker batches and mails Bob through a real SMTP exchange;
Bob's answer goes back through `run_inbound_smtp` and appears on Alice's websocket.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import smtplib
import time
from email.message import EmailMessage
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from conftest import FAST_HASHERS, client_for
from notifications.tests.live import CeleryWorker, InboundSmtp, SmtpSink
from rooms.models import Message
from tests.live import AppServer

pytestmark = pytest.mark.multiprocess

FALLBACK_REDIS_URL = "redis://127.0.0.1:6379/12"
REPLY_DOMAIN = "reply.parley.test"


@pytest.fixture(scope="module")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL") or FALLBACK_REDIS_URL
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        # On CI a skip fails the run, so a missing Redis cannot pass unnoticed there.
        pytest.skip(f"No Redis answers at {url} ({error}); the worker needs it as its broker")
    return url


@pytest.fixture
def stack(transactional_db, test_database_url, redis_url):
    """The server, a Celery worker and the inbound SMTP listener, mailing into an SMTP sink.

    They stop before the test database is emptied: a worker still mailing about the reply
    would otherwise write while the tables are truncated (a deadlock, then leftover rows).
    """
    # Tasks queued by earlier tests (which had no worker) are not this test's business.
    redis.Redis.from_url(redis_url).delete("celery")
    with SmtpSink() as sink:
        env = {
            "DATABASE_URL": test_database_url,
            "REDIS_URL": redis_url,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "EMAIL_URL": sink.url,
            "PARLEY_NOTIFY_BATCH_SECONDS": "1",
            "PARLEY_REPLY_DOMAIN": REPLY_DOMAIN,
            "PASSWORD_HASHERS": ",".join(FAST_HASHERS),
            "LOG_LEVEL": "WARNING",
        }
        with (
            CeleryWorker(env) as worker,
            AppServer(env=env) as server,
            InboundSmtp(env) as inbound,
        ):
            yield {"sink": sink, "worker": worker, "server": server, "inbound": inbound}


def post_message(server: AppServer, user, room, body: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    cookies = {"sessionid": client_for(user).cookies["sessionid"].value}

    def request(method: str, path: str, form: dict | None = None) -> tuple[int, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
        data = None
        if form is not None:
            data = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["X-CSRFToken"] = cookies.get("csrftoken", "")
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookies.update({k: m.value for k, m in SimpleCookie(header).items()})
        return response.status, response.read().decode()

    try:
        assert request("GET", room.get_absolute_url())[0] == 200
        status, html = request("POST", f"/rooms/{room.pk}/messages/", {"body": body})
        assert status == 201, f"{status}: {html[:300]}\n{server.log()}"
        return int(re.search(r'id="msg-(\d+)"', html).group(1))
    finally:
        connection.close()


def open_socket(server: AppServer, user):
    session = client_for(user).cookies["sessionid"].value
    return connect(
        server.ws_url,
        origin=server.url,
        additional_headers={"Cookie": f"sessionid={session}"},
        proxy=None,
        open_timeout=10,
    )


def first_message_from(socket, sender, deadline: float) -> dict | None:
    while time.monotonic() < deadline:
        try:
            frame = json.loads(socket.recv(timeout=max(deadline - time.monotonic(), 0.1)))
        except TimeoutError:
            return None
        if frame["type"] == "message.new" and frame["sender"] == sender.pk:
            return frame
    return None


def wait_for_message_from(server: AppServer, socket, user, sender, *, after: int) -> dict:
    """The next message.new frame from `sender`; a dropped socket reconnects and resumes,
    as live.js does (the database is the source of truth, the layer may lose things)."""
    deadline = time.monotonic() + 20
    try:
        frame = first_message_from(socket, sender, deadline)
    except (ConnectionClosed, OSError):
        with open_socket(server, user) as again:
            again.send(json.dumps({"type": "resume", "last_id": after}))
            frame = first_message_from(again, sender, deadline)
    assert frame is not None, "the reply never reached the websocket"
    return frame


def test_email_notification_and_reply_by_email_round_trip(stack, room, alice, bob):
    with open_socket(stack["server"], alice) as alice_socket:
        frame = round_trip(stack, alice_socket, alice, bob, room)
    assert "Looks great, ship it." in frame["html"]
    assert "review" not in frame["html"]  # the quoted history was left out
    posted = Message.objects.get(pk=frame["id"])
    assert (posted.sender, posted.room, posted.body) == (bob, room, "Looks great, ship it.")


def round_trip(stack, alice_socket, alice, bob, room) -> dict:
    """Alice posts, Bob is mailed, Bob answers by email: the frame of Bob's answer."""
    sink, server = stack["sink"], stack["server"]
    sent = post_message(server, alice, room, "Can you **review** the mockups?")

    # Bob and Carol are each mailed once the one-second batching window has passed.
    assert sink.wait_for(2, timeout=30), f"no email arrived:\n{stack['worker'].log()}"
    (to_bob,) = [m for m in sink.parsed() if "bob@example.com" in m["To"]]
    assert to_bob["Auto-Submitted"] == "auto-generated"
    assert to_bob["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert to_bob["Subject"] == "Alice Adams in Design"
    html = to_bob.get_body(preferencelist=("html",)).get_content()
    assert "<strong>review</strong>" in html
    reply_to = to_bob["Reply-To"].addresses[0].addr_spec
    assert reply_to.startswith("reply+") and reply_to.endswith("@" + REPLY_DOMAIN)

    answer = EmailMessage()
    answer["From"] = "Bob Jones <bob@example.com>"
    answer["To"] = reply_to
    answer["Subject"] = "Re: " + to_bob["Subject"]
    answer["In-Reply-To"] = to_bob["Message-ID"]
    answer["Message-ID"] = "<answer-1@mail.example>"
    quoted = "\n".join(
        f"> {line}" for line in to_bob.get_body(("plain",)).get_content().splitlines()
    )
    answer.set_content(
        "Looks great, ship it.\n\n"
        f"On Tue, Mar 12, 2024 at 10:02 AM Parley <{reply_to}> wrote:\n{quoted}\n"
    )
    with smtplib.SMTP("127.0.0.1", stack["inbound"].port, timeout=10) as smtp:
        smtp.send_message(answer, from_addr="bob@example.com", to_addrs=[reply_to])

    return wait_for_message_from(server, alice_socket, alice, bob, after=sent)


def test_a_password_reset_link_is_mailed_by_the_worker(stack, alice):
    """The reset page only queues the email; the worker builds the link and sends it."""
    connection = http.client.HTTPConnection("127.0.0.1", stack["server"].port, timeout=10)
    try:
        connection.request("GET", "/accounts/password/reset/")
        page = connection.getresponse()
        page.read()
        csrf = SimpleCookie(page.headers["Set-Cookie"])["csrftoken"].value
        connection.request(
            "POST",
            "/accounts/password/reset/",
            body=urlencode({"email": alice.email}),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={csrf}",
                "X-CSRFToken": csrf,
            },
        )
        answer = connection.getresponse()
        answer.read()
    finally:
        connection.close()
    assert (answer.status, answer.headers["Location"]) == (302, "/accounts/password/reset/sent/")
    assert stack["sink"].wait_for(1, timeout=30), f"no email:\n{stack['worker'].log()}"
    (mail,) = stack["sink"].parsed()
    assert alice.email in mail["To"]
    assert re.search(r"http://\S+/accounts/password/reset/\w+/[\w-]+/", mail.get_content())
    assert "accounts.tasks.password_reset_email" in stack["worker"].log()
