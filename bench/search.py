"""Message search at scale: latency of rooms.search.search_messages over a large corpus.

Builds a corpus (default 1,000,000 messages in 1,000 rooms from 500 people; the searching
person is in 100 rooms) whose text follows a Zipf-like word-frequency list made here from a
fixed seed, then times a query mix with 1 and 4 concurrent clients, each a process with its own
database connection. Kinds: a rare word, a common word, two words, a phrase and a prefix, each
alone and with from:, in:, before: and after:. Prints one JSON object: p50/p95/p99 per kind and
client count, index sizes, the corpus build time and the machine.

PostgreSQL (the database must exist and have "bench" in its name: a build drops everything in
it, schema included, and migrates it afresh):

    psql -h 127.0.0.1 -U postgres -c 'create database parley_search_bench'
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/parley_search_bench \\
        .venv/bin/python bench/search.py

SQLite (a file of its own, var/bench-search.sqlite3 unless --backend-url says otherwise):

    .venv/bin/python bench/search.py

Options: --messages N (1000000) --rooms (1000) --people (500) --my-rooms (100) --clients 1,4
--repeat R (queries of each kind per client, 30) --reuse (keep an existing corpus of that size).
The build takes minutes at 1M; the time is in the output as build_seconds.
"""

from __future__ import annotations

import argparse
import bisect
import importlib
import itertools
import json
import math
import multiprocessing
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, machine, migrate, setup_django  # noqa: E402

SEED = 20150501
VOCABULARY = 30_000
# Zipf-Mandelbrot: the r-th word (from 0) has weight 1 / (r + OFFSET) ** EXPONENT.
EXPONENT, OFFSET = 1.0, 2.7
HISTORY_DAYS = 3 * 365
SEARCHER = "searcher"
TARGETS = {
    "postgresql": {"p95_ms": 50, "p99_ms": 150},
    "sqlite": {"p95_ms": 100, "p99_ms": None},
}
FUNCTION_WORDS = (  # noqa: SIM905 - a word list reads best as text
    "the to and a of is in it for that you this on we be with have are not at i can so but "
    "do will from as just if all my your what about get our me was there they need one up "
    "out when know think should more would some like no by today now time could here work "
    "also"
).split()
SYLLABLES = (  # noqa: SIM905 - a word list reads best as text
    "ba be bi bo bu da de di do du fa fe fi fo ka ke ki ko ku la le li lo lu ma me mi mo "
    "mu na ne ni no nu pa pe pi po pu ra re ri ro ru sa se si so su ta te ti to tu va ve "
    "vi vo za ze zi zo an en in on ar er ir or al el il ol st tr pl gr"
).split()
KINDS = ("rare", "common", "two_words", "phrase", "prefix")
VARIANTS = ("alone", "from", "in", "before", "after")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--rooms", type=int, default=1_000)
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--my-rooms", type=int, default=100)
    parser.add_argument("--clients", default="1,4")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--backend-url", default="")
    parser.add_argument("--reuse", action="store_true")
    return parser.parse_args()


def vocabulary(rng: random.Random) -> list[str]:
    """Words by falling frequency: function words first, then made-up ones."""
    words = list(FUNCTION_WORDS)
    seen = set(words)
    while len(words) < VOCABULARY:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 2, 3, 3, 3, 4))))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def cumulative_weights(count: int, exponent: float, offset: float) -> list[float]:
    return list(itertools.accumulate(1 / (rank + offset) ** exponent for rank in range(count)))


# The corpus ----------------------------------------------------------------------------------


def corpus_exists(args: argparse.Namespace) -> bool:
    from django.db import DatabaseError

    from accounts.models import User
    from rooms.models import Message

    try:
        return User.objects.filter(username=SEARCHER).exists() and (
            Message.objects.count() == args.messages
        )
    except DatabaseError:  # not migrated yet, or migrated by older code
        return False


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


