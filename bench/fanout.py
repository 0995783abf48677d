"""Live fan-out: how long a message sent takes to reach N open websockets.

One sender posts M messages at R per second through the page endpoint (POST
/rooms/<id>/messages/, one keep-alive connection, scheduled by absolute time), or with
--send-over socket as the composer does (message.send over the sender's own websocket, which
also receives the room's frames; those are not counted), into a group room of N+1 people;
each of the N others holds one websocket, spread round-robin over K server processes. Prints
one JSON object: deliver latency (receive time minus send time, on this process's clock), the
sender's request latency, delivered/lost/duplicate counts, CPU time of this load generator, of
the servers and of Redis/PostgreSQL, and the configuration.

The standard run is against PostgreSQL and Redis, from the repository root:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/parley_bench \\
    REDIS_URL=redis://127.0.0.1:6379/2 .venv/bin/python bench/fanout.py

Options: --clients N (100) --messages M (300) --rate R (20) --servers K (1) --grace S (2)
--senders S (1: concurrent senders, spread over the servers) --server uvicorn|daphne
--send-over http|socket (http).
The database must exist (`psql -h 127.0.0.1 -U postgres -c 'create database parley_bench'`);
the script migrates it, adds its own people and room, and deletes them afterwards. With no
DATABASE_URL it uses a throw-away SQLite file; with no REDIS_URL, Channels' in-memory layer,
which only works for one server process. The servers get RATE_LIMIT_SEND=1000000 (unless set):
one sender posts faster than the per-person limit allows. Sockets connect before the clock
starts, and sending waits until connecting has stopped producing frames and the servers are
idle. Only loopback traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import websockets  # noqa: E402

from bench.common import (  # noqa: E402
    FAST_HASHERS,
    ROOT,
    cpu_by_pid,
    cpu_seconds,
    cpu_used,
    machine,
    migrate,
    pids_named,
    session_cookie_name,
    session_keys,
    setup_django,
    summary_ms,
)
from bench.load import SERVER_KINDS, vacuum_churned_tables  # noqa: E402
from bench.load import servers as server_processes  # noqa: E402
from tests.live import HttpTab, SocketTab  # noqa: E402

CONNECT_TIMEOUT = 60.0  # one handshake
CONNECT_BUDGET = 180.0  # all of them
CONNECT_ATTEMPTS = 4
CONCURRENT_HANDSHAKES = 10
SETTLE_LIMIT = 120.0
# A server using less than this share of a core is done with the connect phase.
IDLE_CPU_SHARE = 0.1
# The sender gives up once it is this far behind its schedule, so a stuck server ends the run.
GIVE_UP_AFTER = 30.0


@dataclass
class Cast:
    """The benchmark's people and room in the database."""

    run: str
    room_id: int
    sender_session: str
    receiver_sessions: list[str]


@dataclass
class Sent:
    seq: int
    message_id: int | None
    sent_at: float
    answered_at: float


@dataclass
class Sender:
    """Posts messages first, first + step, ... below `messages` on the schedule of `rate` per
    second (all senders together), on one keep-alive HTTP connection."""

    port: int
    cookies: dict[str, str]
    room_id: int
    messages: int
    rate: float
    first: int = 0
    step: int = 1
    # "http": POST to the page endpoint; "socket": message.send over a websocket.
    over: str = "http"
    sent: list[Sent] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    finished_at: float = 0.0

    def run(self, start_at: float) -> None:
        try:
            if self.over == "socket":
                tab = SocketTab(self.port, self.cookies, timeout=GIVE_UP_AFTER)
            else:
                tab = HttpTab(self.port, self.cookies)
                tab.fetch_csrf_token(f"/rooms/{self.room_id}/")
        except Exception as error:
            self.errors.append(f"sender did not start: {error!r}"[:300])
            self.finished_at = time.time()
            return
        try:
            self._send_all(tab, start_at)
        except Exception as error:  # reported in the figures rather than lost with the thread
            self.errors.append(f"sender stopped: {error!r}"[:300])
        finally:
            tab.close()
            self.finished_at = time.time()

    def _send_all(self, tab: HttpTab | SocketTab, start_at: float) -> None:
        for seq in range(self.first, self.messages, self.step):
            due = start_at + seq / self.rate
            now = time.time()
            if now - due > GIVE_UP_AFTER:
                self.errors.append(f"gave up at message {seq}: {now - due:.1f}s behind")
                break
            if due > now:
                time.sleep(due - now)
            sent_at = time.time()
            try:
                message_id = tab.send_message(self.room_id, f"bench {seq} {sent_at:.6f}")
            except (OSError, RuntimeError) as error:
                message_id = None
                self.errors.append(f"message {seq}: {error}"[:300])
                tab.close()  # http.client reconnects on the next request
            self.sent.append(Sent(seq, message_id, sent_at, time.time()))


