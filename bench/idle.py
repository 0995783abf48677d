"""Idle: thousands of open tabs doing nothing; what they cost the servers.

5,000 people in 50 rooms of 100, one websocket each, spread over two server processes and held
by several generator processes (one asyncio loop each, many sockets per loop). The heartbeat is
the server's protocol-level ping (every 20 s), which the clients answer, as browsers do; live.js
sends nothing while idle. With --ping-every S each socket also sends an application heartbeat
({"type": "ping"}, answered with a pong) every S seconds at a random phase, as live.js did
before its server kept presence fresh itself. After connecting and a quiet period, measures
over --seconds: the servers' total RSS, their CPU as a share of one core, Redis's CPU, and the
generators' own CPU. Prints one JSON object.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/parley_load \\
    REDIS_URL=redis://127.0.0.1:6379/7 CHANNEL_LAYER_PREFIX=load .venv/bin/python bench/idle.py

Options: --sockets 5000 --room-size 100 --seconds 90 --ping-every 0 --servers 2
--generators 4. The open-files soft limit is raised to the hard limit first (the servers inherit
it); each socket is one descriptor in a generator and one in a server.
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
    cpu_by_pid,
    cpu_used,
    migrate,
    pids_named,
    session_cookie_name,
    setup_django,
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
    rss_bytes,
    server_addresses,
    server_cpu,
    server_env,
    servers,
    wait_until_quiet,
)

TARGET = {"rss_bytes": 1024**3, "cpu_share_of_core": 0.05}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=5000)
    parser.add_argument("--room-size", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--ping-every", type=float, default=0.0)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--server", choices=sorted(SERVER_KINDS), default="uvicorn")
    parser.add_argument("--generators", type=int, default=4)
    args = parser.parse_args()
    os.environ.setdefault("PASSWORD_HASHERS", FAST_HASHERS)
    open_files = raise_open_files_limit()
    if open_files < args.sockets + 1000:
        raise SystemExit(f"ulimit -n is {open_files}; {args.sockets} sockets need more")
    machine = Machine()
    setup_django()
    migrate()
    from django.db import connections

    rooms = [
        list(range(start, min(start + args.room_size, args.sockets)))
        for start in range(0, args.sockets, args.room_size)
    ]
    began = time.monotonic()
    cast = make_cast(args.sockets, rooms)
    progress(
        "idle", f"{args.sockets} people in {len(rooms)} rooms in {time.monotonic() - began:.0f}s"
    )
    connections.close_all()
    try:
        with servers(args.servers, server_env(), args.server) as processes:
            figures = measure(args, processes, cast)
    finally:
        clean_up(cast)
    print(
        json.dumps(
            {
                "benchmark": "idle",
                "config": {**vars(args), "open_files_limit": open_files},
                **figures,
                "target": TARGET,
                "machine": machine.finish(),
            }
        )
    )


def measure(args, processes, cast) -> dict:
    pids = [server.process.pid for server in processes]
    rss_empty = sum(rss_bytes(pid) for pid in pids)
    people = [Person(index=n, session=cast.sessions[n]) for n in range(args.sockets)]
    spec = WorkerSpec(
        server_addresses(processes),
        people,
        session_cookie_name(),
        concurrency=50,
        ping_every=args.ping_every,
    )
    generators = Generators(args.generators, spec)
    try:
        began = time.monotonic()
        cpu_connect = server_cpu(processes)
        opened, errors = generators.wait_connected()
        connected = time.monotonic() - began
        progress("idle", f"{opened} sockets open in {connected:.1f}s; waiting for quiet")
        settle = asyncio.run(wait_until_quiet(processes, limit=300, share=0.3))
        cpu_connecting = sum(server_cpu(processes)) - sum(cpu_connect)
        progress("idle", f"quiet after {settle}s more; measuring {args.seconds:.0f}s idle")
        before = (
            server_cpu(processes),
            generators.cpu(),
            cpu_by_pid(pids_named("redis-server")),
            generators.ask("counts"),
        )
        time.sleep(args.seconds)
        after = (
            server_cpu(processes),
            generators.cpu(),
            cpu_by_pid(pids_named("redis-server")),
            generators.ask("counts"),
        )
        rss = [rss_bytes(pid) for pid in pids]
        result = generators.stop()
    finally:
        generators.kill()
    server_seconds = [b - a for a, b in zip(before[0], after[0], strict=True)]
    pongs = sum(c["pongs"] for c in after[3]) - sum(c["pongs"] for c in before[3])
    share = sum(server_seconds) / args.seconds
    return {
        "sockets_open": opened,
        "connect_failures": len(errors),
        "connect_retries": generators.retries,
        "connect_failure_samples": errors[:2],
        "connect_seconds": round(connected, 1),
        "server_cpu_seconds_connecting": round(cpu_connecting, 1),
        "settle_seconds": settle,
        "closed_by_server_during_run": result["counts"]["closed"] - opened
        if result["counts"]["closed"] > opened
        else 0,
        "idle_seconds": args.seconds,
        "heartbeats_answered": pongs,
        "server_rss_bytes": rss,
        "server_rss_total_mb": round(sum(rss) / 2**20, 1),
        "server_rss_before_sockets_mb": round(rss_empty / 2**20, 1),
        "rss_per_socket_kb": round((sum(rss) - rss_empty) / max(opened, 1) / 1024, 1),
        "server_cpu_seconds_idle": [round(s, 2) for s in server_seconds],
        "server_cpu_share_of_core": round(share, 4),
        "server_cpu_us_per_heartbeat": round(1e6 * sum(server_seconds) / pongs, 1)
        if pongs
        else None,
        "redis_cpu_seconds_idle": round(cpu_used(before[2], after[2]), 2),
        "generator_cpu_seconds_idle": round(after[1] - before[1], 2),
        "generator_cpu_seconds_total": round(result["cpu_seconds"], 2),
        "target_met": {
            "rss": sum(rss) <= TARGET["rss_bytes"],
            "cpu": share <= TARGET["cpu_share_of_core"],
        },
    }


if __name__ == "__main__":
    main()
