"""Helpers shared by the issue 9 load benchmarks: the machine's load, the generator's own CPU,
people in rooms with sessions, server processes (Daphne or Uvicorn) and asyncio websocket
clients. Import after putting the repository root on sys.path (each script does it first).

Every load benchmark reads the same environment as the servers it starts:
DATABASE_URL (PostgreSQL), REDIS_URL and CHANNEL_LAYER_PREFIX.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import re
import resource
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import websockets

from bench.common import calibration_ms, cpu_seconds
from tests.live import AppServer, HttpTab

CHURNED_TABLES = (
    "rooms_room",
    "rooms_message",
    "rooms_membership",
    "django_session",
    "accounts_user",
)
SERVER_ENV_KEYS = (
    "DATABASE_URL",
    "DATABASE_PREPARED_STATEMENTS",
    "REDIS_URL",
    "CHANNEL_LAYER_PREFIX",
    "PARLEY_DATA_DIR",
    "PASSWORD_HASHERS",
)


class DaphneServer(AppServer):
    """The same ASGI app under Daphne, for the Daphne-or-Uvicorn comparison."""

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(self.port),
            "messages_site.asgi:application",
        ]


SERVER_KINDS = {"uvicorn": AppServer, "daphne": DaphneServer}


def raise_open_files_limit() -> int:
    """Soft limit on open files up to the hard limit (servers started later inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def own_cpu_seconds() -> float:
    """User + system CPU of this process so far (not of its children: the servers are those)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


@dataclass
class Machine:
    """nproc, the load average and the calibration at the start; `finish` adds them at the
    end."""

    nproc: int = field(default_factory=lambda: os.cpu_count() or 0)
    load_before: list[float] = field(default_factory=load_average)
    calibration_before: float = field(default_factory=calibration_ms)

    def finish(self) -> dict:
        return {
            "nproc": self.nproc,
            "load_average_before": self.load_before,
            "load_average_after": load_average(),
            "sum_range_1e6_ms_before": self.calibration_before,
            "sum_range_1e6_ms_after": calibration_ms(),
        }


def server_env(**extra: str) -> dict[str, str]:
    env = {key: os.environ[key] for key in SERVER_ENV_KEYS if os.environ.get(key)}
    env["LOG_LEVEL"] = "WARNING"
    # The generators post far faster than one person may; measure the system, not the guard.
    env["RATE_LIMIT_SEND"] = os.environ.get("RATE_LIMIT_SEND", "1000000")
    return {**env, **extra}


@contextmanager
def servers(count: int, env: dict[str, str], kind: str = "uvicorn") -> Iterator[list]:
    """`count` server processes with `env`, stopped on exit whatever happens."""
    with ExitStack() as stack:
        yield [stack.enter_context(SERVER_KINDS[kind](env=env)) for _ in range(count)]


def server_cpu(processes: list) -> list[float]:
    return [cpu_seconds(server.process.pid) for server in processes]


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class Cast:
    """People (with logged-in sessions) and rooms made for one run; `clean_up` deletes them."""

    run: str
    user_ids: list[int]
    sessions: list[str]  # the same order as user_ids
    room_ids: list[int]


def vacuum_churned_tables() -> None:
    """Clear what earlier runs left behind, so that each run starts from the same tables. Each
    run makes and deletes its people, rooms and messages, and each message rewrites its room's
    row; this machine's PostgreSQL runs with autovacuum off, so the dead rows only pile up
    (92,000 dead versions of room rows after an hour of runs)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for table in CHURNED_TABLES:
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(table)}")


def make_cast(people: int, rooms: list[list[int]], *, sessions: bool = True) -> Cast:
    """`people` people and one group room per entry of `rooms` (indexes into the people; the
    first of each is the owner)."""
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import User
    from bench.common import session_keys
    from rooms.models import Membership, Role, Room, RoomKind

    vacuum_churned_tables()
    run = uuid.uuid4().hex[:8]
    password = make_password("bench-password")
    with transaction.atomic():
        User.objects.bulk_create(
            (
                User(username=f"load-{run}-{n:05d}", password=password, display_name=f"Load {n}")
                for n in range(people)
            ),
            batch_size=2000,
        )
        everyone = list(User.objects.filter(username__startswith=f"load-{run}-").order_by("pk"))
        made = Room.objects.bulk_create(
            Room(kind=RoomKind.GROUP, title=f"Load {run} {n}", last_activity=timezone.now())
            for n in range(len(rooms))
        )
        Membership.objects.bulk_create(
            (
                Membership(
                    room=room, user=everyone[index], role=Role.OWNER if n == 0 else Role.MEMBER
                )
                for room, members in zip(made, rooms, strict=True)
                for n, index in enumerate(members)
            ),
            batch_size=5000,
        )
        keys = session_keys(everyone) if sessions else {}
    return Cast(
        run=run,
        user_ids=[person.pk for person in everyone],
        sessions=[keys.get(person.pk, "") for person in everyone],
        room_ids=[room.pk for room in made],
    )