class CpuMeter:
    """CPU seconds used between `start` and `stop` by this process, the servers and services."""

    def __init__(self, server_pids: list[int]) -> None:
        self.server_pids = server_pids

    def _read(self) -> tuple[float, list[float], dict[int, float], dict[int, float]]:
        return (
            time.process_time(),
            [cpu_seconds(pid) for pid in self.server_pids],
            cpu_by_pid(pids_named("redis-server")),
            cpu_by_pid(pids_named("postgres")),
        )

    def start(self) -> None:
        self.before = self._read()

    def stop(self) -> dict:
        after = self._read()
        servers = zip(self.before[1], after[1], strict=True)
        return {
            "load_generator": round(after[0] - self.before[0], 3),
            "servers": [round(end - start, 3) for start, end in servers],
            # Every process of that name on the machine, whatever else it was doing.
            "redis_server": round(cpu_used(self.before[2], after[2]), 3),
            "postgres_all": round(cpu_used(self.before[3], after[3]), 3),
        }


def prepare(clients: int) -> Cast:
    """N+1 people in one group room, each with a logged-in session."""
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import User
    from rooms.models import Membership, Role, Room, RoomKind

    vacuum_churned_tables()
    run = uuid.uuid4().hex[:8]
    password = make_password("bench-password")
    with transaction.atomic():
        User.objects.bulk_create(
            User(username=f"bench-{run}-{n:05d}", password=password, display_name=f"Bench {n}")
            for n in range(clients + 1)
        )
        people = list(
            User.objects.filter(username__startswith=f"bench-{run}-").order_by("username")
        )
        room = Room.objects.create(
            kind=RoomKind.GROUP, title=f"Fan-out bench {run}", last_activity=timezone.now()
        )
        Membership.objects.bulk_create(
            Membership(room=room, user=person, role=Role.OWNER if n == 0 else Role.MEMBER)
            for n, person in enumerate(people)
        )
        keys = session_keys(people)
    return Cast(
        run=run,
        room_id=room.pk,
        sender_session=keys[people[0].pk],
        receiver_sessions=[keys[person.pk] for person in people[1:]],
    )


def clean_up(cast: Cast) -> None:
    from django.contrib.sessions.models import Session
    from django.db import transaction

    from accounts.models import User
    from rooms.models import Room

    with transaction.atomic():
        Room.objects.filter(pk=cast.room_id).delete()
        Session.objects.filter(
            session_key__in=[cast.sender_session, *cast.receiver_sessions]
        ).delete()
        User.objects.filter(username__startswith=f"bench-{cast.run}-").delete()


@dataclass
class Connected:
    sockets: list  # the open ones
    retries: int = 0
    failures: list[str] = field(default_factory=list)


async def open_sockets(
    servers, sessions: list[str], cookie_name: str, compression: str = "deflate"
) -> Connected:
    """One socket per session, round-robin over the servers.

    A handshake the server refuses or drops (Daphne gives up after 5 s when connecting is
    slow) is retried; one that still fails is reported, and its receiver gets nothing.
    """
    gate = asyncio.Semaphore(CONCURRENT_HANDSHAKES)
    connected = Connected(sockets=[])

    async def open_one(n: int, session: str) -> None:
        server = servers[n % len(servers)]
        for attempt in range(CONNECT_ATTEMPTS):
            try:
                async with gate:
                    socket = await websockets.connect(
                        server.ws_url,
                        origin=server.url,
                        additional_headers={"Cookie": f"{cookie_name}={session}"},
                        # "deflate" offers permessage-deflate, as every browser does (the
                        # servers decline it: deploy/Procfile).
                        compression=None if compression == "none" else compression,
                        proxy=None,
                        open_timeout=CONNECT_TIMEOUT,
                    )
            except (OSError, TimeoutError, websockets.InvalidHandshake) as error:
                if attempt == CONNECT_ATTEMPTS - 1:
                    connected.failures.append(repr(error)[:200])
                    return
                connected.retries += 1
                await asyncio.sleep(0.5 * 2**attempt)
            else:
                connected.sockets.append(socket)
                return

    tasks = [asyncio.create_task(open_one(n, s)) for n, s in enumerate(sessions)]
    _, late = await asyncio.wait(tasks, timeout=CONNECT_BUDGET)
    for task in late:
        task.cancel()
        connected.failures.append(f"not connected within {CONNECT_BUDGET:.0f}s")
    return connected


async def listen(socket, sink: list[tuple[float, str]], tally: list[int]) -> None:
    """Note each frame's arrival time first; frames are decoded after the run."""
    try:
        async for text in socket:
            sink.append((time.time(), text))
            if '"type":"message.new"' in text:
                tally[0] += 1
    except websockets.ConnectionClosed:
        pass


