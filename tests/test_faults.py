"""Faults: nothing is lost or shown twice while processes crash and restart (issue 9).

Real parts only: two server processes and a Celery worker and beat sharing the test database
and a Redis server of this test's own, an SMTP sink on loopback, `websockets` readers that
behave like static/js/live.js, and a sender that behaves like static/js/composer.js: a client
token per message, sent over its websocket first and, when that socket is closed or does not
answer, posted to the page's HTTP endpoint with the same token, retried until it goes through.
While the sender posts a steady stream, the test

1. kills one server process (SIGKILL) and starts it again; its readers reconnect to the other;
2. kills Redis (SIGKILL, no persistence: every queue, counter and subscription is gone) and
   starts it again on the same port;
3. drops readers' sockets at random;
4. kills the Celery worker in the middle of sending emails and starts a new one.

Afterwards every reader has every message exactly once, in order; every reader got each
message in exactly one email; no message was stored twice; and every failed request
(connection refused, 5xx) was retried by the sender until it went through. The counts are
printed and kept in var/faults-report.json.

A second, short test covers the tail case: a message sent while Redis is down, with nothing
after it to reveal the gap, still reaches a socket that stayed open.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import http.client
import json
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection, connect

from conftest import FAST_HASHERS, GENEROUS_RATE_LIMITS, befriend, client_for, make_person
from notifications.tests.live import CeleryBeat, CeleryWorker, SmtpSink
from rooms.actions import do_create_room
from rooms.models import Message, RoomKind
from tests.live import ROOT, AppServer, SocketTab, free_port

pytestmark = pytest.mark.multiprocess

SEND_INTERVAL = 0.08  # seconds between messages: a steady ~10 messages a second
# How long the sender waits for its socket's answer before posting (composer.js waits 5 s).
SOCKET_WAIT = 2.0
READERS = ("bob", "carol", "dave", "erin")
CONVERGE_TIMEOUT = 40.0
REPORT = ROOT / "var" / "faults-report.json"


class RedisServer:
    """A redis-server of this test's own on a loopback port, without persistence, so that a
    kill loses everything Redis held (queued tasks, rate-limit counters, subscriptions)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = ROOT / "var" / f"redis-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (Debian package redis-server)")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--logfile", str(self.log_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on {self.port}")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


def kill_hard(process: subprocess.Popen | None) -> None:
    if process and process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.wait()


# The sender: composer.js over plain HTTP ----------------------------------------------------


@dataclass
class SendLog:
    ids: list[int] = field(default_factory=list)  # in the order sent, one per message
    bodies: list[str] = field(default_factory=list)
    attempts: int = 0
    refused: int = 0  # connection refused or reset, timed out
    server_errors: Counter = field(default_factory=Counter)  # status -> count (all retried)
    answered_by_retry: int = 0  # 200: the message was already stored by an earlier attempt
    over_socket: int = 0  # answered over the sender's websocket
    socket_unanswered: int = 0  # the socket was closed or silent: posted instead
    slowest: float = 0.0  # seconds, from the first attempt to the stored answer


