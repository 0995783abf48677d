"""Page speed with a full sidebar: the room list and opening a room, for someone in 500 rooms.

Builds a database where "reader" is in 500 rooms (400 group rooms with three other people,
100 direct rooms) of 200 messages each, unread in 100 of them (1 to 30 unread messages each,
some @mentioning the reader), with reactions on recent messages. Read pointers are consistent:
a read room's pointer is its last message, an unread room's sits just before its first unread
one. A second person, "light", is in 10 rooms (4 direct rooms of their own, 6 of the reader's
group rooms; read and unread ones of each kind), to show that the query counts do not grow with
the number of rooms.

Then, in this process, Django's test Client times each request (server time: the whole request
handling, middleware and templates included, without a network; in a worker thread of a running
event loop, as the server runs views) and bench.common's StatementCounter counts its SQL queries
(without Django's debug cursor, which would slow them):

- room_list: GET /rooms/list/, the conversation list that every page shows (its first
  page of rooms; room_list_next_page: each further page, loaded as the list is scrolled);
- open_room: GET /rooms/<id>/, the full room page (its sidebar included), cycling through all
  the rooms; opening an unread room marks it read, so its pointer is put back (untimed) first
  and every pass sees the same 100 unread rooms.

Message fragments and list entries come from Django's cache (this process's locmem cache, or
Redis with REDIS_URL), keyed by what they show (rooms/fragments.py). The list's entries are
warm after the warm-up. Opening rooms is timed twice:

- open_room: the messages rendered cold, as the timed openings go through the 500 rooms in
  turn and the bulk-inserted messages were never sent through Parley (someone opening rooms
  whose fragments have left the cache);
- open_room_sent_live: after each room's latest page of fragments is cached as sending those
  messages through Parley would have (a send caches the fragment it renders for its live
  event), which is the usual case while the cache holds them.

Prints one JSON object: p50/p95 per page, query counts at 500 and at 10 rooms, the targets
(room list p95 <= 50 ms with equal query counts; opening a room p95 <= 60 ms) and the machine.

PostgreSQL (the database must exist and have "bench" in its name; a build empties it):

    psql -h 127.0.0.1 -U postgres -c 'create database parley_pages_bench'
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/parley_pages_bench \\
        .venv/bin/python bench/pages.py

SQLite (var/bench-pages.sqlite3 unless DATABASE_URL says otherwise):

    .venv/bin/python bench/pages.py

Options: --iterations N (timed requests per page, 300), --reuse (keep a database built before).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asgiref.sync import sync_to_async  # noqa: E402

from bench.common import (  # noqa: E402
    ROOT,
    StatementCounter,
    calibration_ms,
    machine,
    migrate,
    setup_django,
)

SEED = 20150601
ROOMS = 500
DIRECT_ROOMS = 100
MESSAGES_PER_ROOM = 200
UNREAD_ROOMS = 100
PEOPLE = 120
LIGHT_DIRECT_ROOMS = 4
LIGHT_ROOMS = LIGHT_DIRECT_ROOMS + 6
READER, LIGHT = "reader", "light"
TARGETS = {"room_list_p95_ms": 50, "open_room_p95_ms": 60}
WARMUP = 20


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--reuse", action="store_true", help="keep a database built before")
    return parser.parse_args()


def wipe(vendor: str) -> None:
    """Empty the benchmark database completely, schema included, then migrate it."""
    from django.db import connection

    name = str(connection.settings_dict["NAME"])
    if "bench" not in Path(name).name:
        raise SystemExit(f"Refusing to replace {name!r}: a benchmark database's name has 'bench'.")
    if vendor == "sqlite":
        connection.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{name}{suffix}").unlink(missing_ok=True)
    else:
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA public CASCADE")
            cursor.execute("CREATE SCHEMA public")
    migrate()


def built() -> bool:
    from django.db.utils import DatabaseError

    from rooms.models import Message

    try:
        kinds = list(room_kinds(READER).values())
        return (
            len(kinds) == ROOMS
            and sum(kind.endswith("_unread") for kind in kinds) == UNREAD_ROOMS
            and len(set(room_kinds(LIGHT).values())) == 4
            and Message.objects.count() == (ROOMS + LIGHT_DIRECT_ROOMS) * MESSAGES_PER_ROOM
        )
    except DatabaseError:
        return False


def build(vendor: str) -> float:
    """Fill the database; returns the seconds it took."""
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction

    from accounts.models import User
    from rooms.formatting import render_message
    from rooms.models import Membership, Mention, Message, Reaction, Role, Room, RoomKind

    wipe(vendor)
    started = time.perf_counter()
    rng = random.Random(SEED)
    now = datetime.now(UTC)
    password = make_password(None)
    with transaction.atomic():
        users = User.objects.bulk_create(
            User(
                username=name,
                display_name=name.title(),
                email=f"{name}@example.com",
                password=password,
            )
            for name in [READER, LIGHT] + [f"person{n}" for n in range(PEOPLE)]
        )
        reader, light, people = users[0], users[1], users[2:]
        # The reader's 500 rooms (the first 100 direct), then the light person's own direct
        # rooms; the light person's group rooms are some of the reader's.
        plan = [(reader, [people[n]]) for n in range(DIRECT_ROOMS)]
        plan += [(reader, rng.sample(people, 3)) for _ in range(ROOMS - DIRECT_ROOMS)]
        plan += [(light, [people[DIRECT_ROOMS + n]]) for n in range(LIGHT_DIRECT_ROOMS)]
        rooms = Room.objects.bulk_create(
            Room(
                kind=RoomKind.DIRECT if len(others) == 1 else RoomKind.GROUP,
                title="" if len(others) == 1 else f"Project {n}",
                direct_key=f"{owner.pk}:{others[0].pk}" if len(others) == 1 else None,
                last_activity=now,
            )
            for n, (owner, others) in enumerate(plan)
        )
        owner_of = {room.pk: owner for room, (owner, _) in zip(rooms, plan, strict=True)}
        members = {room.pk: others for room, (_, others) in zip(rooms, plan, strict=True)}
        Membership.objects.bulk_create(
            Membership(room=room, user=owner_of[room.pk], role=Role.OWNER) for room in rooms
        )
        Membership.objects.bulk_create(
            Membership(room=room, user=person, role=Role.MEMBER)
            for room in rooms
            for person in members[room.pk]
        )

        # The same few texts rendered once; ids interleave across rooms as in real traffic.
        texts = [
            "Morning! The **draft** is up, comments welcome.",
            "Can we move the call to 3pm? :coffee:",
            "Shipped `v2.3` to staging, see https://example.com/notes",
            "> quoting the brief\nAgreed, let's keep it short.",
            "Thanks, looks good to me 👍",
        ]
        rendered = [(text, render_message(text)) for text in texts]
        batch: list[Message] = []
        for step in range(MESSAGES_PER_ROOM):
            for room in rooms:
                own = step % 7 == 3
                sender = owner_of[room.pk] if own else rng.choice(members[room.pk])
                body, html = rendered[rng.randrange(len(rendered))]
                batch.append(Message(room=room, sender=sender, body=body, body_html=html))
            if len(batch) >= 5000:
                Message.objects.bulk_create(batch)
                batch = []
        Message.objects.bulk_create(batch)

        readers_rooms, lights_direct = rooms[:ROOMS], rooms[ROOMS:]
        group_ids = [room.pk for room in readers_rooms[DIRECT_ROOMS:]]
        unread_rooms = set(rng.sample([room.pk for room in readers_rooms], UNREAD_ROOMS))
        unread_rooms |= {room.pk for room in lights_direct[: LIGHT_DIRECT_ROOMS // 2]}
        # The light person's group rooms: unread and read ones, as the reader has them.
        light_groups = rng.sample([pk for pk in group_ids if pk in unread_rooms], 3)
        light_groups += rng.sample([pk for pk in group_ids if pk not in unread_rooms], 3)
        Membership.objects.bulk_create(
            Membership(room_id=room_id, user=light, role=Role.MEMBER) for room_id in light_groups
        )
        mentions, reactions = [], []
        order = list(rooms)
        rng.shuffle(order)  # activity order differs from creation order
        for rank, room in enumerate(order):
            ids = list(
                Message.objects.filter(room=room).order_by("id").values_list("id", "sender_id")
            )
            last_id = ids[-1][0]
            Room.objects.filter(pk=room.pk).update(
                last_message_id=last_id, last_activity=now - timedelta(minutes=rank)
            )
            for message_id, _ in ids[-50:][::5]:
                reactions.append(
                    Reaction(message_id=message_id, user=members[room.pk][0], emoji="👍")
                )
            pointer = last_id
            if room.pk in unread_rooms:
                # Unread from the first message after the pointer: 1 to 30 from other people.
                owner = owner_of[room.pk]
                from_others = [mid for mid, sender in ids if sender != owner.pk]
                unread = from_others[-rng.randint(1, 30) :]
                pointer = unread[0] - 1
                if rng.random() < 0.3:
                    mentioned = unread[-1]
                    text = f"@{owner.username} could you look at this?"
                    html = render_message(text, mentions={owner.username: owner.display_name})
                    Message.objects.filter(pk=mentioned).update(body=text, body_html=html)
                    mentions.append(Mention(message_id=mentioned, user=owner))
            Membership.objects.filter(room=room, user__in=[reader, light]).update(
                last_read_id=pointer
            )
        Mention.objects.bulk_create(mentions)
        Reaction.objects.bulk_create(reactions)
    if vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return round(time.perf_counter() - started, 1)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]  # nearest rank


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


class Timings:
    """Wall-clock and CPU time per request, and the SQL query counts seen."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.queries: set[int] = set()

    def add(self, wall: float, cpu: float, queries: int) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)
        self.queries.add(queries)

    def figures(self) -> dict:
        return {
            "p50_ms": ms(statistics.median(self.wall)),
            "p95_ms": ms(percentile(self.wall, 0.95)),
            "max_ms": ms(max(self.wall)),
            # This process's CPU time: what the request costs, whatever else the machine runs.
            "cpu_p50_ms": ms(statistics.median(self.cpu)),
            "cpu_p95_ms": ms(percentile(self.cpu, 0.95)),
            "requests": len(self.wall),
            "queries": self.query_count(),
        }

    def query_count(self) -> int | list[int]:
        return next(iter(self.queries)) if len(self.queries) == 1 else sorted(self.queries)