async def settle(sinks: list[list], server_pids: list[int]) -> int:
    """Wait until connecting has stopped making work (presence news, say) before sending.

    Done when a second passes with no new frame and idle servers. Returns how many frames
    arrived meanwhile; they are not part of the measurement.
    """
    deadline = time.monotonic() + SETTLE_LIMIT
    while time.monotonic() < deadline:
        frames, busy = sum(map(len, sinks)), [cpu_seconds(pid) for pid in server_pids]
        await asyncio.sleep(1.0)
        busiest = max(
            cpu_seconds(pid) - before for pid, before in zip(server_pids, busy, strict=True)
        )
        if sum(map(len, sinks)) == frames and busiest < IDLE_CPU_SHARE:
            break
    arrived = sum(map(len, sinks))
    for sink in sinks:
        sink.clear()
    return arrived


async def measure(args, servers, cast: Cast, cookie_name: str) -> dict:
    began = time.monotonic()
    connection = await open_sockets(servers, cast.receiver_sessions, cookie_name, args.compression)
    sockets = connection.sockets
    connected_at = time.monotonic()
    sinks: list[list[tuple[float, str]]] = [[] for _ in sockets]
    tally = [0]
    listeners = [
        asyncio.create_task(listen(socket, sink, tally))
        for socket, sink in zip(sockets, sinks, strict=True)
    ]
    server_pids = [server.process.pid for server in servers]
    frames_while_connecting = await settle(sinks, server_pids)
    settled_at = time.monotonic()
    tally[0] = 0
    open_at_start = sum(1 for socket in sockets if socket.close_code is None)
    progress(
        f"{len(sockets)} sockets connected in {connected_at - began:.1f}s, quiet after "
        f"{settled_at - connected_at:.1f}s more; sending {args.messages} messages at {args.rate}/s"
    )

    # Several senders (the same person's tabs, spread over the servers) keep the schedule when
    # one request takes longer than the gap between messages.
    senders = [
        Sender(
            port=servers[k % len(servers)].port,
            cookies={cookie_name: cast.sender_session},
            room_id=cast.room_id,
            messages=args.messages,
            rate=args.rate,
            first=k,
            step=args.senders,
            over=args.send_over,
        )
        for k in range(args.senders)
    ]
    expected = len(cast.receiver_sessions) * args.messages
    cpu = CpuMeter(server_pids)
    cpu.start()
    start_at = time.time() + 1.0  # time for the senders to fetch their CSRF tokens
    threads = [
        threading.Thread(target=s.run, args=(start_at,), name=f"sender-{k}")
        for k, s in enumerate(senders)
    ]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        await asyncio.sleep(0.05)
    sender = Sender(port=0, cookies={}, room_id=cast.room_id, messages=0, rate=args.rate)
    sender.sent = sorted((s for one in senders for s in one.sent), key=lambda s: s.seq)
    sender.errors = [error for one in senders for error in one.errors]
    sender.finished_at = max(one.finished_at for one in senders)
    grace_until = sender.finished_at + args.grace
    while tally[0] < expected and time.time() < grace_until:
        await asyncio.sleep(0.02)
    cpu_used = cpu.stop()
    progress(f"sent {len(sender.sent)}; {tally[0]} of {expected} frames arrived; closing")

    dropped = sum(1 for socket in sockets if socket.close_code is not None)
    await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)
    await asyncio.gather(*listeners)

    sent = sender.sent
    spread = sent[-1].sent_at - sent[0].sent_at if len(sent) > 1 else 0.0
    return {
        **tally_frames(sinks, sender, cast.room_id, expected),
        "messages_sent": sum(1 for s in sent if s.message_id is not None),
        "send_errors": len(sender.errors),
        "send_error_samples": sender.errors[:2] + sender.errors[2:][-1:],
        "achieved_rate": round((len(sent) - 1) / spread, 2) if spread else None,
        "sockets_open_when_sending_began": open_at_start,
        "sockets_dropped_by_server": dropped,
        "connect": {
            "seconds": round(connected_at - began, 2),
            "retries": connection.retries,
            "failed": len(connection.failures),
            "failure_samples": connection.failures[:2],
            "settle_seconds": round(settled_at - connected_at, 2),
            "frames_while_settling": frames_while_connecting,
        },
        "cpu_seconds_during_send": cpu_used,
        "server_logs": [str(server.log_path.relative_to(ROOT)) for server in servers],
    }


def progress(text: str) -> None:
    print(f"fanout: {text}", file=sys.stderr, flush=True)


