"""Email notifications: what they add to the sender's request, and how fast 500 emails go out.

A group room of 501 people (one sender, 500 who all want an email for every message, the
default). Three phases, all through real processes on loopback:

1.+2. two server processes side by side, one with notifications off
   (PARLEY_NOTIFICATIONS_ENABLED=false), one on, with a Celery worker taking its tasks
   (default 120 s batching window, so the worker files every message into 500 batches while
   the sender posts). The sender posts M messages through each, alternating, R per second in
   all (POST /rooms/<id>/messages/, keep-alive); request latency per series.
3. delivery: one message into a second room of the same 500 people, a worker with a 1 s
   batching window and an aiosmtpd sink; time until the 500th email has arrived.

Prints one JSON object. The standard run is against PostgreSQL and Redis:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/parley_notify_bench \\
    REDIS_URL=redis://127.0.0.1:6379/6 .venv/bin/python bench/notify.py

Options: --recipients N (500) --messages M (100 per series) --rate R (10) --window S (1).
The script migrates the database, adds its own people and rooms and deletes them afterwards.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    FAST_HASHERS,
    machine,
    migrate,
    session_cookie_name,
    session_keys,
    setup_django,
    summary_ms,
)
from tests.live import HttpTab  # noqa: E402

LOAD_AT_START = round(os.getloadavg()[0], 2)


def percentile_ms(seconds: list[float], p: float) -> float | None:
    if not seconds:
        return None
    ordered = sorted(seconds)
    return round(ordered[math.ceil(p / 100 * len(ordered)) - 1] * 1000, 2)


def latency_figures(seconds: list[float]) -> dict:
    return {**summary_ms(seconds), "p95": percentile_ms(seconds, 95)}


def prepare(recipients: int) -> dict:
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import User
    from rooms.models import Membership, Role, Room, RoomKind

    run = uuid.uuid4().hex[:8]
    password = make_password("bench-password")
    with transaction.atomic():
        User.objects.bulk_create(
            User(
                username=f"notify-{run}-{n:05d}",
                password=password,
                display_name=f"Bench {n}",
                email=f"notify-{run}-{n:05d}@bench.example",
            )
            for n in range(recipients + 1)
        )
        people = list(
            User.objects.filter(username__startswith=f"notify-{run}-").order_by("username")
        )
        rooms = []
        for title in ("latency", "delivery"):
            room = Room.objects.create(
                kind=RoomKind.GROUP,
                title=f"Notify bench {title} {run}",
                last_activity=timezone.now(),
            )
            Membership.objects.bulk_create(
                Membership(room=room, user=person, role=Role.OWNER if n == 0 else Role.MEMBER)
                for n, person in enumerate(people)
            )
            rooms.append(room.pk)
        keys = session_keys(people[:1])
    return {
        "run": run,
        "rooms": rooms,
        "sender_session": keys[people[0].pk],
        "keys": list(keys.values()),
    }


def clean_up(cast: dict) -> None:
    from django.contrib.sessions.models import Session
    from django.db import transaction

    from accounts.models import User
    from rooms.models import Room

    with transaction.atomic():
        Room.objects.filter(pk__in=cast["rooms"]).delete()
        User.objects.filter(username__startswith=f"notify-{cast['run']}-").delete()
        Session.objects.filter(session_key__in=cast["keys"]).delete()


def post_alternately(servers: dict, cookies: dict, room_id: int, count: int, rate: float) -> dict:
    """Send `count` messages through each server, alternating, at `rate` per second in all.

    Alternating message by message makes both series see the same load on the machine.
    Returns request latencies in seconds and errors, per server name.
    """
    tabs = {name: HttpTab(server.port, cookies) for name, server in servers.items()}
    latencies: dict[str, list[float]] = {name: [] for name in servers}
    errors: dict[str, list[str]] = {name: [] for name in servers}
    try:
        for tab in tabs.values():
            tab.fetch_csrf_token(f"/rooms/{room_id}/")
        start = time.perf_counter() + 0.2
        for seq in range(count * len(tabs)):
            name = list(tabs)[seq % len(tabs)]
            due = start + seq / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            began = time.perf_counter()
            try:
                tabs[name].send_message(room_id, f"notify bench {seq}")
            except (OSError, RuntimeError) as error:
                errors[name].append(str(error)[:200])
                tabs[name].close()
                continue
            latencies[name].append(time.perf_counter() - began)
    finally:
        for tab in tabs.values():
            tab.close()
    return {"latencies": latencies, "errors": errors}


def enqueue_cost(redis_url: str, samples: int = 1000) -> dict:
    """What notifications add to a send request: the on-commit call that queues the task.

    Measured in this process against the same Redis, for a room's first message (each call
    names another room, so each publishes a room task) and for the messages that follow it
    within the room task's delay ("debounced": nothing is published). Room ids 0 and below
    are no rooms: a worker would find nothing to do. The queue is emptied afterwards.
    """
    import redis

    from notifications import dispatch

    dispatch.message_sent(0)  # the first call connects to the broker, and queues room 0's task
    times = []
    for room_id in range(-1, -samples - 1, -1):
        began = time.perf_counter()
        dispatch.message_sent(room_id)
        times.append(time.perf_counter() - began)
    dispatch.message_sent(0)  # queued anew if the loop outlasted the delay
    debounced = []
    for _ in range(samples):
        began = time.perf_counter()
        dispatch.message_sent(0)
        debounced.append(time.perf_counter() - began)
    redis.Redis.from_url(redis_url).delete("celery")
    return {**latency_figures(times), "samples": samples, "debounced": latency_figures(debounced)}


def wait_for_queue_drain(redis_url: str, timeout: float = 60.0) -> float:
    """Seconds until the Celery queue in Redis is empty (the worker caught up)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    began = time.perf_counter()
    while client.llen("celery") and time.perf_counter() - began < timeout:
        time.sleep(0.05)
    return round(time.perf_counter() - began, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=500)
    parser.add_argument("--messages", type=int, default=100, help="per series (off, on)")
    parser.add_argument("--rate", type=float, default=10.0, help="messages/s, both series")
    parser.add_argument("--window", type=int, default=1, help="batching window of phase 3")
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        parser.error("the worker takes tasks from Redis: set REDIS_URL")
    os.environ.setdefault("PASSWORD_HASHERS", FAST_HASHERS)
    setup_django()
    import redis
    from django.db import connection, connections

    from notifications.tests.live import CeleryWorker, SmtpSink
    from tests.live import AppServer

    migrate()
    cast = prepare(args.recipients)
    latency_room, delivery_room = cast["rooms"]
    cookies = {session_cookie_name(): cast["sender_session"]}
    connections.close_all()
    redis.Redis.from_url(redis_url).delete("celery")
    base_env = {
        key: os.environ[key] for key in ("DATABASE_URL", "REDIS_URL") if os.environ.get(key)
    }
    base_env.update(
        {
            "PASSWORD_HASHERS": os.environ["PASSWORD_HASHERS"],
            "LOG_LEVEL": "WARNING",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            # See bench/notify_settings.py: the live fan-out needs a larger Redis pool.
            "DJANGO_SETTINGS_MODULE": "bench.notify_settings",
        }
    )
    figures: dict = {}
    enqueue = enqueue_cost(redis_url)
    try:
        with SmtpSink() as sink:
            env = {**base_env, "EMAIL_URL": sink.url}
            with (
                AppServer(env={**env, "PARLEY_NOTIFICATIONS_ENABLED": "false"}) as server_off,
                CeleryWorker({**env, "PARLEY_NOTIFY_BATCH_SECONDS": "120"}) as worker,
                AppServer(env=env) as server_on,
            ):
                latency = post_alternately(
                    {"off": server_off, "on": server_on},
                    cookies,
                    latency_room,
                    args.messages,
                    args.rate,
                )
                worker_catch_up = wait_for_queue_drain(redis_url)
                worker_alive = worker.process.poll() is None
            off = {"latencies": latency["latencies"]["off"], "errors": latency["errors"]["off"]}
            on = {"latencies": latency["latencies"]["on"], "errors": latency["errors"]["on"]}
            window_env = {**env, "PARLEY_NOTIFY_BATCH_SECONDS": str(args.window)}
            with (
                CeleryWorker(window_env, concurrency=2, pool="prefork"),
                AppServer(env=window_env) as server,
            ):
                sink.mails.clear()
                tab = HttpTab(server.port, cookies)
                tab.fetch_csrf_token(f"/rooms/{delivery_room}/")
                sent_at = time.time()
                tab.send_message(delivery_room, "Where do the 500 emails go?")
                tab.close()
                complete = sink.wait_for(args.recipients, timeout=180)
                arrivals = sorted(at for at, _, _ in sink.mails)
        figures = {
            "request_latency_ms": {
                "notifications_off": latency_figures(off["latencies"]),
                "notifications_on": latency_figures(on["latencies"]),
            },
            "added_p95_ms": round(
                percentile_ms(on["latencies"], 95) - percentile_ms(off["latencies"], 95), 2
            ),
            "added_p50_ms": round(
                percentile_ms(on["latencies"], 50) - percentile_ms(off["latencies"], 50), 2
            ),
            # The notification work inside a send request, measured alone: see enqueue_cost.
            "enqueue_on_commit_ms": enqueue,
            "send_errors": len(off["errors"]) + len(on["errors"]),
            "worker_caught_up_after_last_post_s": worker_catch_up,
            "latency_worker_survived": worker_alive,
            "delivery": {
                "emails_expected": args.recipients,
                "emails_received": len(arrivals),
                "complete": complete,
                "batching_window_s": args.window,
                "first_email_s": round(arrivals[0] - sent_at, 3) if arrivals else None,
                "all_emails_s": round(arrivals[-1] - sent_at, 3) if arrivals else None,
                "all_emails_after_window_s": round(arrivals[-1] - sent_at - args.window, 3)
                if arrivals
                else None,
                "emails_per_second": round(len(arrivals) / (arrivals[-1] - arrivals[0]), 1)
                if len(arrivals) > 1
                else None,
            },
        }
    finally:
        try:
            clean_up(cast)
        except Exception as error:  # the figures still count; the rows stay behind
            print(f"clean-up failed: {error!r}", file=sys.stderr)
    config = {
        "recipients": args.recipients,
        "messages": args.messages,
        "rate": args.rate,
        "database": connection.vendor,
        "broker": "redis",
        "email_backend": "smtp to aiosmtpd sink on loopback",
        "latency_phase_batching_window_s": 120,
        "load_average_1m_at_start": LOAD_AT_START,
        "delivery_worker": "prefork, concurrency 2",
    }
    print(json.dumps({"benchmark": "notify", "config": config, **figures, "machine": machine()}))


if __name__ == "__main__":
    main()
