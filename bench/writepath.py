"""Write path: many rooms busy at once; the highest send rate stored and delivered in time.

20 rooms of 5 people, each person with one websocket (spread over two server processes, held
by generator processes). Concurrent senders (2 per room, spread over the servers) post through
the page endpoint (each person's own keep-alive connection) or, with --send-over socket, send
over a websocket of their own as the composer does (a second tab of that person, which receives
the room's frames too: 7 sockets a room) at a total rate R, spread
evenly over the rooms; R rises step by step (--rates) for --seconds each, until a step's deliver
p99 exceeds --stop-p99-ms (1000), a message is not stored or not delivered, or the senders
fall behind; a step "held" with p99 <= 100 ms, everything stored and delivered, on schedule.
Prints one JSON object: per step the achieved rate, stored / delivered counts, deliver and
request latency, server and generator CPU per message; and the highest rate that held.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/parley_load \\
    REDIS_URL=redis://127.0.0.1:6379/7 CHANNEL_LAYER_PREFIX=load .venv/bin/python bench/writepath.py

Options: --rooms 20 --room-size 5 --rates 10,20,40,60,80,120,160,200,300,400 --seconds 10
--stop-p99-ms 1000 --senders-per-room 2 --servers 2 --server uvicorn|daphne --generators 2
--send-over http|socket (socket: each sender is a tab of its own, sending over its websocket).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
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
)
from tests.live import HttpTab, SocketTab  # noqa: E402

TARGET = {"p99_ms": 100, "rate": 400}
GRACE = 3.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--room-size", type=int, default=5)
    parser.add_argument("--rates", default="10,20,40,60,80,120,160,200,300,400")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--senders-per-room", type=int, default=2)
    parser.add_argument("--stop-p99-ms", type=float, default=1000.0)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--server", choices=sorted(SERVER_KINDS), default="uvicorn")
    parser.add_argument("--generators", type=int, default=2)
    # "socket": each sender is a tab of its own sending message.send (and receiving the room).
    parser.add_argument("--send-over", choices=("http", "socket"), default="http")
    args = parser.parse_args()
    os.environ.setdefault("PASSWORD_HASHERS", FAST_HASHERS)
    raise_open_files_limit()
    machine = Machine()
    setup_django()
    migrate()
    from django.db import connections

    size = args.room_size
    cast = make_cast(
        args.rooms * size, [list(range(r * size, (r + 1) * size)) for r in range(args.rooms)]
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
                "benchmark": "writepath",
                "config": vars(args),
                **figures,
                "target": TARGET,
                "machine": machine.finish(),
            }
        )
    )


def send_share(
    tab: HttpTab | SocketTab, room_id: int, seqs, start_at: float, rate: float, out: list
) -> None:
    """Post message seq at start_at + seq / rate for each seq; note (id, sent, answered)."""
    for seq in seqs:
        due = start_at + seq / rate
        if due > time.time():
            time.sleep(due - time.time())
        sent = time.time()
        try:
            message_id = tab.send_message(room_id, f"write path {seq} {sent:.6f}")
        except (OSError, RuntimeError) as error:
            out.append((None, sent, time.time(), repr(error)[:200]))
            tab.close()
            continue
        out.append((message_id, sent, time.time(), ""))


def measure(args, processes, cast) -> dict:
    from rooms.models import Message

    size = args.room_size
    cookie = session_cookie_name()
    people = [Person(index=n, session=s) for n, s in enumerate(cast.sessions)]
    generators = Generators(
        args.generators, WorkerSpec(server_addresses(processes), people, cookie)
    )
    workers = args.rooms * args.senders_per_room
    # Worker w posts in room w % rooms as that room's (w // rooms)-th member.
    tabs = []
    for w in range(workers):
        room, member = w % args.rooms, (w // args.rooms) % size
        port = processes[w % len(processes)].port
        cookies = {cookie: cast.sessions[room * size + member]}
        if args.send_over == "socket":
            tab = SocketTab(port, cookies, timeout=30.0)
        else:
            tab = HttpTab(port, cookies)
            tab.fetch_csrf_token(f"/rooms/{cast.room_ids[room]}/")
        tabs.append((tab, cast.room_ids[room]))
    steps, best, sustained = [], None, None
    try:
        opened, errors = generators.wait_connected()
        progress("writepath", f"{opened} sockets open ({len(errors)} failed)")
        for rate in (float(r) for r in args.rates.split(",")):
            count = int(rate * args.seconds)
            out: list = []
            cpu = (server_cpu(processes), generators.cpu(), own_cpu_seconds())
            start_at = time.time() + 0.5
            threads = [
                threading.Thread(
                    target=send_share,
                    args=(tab, room_id, range(w, count, workers), start_at, rate, out),
                )
                for w, (tab, room_id) in enumerate(tabs)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            time.sleep(GRACE)
            cpu_after = (server_cpu(processes), generators.cpu(), own_cpu_seconds())
            arrivals = generators.ask("arrivals_since")
            step = tally(rate, count, out, arrivals, size, args.seconds)
            ids = [m for m, *_ in out if m is not None]
            step["stored"] = Message.objects.filter(pk__in=ids).count()
            server_seconds = sum(cpu_after[0]) - sum(cpu[0])
            step["cpu_seconds"] = {
                "servers": round(server_seconds, 2),
                "generators_sockets": round(cpu_after[1] - cpu[1], 2),
                "generator_senders": round(cpu_after[2] - cpu[2], 2),
            }
            step["server_cpu_ms_per_message"] = round(1000 * server_seconds / max(len(ids), 1), 1)
            step["generator_cpu_ms_per_message"] = round(
                1000 * (cpu_after[1] - cpu[1] + cpu_after[2] - cpu[2]) / max(len(ids), 1), 1
            )
            held = (
                step["deliver_latency_ms"]["p99"] is not None
                and step["deliver_latency_ms"]["p99"] <= TARGET["p99_ms"]
                and step["stored"] == count
                and step["lost"] == 0
                and step["achieved_rate"] >= 0.95 * rate
            )
            step["held"] = held
            kept_up = (
                step["stored"] == count
                and step["lost"] == 0
                and step["achieved_rate"] >= 0.95 * rate
            )
            steps.append(step)
            progress(
                "writepath", json.dumps({k: step[k] for k in ("rate", "achieved_rate", "held")})
            )
            if held and all(earlier["held"] for earlier in steps):
                best = rate
            if kept_up:
                sustained = rate
            p99 = step["deliver_latency_ms"]["p99"]
            if not kept_up or p99 is None or p99 > args.stop_p99_ms:
                break
        generators.stop()
    finally:
        generators.kill()
        for tab, _ in tabs:
            tab.close()
    return {
        "sockets": opened,
        "connect_retries": generators.retries,
        "steps": steps,
        # The highest rate of an unbroken run of steps from the first with p99 <= 100 ms, all
        # stored and delivered; and the highest the servers kept up with at any latency.
        "highest_rate_held": best,
        "highest_rate_kept_up": sustained,
        "target_met": best is not None and best >= TARGET["rate"],
    }


def tally(rate, count, out, arrivals, size, seconds) -> dict:
    sent = {m: s for m, s, _, _ in out if m is not None}
    deliveries = defaultdict(int)
    latencies = []
    for chunk in arrivals:
        for received, message_id in chunk:
            if message_id in sent:
                deliveries[message_id] += 1
                latencies.append(received - sent[message_id])
    times = sorted(s for _, s, _, _ in out)
    spread = times[-1] - times[0] if len(times) > 1 else 0.0
    expected = len(sent) * size
    delivered = sum(deliveries.values())
    return {
        "rate": rate,
        "messages": count,
        "achieved_rate": round((len(times) - 1) / spread, 1) if spread else 0.0,
        "send_errors": sum(1 for m, *_ in out if m is None),
        "send_error_samples": [e for *_, e in out if e][:2],
        "request_latency_ms": summary_ms([a - s for _, s, a, _ in out]),
        "deliver_latency_ms": summary_ms(latencies),
        "delivered": delivered,
        "expected_deliveries": expected,
        "lost": max(0, expected - delivered),
        "deliveries_per_second": round(delivered / seconds, 1),
    }


if __name__ == "__main__":
    main()