def measure(client, path: str, timings: Timings | None = None, *, after=None) -> tuple[int, str]:
    """One GET, timed into `timings`; `after` runs once it is done, untimed and uncounted.

    Returns the number of SQL queries and the page.
    """
    with StatementCounter() as captured:
        cpu, wall = time.process_time(), time.perf_counter()
        response = client.get(path)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if after is not None:
        after()
    if response.status_code != 200:
        raise SystemExit(f"GET {path} gave {response.status_code}: {response.content[:300]!r}")
    if timings is not None:
        timings.add(wall, cpu, len(captured))
    return len(captured), response.content.decode()


def room_kinds(username: str) -> dict[int, str]:
    """{room id: "direct_unread", "group_read", ...} for the person's rooms."""
    from rooms.models import Membership

    memberships = Membership.objects.filter(user__username=username).select_related("room")
    kinds = {}
    for m in memberships:
        state = "unread" if m.last_read_id < m.room.last_message_id else "read"
        kinds[m.room_id] = f"{m.room.kind}_{state}"
    return kinds


def run(iterations: int) -> dict:
    from django.test import Client

    from accounts.models import User
    from rooms.fragments import with_message_html
    from rooms.models import Membership, Room
    from rooms.queries import messages_before

    def client_for(username: str) -> Client:
        client = Client(HTTP_HOST="localhost")
        client.force_login(User.objects.get(username=username))
        return client

    reader, light = client_for(READER), client_for(LIGHT)
    pointers = dict(
        Membership.objects.filter(user__username=READER).values_list("room_id", "last_read_id")
    )
    light_pointers = list(
        Membership.objects.filter(user__username=LIGHT).values_list("pk", "last_read_id")
    )
    kinds = room_kinds(READER)
    light_kinds = room_kinds(LIGHT)  # before anything reads them
    room_ids = sorted(pointers)
    random.Random(SEED).shuffle(room_ids)  # every kind of room early, whatever the count

    def put_back(room_id: int):
        # Opening an unread room reads it: put the pointer back, so every pass is the same
        # (and a later --reuse run starts from the same state)
        return lambda: Membership.objects.filter(room_id=room_id, user__username=READER).update(
            last_read_id=pointers[room_id]
        )

    for _ in range(WARMUP):
        measure(reader, "/rooms/list/")
    room_list = Timings()
    for _ in range(iterations):
        _, html = measure(reader, "/rooms/list/", room_list)
    result: dict = {
        "room_list": room_list.figures()
        | {
            "rooms_listed": html.count('class="room-item'),
            "unread_listed": html.count('class="room-item unread"'),
        }
    }
    # Scrolling the list: every further page, in turn, until the last.
    next_page, pages = Timings(), 0
    while pages < iterations:
        found = re.search(r'hx-get="([^"]+)" hx-trigger="intersect once"', html)
        if found is None:
            if pages == 0:
                break  # the whole list fits on the first page
            _, html = measure(reader, "/rooms/list/")
            continue
        _, html = measure(reader, unescape(found.group(1)), next_page)
        pages += 1
    if pages:
        result["room_list_next_page"] = next_page.figures()

    def open_rooms() -> dict:
        for room_id in room_ids[:WARMUP]:
            measure(reader, f"/rooms/{room_id}/", after=put_back(room_id))
        every, by_kind = Timings(), {kind: Timings() for kind in sorted(set(kinds.values()))}
        for n in range(iterations):
            room_id = room_ids[n % len(room_ids)]
            queries, _ = measure(reader, f"/rooms/{room_id}/", every, after=put_back(room_id))
            by_kind[kinds[room_id]].add(every.wall[-1], every.cpu[-1], queries)
        overall = every.figures()
        del overall["queries"]  # it depends on the kind of room, shown below
        return overall | {kind: t.figures() for kind, t in by_kind.items() if t.wall}

    result["open_room"] = open_rooms()
    # A message sent through Parley leaves its fragment in the cache (rendered for its live
    # event); these were bulk-inserted, so cache each room's latest page as sending would have.
    started = time.perf_counter()
    for room in Room.objects.filter(pk__in=room_ids):
        with_message_html(messages_before(room)[0])
    cached_in = round(time.perf_counter() - started, 1)
    result["open_room_sent_live"] = open_rooms() | {"fragments_cached_seconds": cached_in}

    queries, html = measure(light, "/rooms/list/")
    at_10: dict = {
        "rooms_listed": html.count('class="room-item'),
        "unread_listed": html.count('class="room-item unread"'),
        "room_list_queries": queries,
        "open_room_queries": {},
    }
    for room_id, kind in sorted(light_kinds.items()):
        if kind not in at_10["open_room_queries"]:
            at_10["open_room_queries"][kind] = measure(light, f"/rooms/{room_id}/")[0]
    for pk, last_read_id in light_pointers:
        Membership.objects.filter(pk=pk).update(last_read_id=last_read_id)
    result["at_10_rooms"] = at_10
    return result