def username(cast: Cast, index: int) -> str:
    return f"load-{cast.run}-{index:05d}"


def clean_up(cast: Cast) -> None:
    from django.contrib.sessions.models import Session
    from django.db import transaction

    from accounts.models import User
    from rooms.models import Room

    with transaction.atomic():
        Room.objects.filter(pk__in=cast.room_ids).delete()
        Session.objects.filter(session_key__in=[s for s in cast.sessions if s]).delete()
        User.objects.filter(username__startswith=f"load-{cast.run}-").delete()


async def wait_until_quiet(processes: list, limit: float = 120.0, share: float = 0.1) -> float:
    """Wait until every server uses less than `share` of a core over a second."""
    began = time.monotonic()
    while time.monotonic() - began < limit:
        before = server_cpu(processes)
        await asyncio.sleep(1.0)
        after = server_cpu(processes)
        if max(b - a for a, b in zip(before, after, strict=True)) < share:
            break
    return round(time.monotonic() - began, 1)


def progress(name: str, text: str) -> None:
    print(f"{name}: {text}", file=sys.stderr, flush=True)


# Generator processes holding many sockets -----------------------------------------------------

CONNECT_ATTEMPTS = 4
MESSAGE_FRAME = re.compile(r'^\{"type":"message\.new","room":(\d+),"id":(\d+)')


@dataclass
class Person:
    """One tab the generator opens: by session, or by logging in first with username."""

    index: int
    session: str = ""
    username: str = ""
    last_id: int | None = None  # send "resume" with it once the socket is open


@dataclass
class WorkerSpec:
    servers: list[tuple[str, str, int]]  # (url, ws_url, port) of each server
    people: list[Person]
    cookie_name: str
    password: str = "bench-password"
    concurrency: int = 20
    start_at: float = 0.0  # wall-clock time to begin; 0 = at once
    spread: float = 0.0  # begin person k of n at start_at + spread * k / n
    ping_every: float = 0.0  # send live.js's heartbeat this often per socket (0 = never)


@dataclass
class Tab:
    index: int
    began: float = 0.0
    logged_in: float = 0.0
    opened: float = 0.0
    resumed: float = 0.0
    caught_up: int = 0
    retries: int = 0
    error: str = ""


def worker_main(conn, spec: WorkerSpec) -> None:
    """Entry point of one generator process: answers "cpu", "counts" and "stop" on `conn`."""
    raise_open_files_limit()
    asyncio.run(_worker(conn, spec))


