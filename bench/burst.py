"""Burst: one message to a room of 1,000 members, each with an open socket; how long until the
last socket has it.

1,001 people in one group room; 1,000 hold one websocket each, spread over two server
processes and held by generator processes (one asyncio loop each); the room's owner posts a
message over HTTP (the page endpoint) every --gap seconds, --messages times. For each message:
the time from the POST starting to the first and to the last socket receiving it. Prints one
JSON object with those, deliveries, the generators' and servers' CPU and the load average.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/parley_load \\
    REDIS_URL=redis://127.0.0.1:6379/7 CHANNEL_LAYER_PREFIX=load .venv/bin/python bench/burst.py

Options: --members 1000 --messages 10 --gap 2 --servers 2 --generators 2.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
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
    own_cpu_seconds,
    progress,
    raise_open_files_limit,
    server_addresses,
    server_cpu,
    server_env,
    servers,
    wait_until_quiet,
)
from tests.live import HttpTab  # noqa: E402

TARGET_LAST_MS = 150


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--gap", type=float, default=2.0)
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

    cast = make_cast(args.members + 1, [list(range(args.members + 1))])
    connections.close_all()
    try:
        with servers(args.servers, server_env(), args.server) as processes:
            figures = measure(args, processes, cast)
    finally:
        clean_up(cast)
    print(
        json.dumps(
            {
                "benchmark": "burst",
                "config": vars(args),
                **figures,
                "target_last_delivery_ms": TARGET_LAST_MS,
                "machine": machine.finish(),
            }
        )
    )


def measure(args, processes, cast) -> dict:
    people = [Person(index=n, session=cast.sessions[n]) for n in range(1, args.members + 1)]
    spec = WorkerSpec(server_addresses(processes), people, session_cookie_name())
    generators = Generators(args.generators, spec)
    try:
        began = time.monotonic()
        opened, errors = generators.wait_connected()
        progress("burst", f"{opened} sockets open in {time.monotonic() - began:.1f}s")
        quiet = _run(wait_until_quiet(processes))
        sender = HttpTab(processes[0].port, {session_cookie_name(): cast.sessions[0]})
        sender.fetch_csrf_token(f"/rooms/{cast.room_ids[0]}/")
        cpu_generators, cpu_servers = generators.cpu(), server_cpu(processes)
        cpu_self = own_cpu_seconds()
        sent: dict[int, tuple[float, float]] = {}
        for n in range(args.messages):
            started = time.time()
            message_id = sender.send_message(cast.room_ids[0], f"burst {n}")
            sent[message_id] = (started, time.time())
            time.sleep(args.gap)
        cpu = {
            "generators": round(generators.cpu() - cpu_generators, 3),
            "sender_and_coordinator": round(own_cpu_seconds() - cpu_self, 3),
            "servers": [
                round(b - a, 3) for a, b in zip(cpu_servers, server_cpu(processes), strict=True)
            ],
        }
        sender.close()
        result = generators.stop()
    finally:
        generators.kill()
    by_message = defaultdict(list)
    for received, message_id in result["arrivals"]:
        if message_id in sent:
            by_message[message_id].append(received)
    last = [max(by_message[m]) - sent[m][0] for m in sent if by_message[m]]
    first = [min(by_message[m]) - sent[m][0] for m in sent if by_message[m]]
    after_response = [max(by_message[m]) - sent[m][1] for m in sent if by_message[m]]
    delivered = sum(len(by_message[m]) for m in sent)
    expected = len(sent) * opened
    return {
        "sockets_open": opened,
        "connect_failures": len(errors),
        "connect_retries": generators.retries,
        "connect_failure_samples": errors[:2],
        "settle_seconds": quiet,
        "first_delivery_ms": summary_ms(first),
        "last_delivery_ms": summary_ms(last),
        "last_delivery_after_post_answered_ms": summary_ms(after_response),
        "post_latency_ms": summary_ms([answered - start for start, answered in sent.values()]),
        "delivered": delivered,
        "expected": expected,
        "lost": max(0, expected - delivered),
        "cpu_seconds_during_send": cpu,
        "server_cpu_ms_per_message": round(1000 * sum(cpu["servers"]) / len(sent), 1),
        "generator_cpu_ms_per_message": round(1000 * cpu["generators"] / len(sent), 1),
        "target_met": bool(last) and statistics.median(last) * 1000 <= TARGET_LAST_MS,
    }


def _run(coroutine):
    import asyncio

    return asyncio.run(coroutine)


if __name__ == "__main__":
    main()