def main() -> None:
    args = parse_args()
    load_before = round(os.getloadavg()[0], 2)
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'bench-pages.sqlite3'}")
    setup_django()
    from django.db import connection

    vendor = connection.vendor
    build_seconds = None
    if args.reuse:
        migrate()
    reused = args.reuse and built()
    if not reused:
        build_seconds = build(vendor)
    # The app loaded as a server process loads it, its startup heap frozen out of the garbage
    # collector's full passes as messages_site/asgi.py does (not frozen, a full pass here
    # costs 60-100 ms, a request's p95 in itself).
    import messages_site.asgi  # noqa: F401

    # Requests run where the server runs a view: in a worker thread of a running event loop. A
    # live event a request publishes (opening an unread room publishes its read state) then
    # hops to that loop and its Redis connection, as in a server, instead of starting a loop,
    # a thread and a Redis connection of its own (~2 ms more per publish).
    figures = asyncio.run(sync_to_async(run)(args.iterations))
    at_10 = figures["at_10_rooms"]
    opened = {
        kind: figures["open_room"].get(kind, {}).get("queries")
        for kind in at_10["open_room_queries"]
    }
    checks = {
        "room_list_p95_ok": figures["room_list"]["p95_ms"] <= TARGETS["room_list_p95_ms"],
        "room_list_same_queries_at_10_and_500": (
            figures["room_list"]["queries"] == at_10["room_list_queries"]
        ),
        "open_room_p95_ok": figures["open_room"]["p95_ms"] <= TARGETS["open_room_p95_ms"],
        "open_room_sent_live_p95_ok": (
            figures["open_room_sent_live"]["p95_ms"] <= TARGETS["open_room_p95_ms"]
        ),
        "open_room_same_queries_at_10_and_500": opened == at_10["open_room_queries"],
    }
    print(
        json.dumps(
            {
                "benchmark": "pages",
                "database": vendor,
                "data": {
                    "rooms": ROOMS,
                    "direct_rooms": DIRECT_ROOMS,
                    "messages_per_room": MESSAGES_PER_ROOM,
                    "unread_rooms": UNREAD_ROOMS,
                    "light_user_rooms": LIGHT_ROOMS,
                    "build_seconds": build_seconds,
                    "reused": reused,
                },
                **figures,
                "targets": TARGETS,
                "checks": checks,
                "machine": machine()
                | {"load_average_1m_before": load_before, "sum_range_1e6_ms": calibration_ms()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