async def _worker(conn, spec: WorkerSpec) -> None:
    from concurrent.futures import ThreadPoolExecutor

    loop = asyncio.get_running_loop()
    logins = ThreadPoolExecutor(max_workers=spec.concurrency)
    gate = asyncio.Semaphore(spec.concurrency)
    arrivals: list[tuple[float, int]] = []  # (receive time, message id)
    counts = {"frames": 0, "pongs": 0, "closed": 0}
    tabs = [Tab(person.index) for person in spec.people]
    sockets: list = []

    def login(person: Person, server) -> str:
        tab = HttpTab(server[2], {})
        try:
            tab.fetch_csrf_token("/accounts/login/")
            status, text = tab.request(
                "POST",
                "/accounts/login/",
                {"username": person.username, "password": spec.password},
            )
            if status != 302 or spec.cookie_name not in tab.cookies:
                raise RuntimeError(f"login gave {status}: {' '.join(text.split())[:120]}")
            return tab.cookies[spec.cookie_name]
        finally:
            tab.close()

    async def listen(socket, tab: Tab, person: Person) -> None:
        waiting_resume = person.last_id is not None
        try:
            async for text in socket:
                now = time.time()
                counts["frames"] += 1
                found = MESSAGE_FRAME.match(text)
                if found:
                    arrivals.append((now, int(found.group(2))))
                    if waiting_resume:
                        tab.caught_up += 1
                elif text == '{"type":"pong"}':
                    counts["pongs"] += 1
                elif waiting_resume and '"resume.done"' in text[:40]:
                    tab.resumed = now
                    waiting_resume = False
        except websockets.ConnectionClosed:
            pass
        counts["closed"] += 1

    async def heartbeat(socket) -> None:
        await asyncio.sleep(random.uniform(0, spec.ping_every))
        while True:
            try:
                await socket.send('{"type":"ping","away":false}')
            except websockets.ConnectionClosed:
                return
            await asyncio.sleep(spec.ping_every)

    async def open_tab(k: int, person: Person, tab: Tab) -> None:
        if spec.start_at:
            delay = spec.start_at + spec.spread * k / len(spec.people) - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
        server = spec.servers[person.index % len(spec.servers)]
        tab.began = time.time()
        session = person.session
        # Like live.js, a tab whose handshake fails tries again after a growing pause.
        for attempt in range(CONNECT_ATTEMPTS):
            try:
                async with gate:
                    if person.username and not tab.logged_in:
                        session = await loop.run_in_executor(logins, login, person, server)
                        tab.logged_in = time.time()
                    socket = await websockets.connect(
                        server[1],
                        origin=server[0],
                        additional_headers={"Cookie": f"{spec.cookie_name}={session}"},
                        # Offered, as browsers do; the servers decline it (deploy/Procfile).
                        compression="deflate",
                        proxy=None,
                        open_timeout=60,
                        ping_interval=None,
                        max_queue=None,
                    )
                    tab.opened = time.time()
                    break
            except Exception as error:  # counted and reported; the run goes on
                tab.error = repr(error)[:200]
                if attempt == CONNECT_ATTEMPTS - 1:
                    return
                tab.retries += 1
                await asyncio.sleep(0.5 * 2**attempt)
        tab.error = ""
        sockets.append(socket)
        tasks.append(asyncio.create_task(listen(socket, tab, person)))
        if person.last_id is not None:
            await socket.send(json.dumps({"type": "resume", "last_id": person.last_id}))
        if spec.ping_every:
            tasks.append(asyncio.create_task(heartbeat(socket)))

    tasks: list[asyncio.Task] = []
    await asyncio.gather(
        *(open_tab(k, p, t) for k, (p, t) in enumerate(zip(spec.people, tabs, strict=True)))
    )
    conn.send(
        (
            "connected",
            sum(1 for t in tabs if t.opened),
            [t.error for t in tabs if t.error],
            sum(t.retries for t in tabs),
        )
    )
    handed_out = 0
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "cpu":
            conn.send(own_cpu_seconds())
        elif command == "counts":
            conn.send({**counts, "messages": len(arrivals)})
        elif command == "arrivals_since":
            conn.send(arrivals[handed_out:])
            handed_out = len(arrivals)
        elif command == "stop":
            break
    for task in tasks:
        task.cancel()
    await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
    conn.send(
        {
            "tabs": [vars(tab) for tab in tabs],
            "arrivals": arrivals,
            "counts": counts,
            "cpu_seconds": own_cpu_seconds(),
        }
    )
    logins.shutdown(wait=False)


class Generators:
    """Several generator processes sharing `people` round-robin; one asyncio loop each."""

    def __init__(self, processes: int, spec: WorkerSpec) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes = []
        self.workers = []
        for n in range(processes):
            mine = spec.people[n::processes]
            parent, child = context.Pipe()
            worker = context.Process(
                target=worker_main,
                args=(child, WorkerSpec(**{**vars(spec), "people": mine})),
                daemon=True,
            )
            worker.start()
            self.pipes.append(parent)
            self.workers.append(worker)

    def wait_connected(self, timeout: float = 900.0) -> tuple[int, list[str]]:
        """(sockets open, failures); `retries` holds the handshakes tried again."""
        opened, errors, self.retries = 0, [], 0
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise RuntimeError("a generator did not finish connecting")
            _, count, failed, retries = pipe.recv()
            opened += count
            errors += failed
            self.retries += retries
        return opened, errors

    def ask(self, command: str) -> list:
        for pipe in self.pipes:
            pipe.send(command)
        return [pipe.recv() for pipe in self.pipes]

    def cpu(self) -> float:
        return sum(self.ask("cpu"))

    def stop(self) -> dict:
        results = self.ask("stop")
        for worker in self.workers:
            worker.join(timeout=30)
        return {
            "tabs": [tab for result in results for tab in result["tabs"]],
            "arrivals": [a for result in results for a in result["arrivals"]],
            "counts": {
                key: sum(result["counts"][key] for result in results)
                for key in results[0]["counts"]
            },
            "cpu_seconds": sum(result["cpu_seconds"] for result in results),
        }

    def kill(self) -> None:
        for worker in self.workers:
            if worker.is_alive():
                worker.kill()


def server_addresses(processes: list) -> list[tuple[str, str, int]]:
    return [(server.url, server.ws_url, server.port) for server in processes]