class Sender(threading.Thread):
    """Sends `fault-NNNN` messages one after another, with a fresh client token per message and
    the same token on every retry of it: over its websocket while that answers, else posted to
    the first server that answers."""

    def __init__(self, ports: list[int], cookies: dict[str, str], room_id: int) -> None:
        super().__init__(daemon=True)
        self.ports = ports
        self.cookies = dict(cookies)
        self.room_id = room_id
        self.log = SendLog()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.connections: dict[int, http.client.HTTPConnection] = {}
        self.socket: SocketTab | None = None
        self.socket_turns = 0

    def request(self, port: int, form: dict) -> tuple[int, str]:
        connection = self.connections.get(port)
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=8)
            self.connections[port] = connection
        headers = {
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
            "Content-Type": "application/x-www-form-urlencoded",
            "X-CSRFToken": self.cookies["csrftoken"],
        }
        try:
            connection.request(
                "POST", f"/rooms/{self.room_id}/messages/", body=urlencode(form), headers=headers
            )
            response = connection.getresponse()
            return response.status, response.read().decode()
        except BaseException:
            connection.close()
            del self.connections[port]
            raise

    def over_socket(self, form: dict) -> dict | None:
        """message.send on the sender's socket (opened on the servers in turn): the answer, or
        None when the socket cannot be opened, closes or stays silent for SOCKET_WAIT."""
        try:
            if self.socket is None:
                port = self.ports[self.socket_turns % len(self.ports)]
                self.socket_turns += 1
                cookies = {"sessionid": self.cookies["sessionid"]}
                self.socket = SocketTab(port, cookies, timeout=SOCKET_WAIT)
            return self.socket.ask({"type": "message.send", "room": self.room_id, **form})
        except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake):
            if self.socket is not None:
                self.socket.close()
            self.socket = None
            return None

    def send_one(self, seq: int) -> None:
        body = f"fault-{seq:04d}"
        form = {"body": body, "client_token": str(uuid.uuid4())}
        began = time.monotonic()
        self.log.attempts += 1
        reply = self.over_socket(form)
        if reply is not None:
            if reply["type"] != "message.sent":
                raise AssertionError(f"message.send {body} refused: {reply}")
            self.log.over_socket += 1
            self.log.ids.append(reply["id"])
            self.log.bodies.append(body)
            self.log.slowest = max(self.log.slowest, time.monotonic() - began)
            return
        self.log.socket_unanswered += 1
        for attempt in range(60):
            port = self.ports[attempt % len(self.ports)]  # a refusal moves on to the other
            self.log.attempts += 1
            try:
                status, html = self.request(port, form)
            except (OSError, http.client.HTTPException):
                self.log.refused += 1
                time.sleep(0.1 * min(attempt, 5))
                continue
            if status >= 500:
                self.log.server_errors[status] += 1
                time.sleep(0.1 * min(attempt, 5))
                continue
            if status not in (200, 201):
                raise AssertionError(f"POST {body} gave {status}: {html[:300]}")
            self.log.answered_by_retry += status == 200
            self.log.ids.append(int(re.search(r'id="msg-(\d+)"', html).group(1)))
            self.log.bodies.append(body)
            self.log.slowest = max(self.log.slowest, time.monotonic() - began)
            return
        raise AssertionError(f"{body} was never accepted")

    def run(self) -> None:
        try:
            seq = 0
            while not self.stop.is_set():
                seq += 1
                self.send_one(seq)
                time.sleep(SEND_INTERVAL)
        except BaseException as error:  # reported by the test
            self.error = error
        finally:
            if self.socket is not None:
                self.socket.close()


# Readers: live.js over a real websocket -----------------------------------------------------


