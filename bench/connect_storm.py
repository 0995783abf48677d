"""Connect storm: 1,000 people log in and open their socket within 10 s, then catch up on what
they missed while away.

1,000 people; each is in the all-hands room (all 1,000) and one team room of 20. While nobody is
connected, --missed messages are posted to every room (so each person missed 2 × that). Then
generator processes start person k at k/1000 of --spread seconds: GET the login page, POST the
login form (a real session), open the websocket on one of two server processes (round robin)
and send live.js's "resume" with the last id seen before the absence; the server replays the
missed messages and says "resume.done". Prints one JSON object: login, socket and total connect
p50/p99, when the last person was caught up (from the storm's start), anyone short of messages,
the servers' and generators' CPU, and the load average.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/parley_load \\
    REDIS_URL=redis://127.0.0.1:6379/7 CHANNEL_LAYER_PREFIX=load \\
        .venv/bin/python bench/connect_storm.py

Options: --people 1000 --team-size 20 --missed 10 --spread 10 --servers 2 --generators 2.
Passwords are hashed with MD5 here (PASSWORD_HASHERS, as in the tests): the default PBKDF2 costs
about a CPU-second per login on this machine's cores, which the figures would otherwise be about.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    FAST_HASHERS,
    migrate,
    session_cookie_name,
    setup_django,
    summary_ms,
)
from bench.load import (  # noqa: E402
    SERVER_KINDS,
    Generators,
    Machine,
    Person,
    WorkerSpec,
    clean_up,
    make_cast,
    progress,
    raise_open_files_limit,
    server_addresses,
    server_cpu,
    server_env,
    servers,
    username,
    wait_until_quiet,
)

TARGET = {"connect_p99_ms": 500, "all_caught_up_s": 15}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--team-size", type=int, default=20)
    parser.add_argument("--missed", type=int, default=10)
    parser.add_argument("--spread", type=float, default=10.0)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--server", choices=sorted(SERVER_KINDS), default="uvicorn")
    parser.add_argument("--generators", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("PASSWORD_HASHERS", FAST_HASHERS)
    raise_open_files_limit()
    machine = Machine()
    setup_django()
    migrate()
    from django.db import connections

    everyone = list(range(args.people))
    teams = [everyone[n : n + args.team_size] for n in range(0, args.people, args.team_size)]
    cast = make_cast(args.people, [everyone, *teams], sessions=False)
    started = time.time()
    try:
        last_seen, missed = post_missed(cast, args.missed, args.team_size)
        connections.close_all()
        with servers(args.servers, server_env(), args.server) as processes:
            figures = storm(args, processes, cast, last_seen, missed)
    finally:
        clean_up(cast)
        forget_sessions_since(started)
    print(
        json.dumps(
            {
                "benchmark": "connect_storm",
                "config": vars(args),
                **figures,
                "target": TARGET,
                "machine": machine.finish(),
            }
        )
    )


def post_missed(cast, missed: int, team_size: int) -> tuple[int, dict[int, int]]:
    """Messages posted while everyone is away: (the last id before them, missed per person)."""
    from django.db.models import Max

    from accounts.models import User
    from rooms.actions import do_send_message
    from rooms.models import Message

    last_seen = Message.objects.aggregate(n=Max("id"))["n"] or 0
    owners = {
        room_id: index
        for room_id, index in zip(
            cast.room_ids, [0, *range(0, len(cast.user_ids), team_size)], strict=True
        )
    }
    for room_id, owner in owners.items():
        sender = User.objects.get(pk=cast.user_ids[owner])
        room = sender.memberships.get(room_id=room_id).room
        for n in range(missed):
            do_send_message(sender, room=room, body=f"while you were away {n}")
    progress("connect_storm", f"posted {missed * len(owners)} messages while nobody was there")
    # Everyone misses the all-hands room's and their team's messages; their own came back to
    # them too (catch-up replays a person's own messages, as another tab of theirs would need).
    return last_seen, {index: 2 * missed for index in range(len(cast.user_ids))}


def storm(args, processes, cast, last_seen: int, missed: dict[int, int]) -> dict:
    people = [
        Person(index=n, username=username(cast, n), last_id=last_seen) for n in range(args.people)
    ]
    begin_at = time.time() + 8.0  # the generator processes start and import first
    spec = WorkerSpec(
        server_addresses(processes),
        people,
        session_cookie_name(),
        concurrency=100,
        start_at=begin_at,
        spread=args.spread,
    )
    cpu_servers = server_cpu(processes)
    generators = Generators(args.generators, spec)
    try:
        opened, errors = generators.wait_connected()
        progress("connect_storm", f"{opened} sockets open {time.time() - begin_at:.1f}s in")
        asyncio.run(wait_until_quiet(processes, limit=120, share=0.2))
        cpu = [round(b - a, 2) for a, b in zip(cpu_servers, server_cpu(processes), strict=True)]
        result = generators.stop()
    finally:
        generators.kill()
    tabs = [tab for tab in result["tabs"] if tab["opened"]]
    resumed = [tab for tab in tabs if tab["resumed"]]
    short = [tab for tab in tabs if tab["caught_up"] < missed[tab["index"]]]
    last_caught_up = max((tab["resumed"] for tab in resumed), default=None)
    connect = [tab["opened"] - tab["began"] for tab in tabs]
    return {
        "people": args.people,
        "sockets_open": opened,
        "failures": len(errors),
        "connect_retries": generators.retries,
        "failure_samples": errors[:3],
        "login_ms": summary_ms([tab["logged_in"] - tab["began"] for tab in tabs]),
        "socket_open_ms": summary_ms([tab["opened"] - tab["logged_in"] for tab in tabs]),
        "connect_ms": summary_ms(connect),
        "resume_ms": summary_ms([tab["resumed"] - tab["opened"] for tab in resumed]),
        "last_socket_open_s": round(max(tab["opened"] for tab in tabs) - begin_at, 2),
        "all_caught_up_s": round(last_caught_up - begin_at, 2) if last_caught_up else None,
        "caught_up": len(resumed) - len([t for t in short if t["resumed"]]),
        "short_of_messages": len(short),
        "messages_replayed": sum(tab["caught_up"] for tab in tabs),
        "server_cpu_seconds": cpu,
        "server_cpu_ms_per_person": round(1000 * sum(cpu) / max(opened, 1), 1),
        "generator_cpu_seconds": round(result["cpu_seconds"], 2),
        "generator_cpu_ms_per_person": round(1000 * result["cpu_seconds"] / max(opened, 1), 1),
        "target_met": {
            "connect_p99": bool(connect)
            and summary_ms(connect)["p99"] <= TARGET["connect_p99_ms"]
            and not errors,
            "caught_up": bool(last_caught_up)
            and last_caught_up - begin_at <= TARGET["all_caught_up_s"]
            and not short,
        },
    }


def forget_sessions_since(started: float) -> None:
    """The logins' sessions (this database is the benchmark's own)."""
    from datetime import UTC, datetime, timedelta

    from django.conf import settings
    from django.contrib.sessions.models import Session

    made_after = datetime.fromtimestamp(started, tz=UTC) + timedelta(
        seconds=settings.SESSION_COOKIE_AGE
    )
    Session.objects.filter(expire_date__gte=made_after).delete()


if __name__ == "__main__":
    main()