def build_corpus(args: argparse.Namespace, vendor: str) -> dict:
    from django.db import connection, transaction

    from accounts.models import User
    from rooms.models import Membership, Role, Room, RoomKind

    rng = random.Random(SEED)
    words = vocabulary(rng)
    word_weights = cumulative_weights(len(words), EXPONENT, OFFSET)
    wipe(vendor)
    started = time.perf_counter()
    now = datetime.now(UTC)
    with transaction.atomic():
        people = User.objects.bulk_create(
            User(
                username=SEARCHER if i == 0 else f"user{i}",
                display_name=f"Person {i}",
                password="!",
            )
            for i in range(args.people)
        )
        rooms = Room.objects.bulk_create(
            Room(kind=RoomKind.GROUP, title=f"Room {i}", last_activity=now)
            for i in range(args.rooms)
        )
        mine = set(rng.sample(range(args.rooms), args.my_rooms))
        members: list[list[int]] = []
        rows = []
        for index, room in enumerate(rooms):
            group = rng.sample(people[1:], rng.randint(4, 24))
            if index in mine:
                group.append(people[0])
            members.append([person.pk for person in group])
            rows += [
                Membership(room=room, user=person, role=Role.OWNER if n == 0 else Role.MEMBER)
                for n, person in enumerate(group)
            ]
        Membership.objects.bulk_create(rows, batch_size=5000)
    # Some rooms are busier than others.
    room_weights = cumulative_weights(args.rooms, 0.6, 20)
    room_order = [room.pk for room in rooms]
    rng.shuffle(room_order)
    room_members = dict(zip([room.pk for room in rooms], members, strict=True))
    span = timedelta(days=HISTORY_DAYS) / args.messages
    start = now - timedelta(days=HISTORY_DAYS)

    def messages():
        for i in range(args.messages):
            room_id = room_order[bisect.bisect(room_weights, rng.random() * room_weights[-1])]
            text = " ".join(rng.choices(words, cum_weights=word_weights, k=rng.randint(4, 24)))
            if rng.random() < 0.03:
                text += f" https://example.com/{rng.choice(words)}"
            created = start + span * i
            yield (room_id, rng.choice(room_members[room_id]), text, f"<p>{text}</p>", created)

    loaded = time.perf_counter()
    if vendor == "postgresql":
        _copy_postgres(messages())
    else:
        _insert_sqlite(messages())
    loaded = time.perf_counter() - loaded
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {
        "build_seconds": round(time.perf_counter() - started, 1),
        "load_and_index_seconds": round(loaded, 1),
    }


def _postgres_index_sql() -> list[str]:
    migration = importlib.import_module("rooms.migrations.0003_message_search")
    return [sql for sql in migration.POSTGRES_FORWARD if sql.startswith("CREATE INDEX")]


def _other_columns() -> list[tuple[str, object]]:
    """Columns of rooms_message the corpus leaves to their defaults, with those defaults."""
    from django.db import connection

    from rooms.models import Message

    given = {"id", "room_id", "sender_id", "body", "body_html", "created", "changed"}
    return [
        (field.column, field.get_db_prep_save(field.get_default(), connection))
        for field in Message._meta.concrete_fields
        if field.column not in given
    ]


def _copy_postgres(rows) -> None:
    """COPY the messages; the generated column is filled as rows arrive, the GIN index after."""
    from django.db import connection

    other = _other_columns()
    columns = ", ".join(
        ["room_id", "sender_id", "body", "body_html", "created", "changed", *(c for c, _ in other)]
    )
    defaults = tuple(value for _, value in other)
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS rooms_message_search_vector")
        cursor.execute("DROP INDEX IF EXISTS rooms_message_created_id")
        with cursor.cursor.copy(f"COPY rooms_message ({columns}) FROM STDIN") as copy:
            for room_id, sender_id, body, html, created in rows:
                copy.write_row((room_id, sender_id, body, html, created, created, *defaults))
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for sql in _postgres_index_sql():
            cursor.execute(sql)