class Reader(threading.Thread):
    """One tab. Like live.js: on open it sends resume (last id, since − 5 s); it places each
    message by id (a second copy replaces the first); a new message whose `prev` it never got
    means a frame was lost, so it resumes from there, as it does on a "resync" frame (its
    process lost Redis for a while); a dropped socket reconnects with backoff (capped at 1 s
    here, 5 s in live.js), to the other server process when its own refuses."""

    def __init__(self, name: str, session: str, ports: list[int], home: int, baseline: int):
        super().__init__(daemon=True, name=f"reader-{name}")
        self.person = name
        self.session = session
        self.ports = ports
        self.current = home
        self.loaded_up_to = baseline  # the page's data-last-id
        self.last_id = baseline
        self.since = time.time()
        self.messages: dict[int, str] = {}  # id -> html, what the tab shows
        self.arrivals: list[int] = []  # ids in the order first received
        self.copies = Counter()  # frames per id, before placing
        self.newest_in_room: dict[int, int] = {}
        self.gaps_asked: set[int] = set()
        self.connects = 0
        self.failovers = 0
        self.gap_resumes = 0
        self.resyncs = 0
        self.errors: list[dict] = []
        self.socket: ClientConnection | None = None
        self.stop = threading.Event()
        self.failure: BaseException | None = None

    def drop(self) -> None:
        """Cut the connection as a network failure would: no closing handshake."""
        sock = self.socket
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.socket.shutdown(socket.SHUT_RDWR)

    def open(self) -> ClientConnection:
        port = self.ports[self.current]
        return connect(
            f"ws://127.0.0.1:{port}/ws/",
            origin=f"http://127.0.0.1:{port}",
            additional_headers={"Cookie": f"sessionid={self.session}"},
            proxy=None,
            open_timeout=5,
            close_timeout=1,
        )

    def resume(self, from_id: int) -> None:
        self.socket.send(
            json.dumps({"type": "resume", "last_id": from_id, "since": max(0, self.since - 5)})
        )

    def on_frame(self, frame: dict) -> None:
        if frame.get("ts"):
            self.since = max(self.since, frame["ts"])
        kind = frame["type"]
        if kind == "error":
            self.errors.append(frame)
        if kind == "resync":
            self.resyncs += 1
            self.resume(self.last_id)
        if kind != "message.new":
            return
        prev = frame.get("prev") or 0
        if prev > self.loaded_up_to and prev not in self.messages and prev not in self.gaps_asked:
            self.gaps_asked.add(prev)
            self.gap_resumes += 1
            self.resume(min(self.newest_in_room.get(frame["room"], self.loaded_up_to), prev - 1))
        message_id = frame["id"]
        self.copies[message_id] += 1
        if message_id not in self.messages:
            self.arrivals.append(message_id)
        self.messages[message_id] = frame["html"]
        self.last_id = max(self.last_id, message_id)
        room = frame["room"]
        self.newest_in_room[room] = max(self.newest_in_room.get(room, 0), message_id)

    def run(self) -> None:
        try:
            retry = 0
            while not self.stop.is_set():
                try:
                    connection = self.open()
                except (OSError, InvalidHandshake, TimeoutError):
                    # This process is gone: the next attempt goes to the other one.
                    self.current = 1 - self.current
                    self.failovers += 1
                else:
                    retry = 0
                    self.connects += 1
                    with connection:
                        self.listen(connection)
                retry += 1
                time.sleep(min(1.0, 0.1 * 2**retry) * (0.5 + random.random() / 2))
        except BaseException as error:  # reported by the test
            self.failure = error

    def listen(self, connection: ClientConnection) -> None:
        self.socket = connection
        try:
            self.resume(self.last_id)
            while not self.stop.is_set():
                try:
                    text = connection.recv(timeout=0.25)
                except TimeoutError:
                    continue
                self.on_frame(json.loads(text))
        except (ConnectionClosed, OSError):
            pass  # dropped: reconnect, as live.js does on "close"
        finally:
            self.socket = None


# Emails at the sink -------------------------------------------------------------------------

MORE = re.compile(r"…and (\d+) more\.")


class Inboxes:
    """What each reader's mailbox holds: one email per Message-ID (a second SMTP delivery of
    the same Message-ID is kept by no mail store), each listing messages by their text and
    counting the earlier ones it left out ("…and 12 more.")."""

    def __init__(self, sink: SmtpSink, bodies: list[str]) -> None:
        known = set(bodies)
        self.emails: dict[str, dict[str, tuple[list[str], int]]] = {}  # rcpt -> id -> listed, more
        self.deliveries: Counter = Counter()  # (rcpt, Message-ID) -> SMTP deliveries
        for _, rcpts, raw in list(sink.mails):
            mail = email.message_from_bytes(raw, policy=email.policy.default)
            text = mail.get_body(preferencelist=("plain",)).get_content()
            listed = [b for b in re.findall(r"fault-\d{4}", text) if b in known]
            more = MORE.search(text)
            for rcpt in rcpts:
                self.deliveries[(rcpt, mail["Message-ID"])] += 1
                self.emails.setdefault(rcpt, {})[mail["Message-ID"]] = (
                    listed,
                    int(more.group(1)) if more else 0,
                )

    def listed(self, rcpt: str) -> Counter:
        return Counter(b for listed, _ in self.emails.get(rcpt, {}).values() for b in listed)

    def told(self, rcpt: str) -> int:
        """Messages this person was told about: listed, or counted among the left-out."""
        return sum(len(listed) + more for listed, more in self.emails.get(rcpt, {}).values())

    def left_out(self, rcpt: str) -> int:
        return sum(more for _, more in self.emails.get(rcpt, {}).values())


def page_cookies(port: int, person, room) -> dict[str, str]:
    """Session and CSRF cookies, as a tab has them once the room's page has loaded."""
    cookies = {"sessionid": client_for(person).cookies["sessionid"].value}
    page = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    page.request(
        "GET", room.get_absolute_url(), headers={"Cookie": f"sessionid={cookies['sessionid']}"}
    )
    response = page.getresponse()
    response.read()
    page.close()
    assert response.status == 200
    for header in response.headers.get_all("Set-Cookie") or []:
        cookies.update({k: m.value for k, m in SimpleCookie(header).items()})
    return cookies