def tally_frames(sinks, sender: Sender, room_id: int, expected: int) -> dict:
    sent_at = {s.message_id: s.sent_at for s in sender.sent if s.message_id is not None}
    latencies, to_event, from_event = [], [], []
    arrivals: dict[int, list[float]] = defaultdict(list)
    seen: set[tuple[int, int]] = set()
    duplicates = unknown = 0
    for receiver, sink in enumerate(sinks):
        for received_at, text in sink:
            frame = json.loads(text)
            if frame.get("type") != "message.new" or frame.get("room") != room_id:
                continue
            message_id = frame["id"]
            if message_id not in sent_at:
                unknown += 1  # its POST failed, yet the message was stored
                continue
            if (receiver, message_id) in seen:
                duplicates += 1
                continue
            seen.add((receiver, message_id))
            latencies.append(received_at - sent_at[message_id])
            from_event.append(received_at - frame["ts"])
            if not arrivals[message_id]:
                to_event.append(frame["ts"] - sent_at[message_id])
            arrivals[message_id].append(received_at)
    return {
        "deliver_latency_ms": summary_ms(latencies),
        "send_request_latency_ms": summary_ms([s.answered_at - s.sent_at for s in sender.sent]),
        "delivered": len(seen) + duplicates,
        "expected": expected,
        "lost": expected - len(seen),
        "duplicates": duplicates,
        "frames_for_failed_posts": unknown,
        # Where deliver latency goes: the server stamps the event ("ts") inside the request,
        # before commit; after it come commit, fan-out through the layer and the socket.
        "breakdown_ms": {
            "send_to_event_built": summary_ms(to_event),
            "event_built_to_receive": summary_ms(from_event),
            "first_to_last_receiver": summary_ms(
                [max(times) - min(times) for times in arrivals.values()]
            ),
        },
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100, help="receiving websockets (N)")
    parser.add_argument("--messages", type=int, default=300, help="messages to send (M)")
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second (R)")
    parser.add_argument("--servers", type=int, default=1, help="server processes (K)")
    parser.add_argument("--senders", type=int, default=1, help="concurrent senders")
    parser.add_argument("--server", choices=sorted(SERVER_KINDS), default="uvicorn")
    parser.add_argument(
        "--send-over", choices=("http", "socket"), default="http", help="how the senders send"
    )
    parser.add_argument("--grace", type=float, default=2.0, help="seconds to wait for stragglers")
    parser.add_argument(
        "--compression",
        choices=("none", "deflate"),
        default="deflate",
        help="what the receivers' handshakes offer (browsers offer deflate)",
    )
    args = parser.parse_args()
    if min(args.clients, args.messages, args.servers, args.senders) < 1 or args.rate <= 0:
        parser.error("clients, messages, servers and rate must be positive")
    if args.servers > 1 and not os.environ.get("REDIS_URL"):
        parser.error("several server processes share live events only through REDIS_URL")
    return args


def run(args) -> dict:
    setup_django()
    from django.conf import settings
    from django.db import connection, connections

    migrate()
    config = {
        "clients": args.clients,
        "messages": args.messages,
        "rate": args.rate,
        "servers": args.servers,
        "senders": args.senders,
        "send_over": args.send_over,
        "server": args.server,
        "compression": args.compression,
        "grace_s": args.grace,
        "database": connection.vendor,
        "channel_layer": settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1],
    }
    cast = prepare(args.clients)
    connections.close_all()
    env = {
        key: os.environ[key]
        for key in (
            "DATABASE_URL",
            "REDIS_URL",
            "CHANNEL_LAYER_PREFIX",
            "PARLEY_DATA_DIR",
            "PASSWORD_HASHERS",
        )
        if os.environ.get(key)
    }
    env["LOG_LEVEL"] = "WARNING"
    # One sender posts far faster than a person may; this measures fan-out, not the flood guard.
    env["RATE_LIMIT_SEND"] = os.environ.get("RATE_LIMIT_SEND", "1000000")
    try:
        with server_processes(args.servers, env, args.server) as servers:
            try:
                figures = asyncio.run(measure(args, servers, cast, session_cookie_name()))
            except Exception:
                for server in servers:
                    print(f"--- {server.log_path}:\n{server.log()}", file=sys.stderr)
                raise
    finally:
        try:
            clean_up(cast)
        except Exception as error:  # the figures are still worth printing
            print(f"fanout: could not delete run {cast.run}: {error!r}", file=sys.stderr)
    return {"benchmark": "fanout", "config": config, **figures, "machine": machine()}


def main() -> None:
    args = parse_args()
    os.environ.setdefault("PASSWORD_HASHERS", FAST_HASHERS)
    scratch = None
    if not os.environ.get("DATABASE_URL"):
        scratch = tempfile.mkdtemp(prefix="parley-fanout-")
        os.environ["PARLEY_DATA_DIR"] = scratch  # the servers inherit it: same SQLite file
    try:
        print(json.dumps(run(args)))
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
