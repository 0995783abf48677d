"""History: "load older" — the 50 messages before a point in a room, in a 1M-message database.

Reuses bench/search.py's corpus (1,000,000 messages in 1,000 rooms; the person "searcher" is in
100 of them) and builds it when the database does not hold it yet. Then, in this process, times
the real path the page's "Loading older messages…" takes: GET /rooms/<id>/messages/?before=<id>
through Django's test Client (session, user, access check, rooms/queries.py messages_before, the
history fragment), and messages_before alone, at random points of the searcher's rooms. Prints
one JSON object: p50/p95/p99 wall and CPU time, SQL queries per request (and which), the load.

    psql -h 127.0.0.1 -U postgres -c 'create database parley_load_history_bench'
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/parley_load_history_bench \\
        .venv/bin/python bench/history.py

The database's name must contain "bench" (building the corpus empties it). Options: --samples
(300), --messages (1000000: the corpus size to expect or build).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import search  # noqa: E402
from bench.common import StatementCounter, migrate, setup_django  # noqa: E402
from bench.load import Machine  # noqa: E402

TARGET = {"p95_ms": 15, "queries": 3}
WARMUP = 30
SEED = 9


def percentiles(seconds: list[float]) -> dict:
    ordered = sorted(seconds)

    def rank(p: float) -> float:
        return round(ordered[math.ceil(p * len(ordered)) - 1] * 1000, 2)

    return {
        "p50": round(statistics.median(ordered) * 1000, 2),
        "p95": rank(0.95),
        "p99": rank(0.99),
        "max": round(ordered[-1] * 1000, 2),
    }


def points(samples: int) -> list[tuple[int, int]]:
    """(room id, before id) pairs: a random message of one of the searcher's rooms each."""
    from django.db.models import Count

    from accounts.models import User
    from rooms.models import Membership, Message

    rng = random.Random(SEED)
    searcher = User.objects.get(username=search.SEARCHER)
    rooms = list(
        Membership.objects.filter(user=searcher)
        .annotate(messages=Count("room__messages"))
        .filter(messages__gt=100)
        .values_list("room_id", flat=True)
    )
    chosen = []
    for _ in range(samples):
        room_id = rng.choice(rooms)
        ids = Message.objects.filter(room_id=room_id).order_by("id").values_list("id", flat=True)
        count = ids.count()
        chosen.append((room_id, ids[rng.randrange(60, count)]))
    return chosen


def measure(samples: list[tuple[int, int]]) -> dict:
    from django.test import Client

    from accounts.models import User
    from rooms.models import Room
    from rooms.queries import messages_before

    client = Client(HTTP_HOST="localhost")
    client.force_login(User.objects.get(username=search.SEARCHER))
    view_wall, view_cpu, view_queries = [], [], set()
    query_wall, query_cpu, query_queries = [], [], set()
    example: list[str] = []
    for n, (room_id, before) in enumerate(samples[:WARMUP] + samples):
        with StatementCounter() as captured:
            cpu, wall = time.process_time(), time.perf_counter()
            response = client.get(
                f"/rooms/{room_id}/messages/?before={before}", headers={"HX-Request": "true"}
            )
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if response.status_code != 200 or response.content.count(b'class="msg ') != 50:
            raise SystemExit(f"room {room_id} before {before}: {response.status_code}")
        room = Room.objects.get(pk=room_id)
        with StatementCounter() as alone:
            cpu_alone, started = time.process_time(), time.perf_counter()
            page, _ = messages_before(room, before=before)
            elapsed, cpu_alone = time.perf_counter() - started, time.process_time() - cpu_alone
        if n < WARMUP:
            continue
        view_wall.append(wall)
        view_cpu.append(cpu)
        view_queries.add(len(captured))
        query_wall.append(elapsed)
        query_cpu.append(cpu_alone)
        query_queries.add(len(alone))
        example = example or [sql[:160] for sql in captured.statements]
    return {
        "view": {
            "wall_ms": percentiles(view_wall),
            "cpu_ms": percentiles(view_cpu),
            "queries": sorted(view_queries),
        },
        "messages_before": {
            "wall_ms": percentiles(query_wall),
            "cpu_ms": percentiles(query_cpu),
            "queries": sorted(query_queries),
        },
        "example_request_queries": example,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--messages", type=int, default=1_000_000)
    args = parser.parse_args()
    machine = Machine()
    setup_django()
    from django.db import connection

    corpus = argparse.Namespace(messages=args.messages, rooms=1000, people=500, my_rooms=100)
    build = {"reused": True}
    if search.corpus_exists(corpus):
        migrate()
    else:
        build = {"reused": False, **search.build_corpus(corpus, connection.vendor)}
    # The app loaded as a server process loads it, its startup heap frozen (messages_site/asgi.py).
    import messages_site.asgi  # noqa: F401

    figures = measure(points(args.samples))
    print(
        json.dumps(
            {
                "benchmark": "history",
                "database": connection.vendor,
                "corpus": {"messages": args.messages, **build},
                "samples": args.samples,
                "page_size": 50,
                **figures,
                "target": TARGET,
                "machine": machine.finish(),
            }
        )
    )


if __name__ == "__main__":
    main()