def newest_message_id() -> int:
    return Message.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def server_env(test_database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": test_database_url,
        "REDIS_URL": redis_url,
        "CHANNEL_LAYER_PREFIX": "faults",
        "PASSWORD_HASHERS": ",".join(FAST_HASHERS),
        "LOG_LEVEL": "WARNING",
        **GENEROUS_RATE_LIMITS,
        **extra,
    }


# The tests --------------------------------------------------------------------------------


def test_a_socket_open_through_a_redis_restart_gets_what_was_sent_meanwhile(
    test_database_url, transactional_db
):
    """The tail case: nothing follows the lost message to reveal the gap, so the process that
    lost its Redis connection tells its sockets to replay once Redis is back."""
    redis_server = RedisServer().start()
    try:
        with AppServer(env=server_env(test_database_url, redis_server.url)) as server:
            alice, bob = make_person("alice", "Alice Adams"), make_person("bob", "Bob Jones")
            befriend(alice, bob)
            room = do_create_room(alice, kind=RoomKind.GROUP, title="Tail", members=[bob])
            sender = Sender([server.port], page_cookies(server.port, alice, room), room.pk)
            bob_tab = Reader(
                "bob", client_for(bob).cookies["sessionid"].value, [server.port] * 2, 0,
                newest_message_id(),
            )  # fmt: skip
            bob_tab.start()
            assert wait_until(lambda: bob_tab.connects == 1, 15)
            sender.send_one(1)
            assert wait_until(lambda: len(bob_tab.messages) == 1, 10), "live delivery failed"

            redis_server.kill()
            sender.send_one(2)  # stored (201), rate limit and live publish skipped
            lost = sender.log.ids[-1]
            time.sleep(1.0)
            assert lost not in bob_tab.messages  # its frame had nowhere to go
            redis_server.start()

            assert wait_until(lambda: lost in bob_tab.messages, 15), server.log()
            bob_tab.stop.set()
            bob_tab.join(5)
    finally:
        redis_server.kill()
    assert bob_tab.failure is None
    assert sorted(bob_tab.messages) == sender.log.ids
    assert (bob_tab.connects, bob_tab.resyncs) == (1, 1)  # replayed over the same socket
    assert sender.log.server_errors == Counter()


@pytest.fixture
def stack(test_database_url, transactional_db):
    redis_server = RedisServer().start()
    with SmtpSink() as sink:
        env = server_env(
            test_database_url,
            redis_server.url,
            CELERY_TASK_ALWAYS_EAGER="false",
            EMAIL_URL=sink.url,
            EMAIL_TIMEOUT="2",
            PARLEY_NOTIFY_BATCH_SECONDS="1",
            PARLEY_NOTIFY_SWEEP_SECONDS="1",
            PARLEY_NOTIFY_CLAIM_LEASE_SECONDS="3",
        )
        processes: dict = {"redis": redis_server, "sink": sink, "env": env}
        supervisor = Supervisor(processes)
        try:
            processes["a"] = AppServer(env=env).start()
            processes["b"] = AppServer(env=env).start()
            processes["worker"] = CeleryWorker(env).__enter__()
            processes["beat"] = CeleryBeat(env).__enter__()
            processes["supervisor"] = supervisor
            supervisor.start()
            yield processes
        finally:
            supervisor.stop.set()
            supervisor.join(90)
            for name in ("beat", "worker"):
                if name in processes:
                    processes[name].__exit__(None, None, None)
            for name in ("a", "b"):
                if name in processes:
                    processes[name].stop()
            redis_server.kill()


class Supervisor(threading.Thread):
    """Starts a new Celery worker or beat whenever one has exited, as systemd's
    Restart=always does in production. (kombu 5.7's Redis transport can crash a worker with
    "Unrecoverable error: AttributeError" when Redis goes away; a supervisor is needed anyway
    for a worker killed outright.)"""

    def __init__(self, processes: dict) -> None:
        super().__init__(daemon=True)
        self.processes = processes
        self.stop = threading.Event()
        self.restarts: list[tuple[float, str]] = []  # (time.monotonic(), what)
        self.failure: BaseException | None = None

    def run(self) -> None:
        kinds = {"worker": CeleryWorker, "beat": CeleryBeat}
        try:
            while not self.stop.wait(0.2):
                for name, kind in kinds.items():
                    gone = self.processes[name]
                    if gone.process.poll() is None:
                        continue
                    gone.__exit__(None, None, None)
                    exited = time.monotonic()
                    self.processes[name] = kind(self.processes["env"]).__enter__()
                    self.restarts.append(
                        (exited, f"{name} exited ({gone.process.returncode}), started a new one")
                    )
        except BaseException as error:  # reported by the test
            self.failure = error