def _insert_sqlite(rows) -> None:
    """Plain INSERTs in large transactions; the triggers index each message as it arrives."""
    from django.db import connection, transaction

    other = _other_columns()
    columns = ["room_id", "sender_id", "body", "body_html", "created", "changed"]
    columns += [column for column, _ in other]
    defaults = tuple(value for _, value in other)
    sql = (
        f"INSERT INTO rooms_message ({', '.join(columns)}) "  # noqa: S608 - model column names
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )
    adapt = connection.ops.adapt_datetimefield_value
    while batch := list(itertools.islice(rows, 50_000)):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(
                sql, [(r, s, b, h, adapt(c), adapt(c), *defaults) for r, s, b, h, c in batch]
            )


def index_sizes(vendor: str) -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(
                "SELECT pg_relation_size('rooms_message_search_vector'), "
                "pg_relation_size('rooms_message_created_id'), "
                "pg_total_relation_size('rooms_message'), "
                "(SELECT sum(pg_column_size(search_vector)) FROM rooms_message)"
            )
            gin, created, table, vectors = cursor.fetchone()
            return {
                "gin_index_bytes": gin,
                "created_id_index_bytes": created,
                "tsvector_column_bytes": int(vectors or 0),
                "search_total_bytes": gin + created + int(vectors or 0),
                "message_table_total_bytes": table,
            }
        cursor.execute(
            "SELECT (SELECT coalesce(sum(length(block)), 0) FROM rooms_message_search_data), "
            "(SELECT count(*) FROM rooms_message_search_idx)"
        )
        data, idx_rows = cursor.fetchone()
        cursor.execute("PRAGMA page_size")
        page_size = cursor.fetchone()[0]
        cursor.execute("PRAGMA page_count")
        pages = cursor.fetchone()[0]
        return {
            "fts_data_bytes": data,
            "fts_idx_rows": idx_rows,
            "search_total_bytes": data,
            "database_file_bytes": page_size * pages,
        }


def database_settings(vendor: str) -> dict:
    """What the planner works with: PostgreSQL's cost settings (PGOPTIONS can change them)."""
    from django.db import connection

    with connection.cursor() as cursor:
        if vendor == "postgresql":
            names = ("server_version", "shared_buffers", "random_page_cost", "work_mem")
            values = {}
            for name in names:
                cursor.execute(f"SHOW {name}")
                values[name] = cursor.fetchone()[0]
            return values
        cursor.execute("SELECT sqlite_version()")
        return {"sqlite_version": cursor.fetchone()[0]}


# The query mix -------------------------------------------------------------------------------