def wait_until(condition, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def test_no_message_or_email_is_lost_or_doubled_through_crashes_and_restarts(stack):
    alice = make_person("alice", "Alice Adams")
    readers = [make_person(name, name.title()) for name in READERS]
    befriend(alice, *readers)
    room = do_create_room(alice, kind=RoomKind.GROUP, title="Faults", members=readers)
    a, b, sink = stack["a"], stack["b"], stack["sink"]
    ports = [a.port, b.port]

    sender_cookies = page_cookies(a.port, alice, room)

    baseline = newest_message_id()
    tabs = [
        Reader(p.username, client_for(p).cookies["sessionid"].value, ports, n % 2, baseline)
        for n, p in enumerate(readers)
    ]
    for tab in tabs:
        tab.start()
    assert wait_until(lambda: all(t.connects for t in tabs), 20), "readers did not connect"
    sender = Sender(ports, sender_cookies, room.pk)
    sender.start()
    timeline: list[str] = []
    started = time.monotonic()

    def note(event: str) -> None:
        timeline.append(f"{time.monotonic() - started:5.1f}s {event} (sent {len(sender.log.ids)})")

    # 1. server A dies mid-stream; its readers and the sender go to B; A comes back.
    time.sleep(2.5)
    kill_hard(a.process)
    note("killed server A")
    time.sleep(1.5)
    a.start()
    note("server A restarted")

    # 2. Redis dies with everything it held and comes back on the same port.
    time.sleep(2.0)
    stack["redis"].kill()
    note("killed Redis")
    time.sleep(1.5)
    stack["redis"].start()
    note("Redis restarted")

    # 3 and 4. Sockets drop at random; the worker dies while it is sending emails (and the
    # supervisor starts a new one).
    emails_before = len(sink.mails)
    drops = 0
    killed_worker = False
    chaos_began = time.monotonic()
    # At least 9 s of dropped sockets, and on until the worker was caught sending (a new
    # worker may first need a few seconds to start after the Redis restart).
    while time.monotonic() - chaos_began < (9.0 if killed_worker else 30.0):
        time.sleep(random.uniform(0.3, 0.8))
        random.choice(tabs).drop()
        drops += 1
        worker = stack["worker"].process
        if not killed_worker and len(sink.mails) > emails_before and worker.poll() is None:
            # An email has just reached the sink: the worker is in the middle of a batch run.
            kill_hard(worker)
            killed_worker = True
            note(f"killed the Celery worker after email {len(sink.mails)}")
    note(f"dropped {drops} sockets")
    time.sleep(1.5)  # a calm tail: the last frames travel on settled connections
    sender.stop.set()
    sender.join(30)
    note("sender stopped")
    timeline.extend(
        f"{t - started:5.1f}s supervisor: {what}" for t, what in stack["supervisor"].restarts
    )
    assert sender.error is None, f"sender failed: {sender.error!r}\n" + "\n".join(timeline)
    assert killed_worker, "no email went out while the stream ran"
    sent_ids, bodies = sender.log.ids, sender.log.bodies

    # Every reader catches up; every reader gets each message in exactly one email.
    everything = set(sent_ids)
    wait_until(lambda: all(everything <= set(t.messages) for t in tabs), CONVERGE_TIMEOUT)
    recipients = [p.email for p in readers]

    def emails_complete() -> bool:
        inboxes = Inboxes(sink, bodies)
        return all(inboxes.told(r) >= len(bodies) for r in recipients)

    wait_until(emails_complete, CONVERGE_TIMEOUT, step=0.5)
    time.sleep(2 * 1.5)  # anything that would be sent twice has had the time to arrive
    for tab in tabs:
        tab.stop.set()
    for tab in tabs:
        tab.join(5)

    inboxes = Inboxes(sink, bodies)
    listed = {r: inboxes.listed(r) for r in recipients}
    stored = Counter(
        Message.objects.filter(room=room, body__startswith="fault-").values_list("body", flat=True)
    )
    per_reader = {
        t.person: {
            "delivered": len(everything & set(t.messages)),
            "lost": len(everything - set(t.messages)),
            "extra": len(set(t.messages) - everything),
            "frames_received_twice": sum(c - 1 for c in t.copies.values() if c > 1),
            "arrived_out_of_order": sum(
                1 for n, i in enumerate(t.arrivals) if i < max(t.arrivals[:n], default=0)
            ),
            "connects": t.connects,
            "failovers": t.failovers,
            "gap_resumes": t.gap_resumes,
            "resyncs": t.resyncs,
            "error_frames": len(t.errors),
            "missing": sorted(everything - set(t.messages)),
        }
        for t in tabs
    }
    report = {
        "messages_sent": len(sent_ids),
        "messages_stored": sum(stored.values()),
        "stored_twice": sum(c - 1 for c in stored.values()),
        "delivered": sum(r["delivered"] for r in per_reader.values()),
        "expected_deliveries": len(sent_ids) * len(tabs),
        "lost": sum(r["lost"] for r in per_reader.values()),
        "sender": {
            "attempts": sender.log.attempts,
            "answered_over_the_socket": sender.log.over_socket,
            "socket_closed_or_silent_then_posted": sender.log.socket_unanswered,
            "refused_or_reset_then_retried": sender.log.refused,
            "5xx_then_retried": dict(sender.log.server_errors),
            "retries_answered_with_the_stored_message": sender.log.answered_by_retry,
            "slowest_send_seconds": round(sender.log.slowest, 2),
        },
        "emails": {
            "expected": len(bodies) * len(recipients),
            "told": sum(inboxes.told(r) for r in recipients),
            "listed": sum(len(listed[r]) for r in recipients),
            "counted_as_more": sum(inboxes.left_out(r) for r in recipients),
            "listed_in_two_emails": sum(c - 1 for r in recipients for c in listed[r].values()),
            "neither_listed_nor_counted": sum(
                max(0, len(bodies) - len(listed[r]) - inboxes.left_out(r)) for r in recipients
            ),
            "emails_sent": len(inboxes.deliveries),
            "smtp_redeliveries_same_message_id": sum(c - 1 for c in inboxes.deliveries.values()),
            "per_recipient": {
                r: [[mid, lst, more] for mid, (lst, more) in inboxes.emails.get(r, {}).items()]
                for r in recipients
            },
        },
        "first_id": sent_ids[0] if sent_ids else None,
        "readers": per_reader,
        "timeline": timeline,
    }
    mails = report["emails"]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2))
    summary = {**report, "emails": {k: v for k, v in mails.items() if k != "per_recipient"}}
    detail = json.dumps(summary, indent=2) + f"\n(emails one by one in {REPORT})"
    print(detail)

    assert [t.failure for t in tabs] == [None] * len(tabs), detail
    assert stack["supervisor"].failure is None, detail
    # Each message stored once, and each tab shows each of them once, in id order.
    assert report["messages_stored"] == len(sent_ids) == len(set(sent_ids)), detail
    assert report["stored_twice"] == 0, detail
    assert sent_ids == sorted(sent_ids), detail
    for tab in tabs:
        shown = sorted(tab.messages)  # live.js inserts each message at its id's place
        assert shown == sent_ids, f"{tab.person}: {detail}"
        assert all("fault-" in tab.messages[i] for i in sent_ids), detail
        assert tab.errors == [], f"{tab.person} got error frames {tab.errors}"
    assert report["lost"] == 0, detail
    # Emails: each reader was told about each message exactly once (in one email by Message-ID):
    # listed in one email, or among the earlier messages an email counts but leaves out.
    assert mails["listed_in_two_emails"] == 0, detail
    assert mails["neither_listed_nor_counted"] == 0, detail
    assert [inboxes.told(r) for r in recipients] == [len(bodies)] * len(recipients), detail
    # At most the one email in flight when the worker died can reach the SMTP server twice,
    # with the same Message-ID (mail stores keep one); see README "What survives what".
    assert mails["smtp_redeliveries_same_message_id"] <= 1, detail
    # The faults happened where they should have: readers moved and resumed.
    assert sum(r["failovers"] for r in per_reader.values()) >= 1, detail
    assert sum(r["connects"] for r in per_reader.values()) > len(tabs), detail