def query_mix(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(kind, query) pairs: `repeat` of each kind, made from the same seeded word list."""
    from accounts.models import User
    from rooms.models import Membership

    rng = random.Random(SEED + 1)
    words = vocabulary(random.Random(SEED))
    searcher = User.objects.get(username=SEARCHER)
    my_rooms = list(Membership.objects.filter(user=searcher).values_list("room__title", flat=True))
    others = list(
        Membership.objects.filter(room__memberships__user=searcher)
        .exclude(user=searcher)
        .values_list("user__username", flat=True)
        .distinct()
    )
    end = datetime.now(UTC).date()

    def text(kind: str) -> str:
        if kind == "rare":
            return rng.choice(words[8_000:15_000])
        if kind == "common":
            return rng.choice(words[:10])
        if kind == "two_words":
            return f"{rng.choice(words[10:100])} {rng.choice(words[100:1000])}"
        if kind == "phrase":
            return f'"{rng.choice(words[:50])} {rng.choice(words[:200])}"'
        return rng.choice(words[50:2000])[:3] + "*"

    def operator(variant: str) -> str:
        if variant == "from":
            return f" from:{rng.choice(others)}"
        if variant == "in":
            return f' in:"{rng.choice(my_rooms)}"'
        if variant == "before":
            return f" before:{end - timedelta(days=rng.randint(300, 800)):%Y%m%d}"
        if variant == "after":
            return f" after:{end - timedelta(days=rng.randint(10, 120)):%Y%m%d}"
        return ""

    mix = [
        (f"{kind}+{variant}", text(kind) + operator(variant))
        for kind in KINDS
        for variant in VARIANTS
        for _ in range(args.repeat)
    ]
    return mix


def run_clients(url: str, mix: list[tuple[str, str]], clients: int) -> dict[str, list[float]]:
    """Every client, a process of its own with its own connection, runs the whole mix in its
    own order, all starting together. Seconds per query, by kind."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(clients)
    results = context.Queue()
    processes = [
        context.Process(target=client, args=(url, mix, number, barrier, results))
        for number in range(clients)
    ]
    for process in processes:
        process.start()
    answers = [results.get() for _ in processes]
    for process in processes:
        process.join()
    errors = [error for _, error in answers if error]
    if errors:
        raise RuntimeError(f"search failed: {errors[:3]}")
    times: dict[str, list[float]] = {}
    for timings, _ in answers:
        for kind, seconds in timings:
            times.setdefault(kind, []).append(seconds)
    return times


def client(url: str, mix: list[tuple[str, str]], number: int, barrier, results) -> None:
    os.environ["DATABASE_URL"] = url
    setup_django()
    from accounts.models import User
    from rooms.search import search_messages

    order = list(mix)
    random.Random(number).shuffle(order)
    timings: list[tuple[str, float]] = []
    try:
        searcher = User.objects.get(username=SEARCHER)
        search_messages(searcher, "warm up the connection")
        barrier.wait(timeout=120)
        for kind, query in order:
            started = time.perf_counter()
            search_messages(searcher, query)
            timings.append((kind, time.perf_counter() - started))
    except Exception as error:  # noqa: BLE001 - reported by the parent
        barrier.abort()
        results.put((timings, f"{type(error).__name__}: {error}"[:300]))
        return
    results.put((timings, ""))


def percentiles(seconds: list[float]) -> dict:
    ordered = sorted(seconds)

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)] * 1000, 2)

    return {
        "n": len(ordered),
        "p50": round(statistics.median(ordered) * 1000, 2),
        "p95": rank(0.95),
        "p99": rank(0.99),
        "max": round(ordered[-1] * 1000, 2),
    }


def main() -> None:
    args = parse_args()
    load_before = round(os.getloadavg()[0], 2)
    url = args.backend_url or os.environ.get("DATABASE_URL", "")
    if not url:
        url = f"sqlite:///{ROOT / 'var' / 'bench-search.sqlite3'}"
    os.environ["DATABASE_URL"] = url
    setup_django()
    from django.db import connection

    vendor = connection.vendor
    build = {"build_seconds": None, "load_and_index_seconds": None, "reused": True}
    if args.reuse and corpus_exists(args):
        migrate()
    else:
        build = {**build_corpus(args, vendor), "reused": False}
    mix = query_mix(args)
    run_clients(url, mix[:: max(1, len(mix) // 200)], 1)  # warm the caches
    by_clients = {}
    for clients in (int(n) for n in args.clients.split(",")):
        times = run_clients(url, mix, clients)
        every = [seconds for kind in times for seconds in times[kind]]
        by_clients[str(clients)] = {
            "all": percentiles(every),
            "kinds": {kind: percentiles(times[kind]) for kind in sorted(times)},
        }
    target = TARGETS[vendor]
    worst_p95 = max(
        figures["p95"] for run in by_clients.values() for figures in run["kinds"].values()
    )
    print(
        json.dumps(
            {
                "benchmark": "search",
                "backend": vendor,
                "database": connection.settings_dict["NAME"].__str__(),
                "corpus": {
                    "messages": args.messages,
                    "rooms": args.rooms,
                    "people": args.people,
                    "searcher_rooms": args.my_rooms,
                    "vocabulary": VOCABULARY,
                    "zipf_exponent": EXPONENT,
                    **build,
                },
                "index": index_sizes(vendor),
                "database_settings": database_settings(vendor),
                "queries_per_kind_per_client": args.repeat,
                "example_queries": {kind: query for kind, query in dict(mix).items()},
                "latency_ms": by_clients,
                "target": target,
                "worst_kind_p95_ms": worst_p95,
                "cpu_count": os.cpu_count(),
                "machine": {**machine(), "load_average_1m_at_start": load_before},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
