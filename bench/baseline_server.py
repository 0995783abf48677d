"""Baseline: the fan-out workload against a minimal raw-websocket broadcast server.

`--serve PORT` runs the server: one process, the `websockets` library, no database, no Redis,
no authentication; every text a client sends goes unchanged to every other open socket
(`websockets.broadcast`). Without --serve, this script starts that server, opens --clients
receiving sockets (in generator processes, as the Parley benchmarks do) and one sender socket
that sends Parley-shaped frames ({"type":"message.new","room":1,"id":n,"ts":...}) at R per
second for --seconds, for each rate of --rates, until the deliver p99 passes --stop-p99-ms.
Prints one JSON object: per rate the deliver p50/p99, deliveries per second, lost, and the
server's and generators' CPU.

    .venv/bin/python bench/baseline_server.py

With --parley FILE (the JSON printed by bench/fanout_load.py) it adds the comparison issue 9
asks for: Parley's deliveries per second at each of its rates as a share of the most the
baseline delivered with a p99 no worse than Parley's there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import websockets  # noqa: E402

from bench.common import cpu_seconds, summary_ms  # noqa: E402
from bench.load import (  # noqa: E402
    Generators,
    Machine,
    Person,
    WorkerSpec,
    own_cpu_seconds,
    progress,
    raise_open_files_limit,
)
from tests.live import free_port  # noqa: E402

GRACE = 2.0


async def serve(port: int) -> None:
    sockets: set = set()

    async def handler(connection) -> None:
        sockets.add(connection)
        try:
            async for text in connection:
                websockets.broadcast(sockets - {connection}, text)
        finally:
            sockets.discard(connection)

    async with websockets.serve(handler, "127.0.0.1", port, compression=None, max_queue=None):
        await asyncio.get_running_loop().create_future()


async def send_at(url: str, rate: float, count: int, first_id: int) -> dict[int, float]:
    sent: dict[int, float] = {}
    async with websockets.connect(url, compression=None, ping_interval=None) as sender:
        start = time.time() + 0.2
        for n in range(count):
            due = start + n / rate
            if due > time.time():
                await asyncio.sleep(due - time.time())
            now = time.time()
            message_id = first_id + n
            sent[message_id] = now
            await sender.send(
                f'{{"type":"message.new","room":1,"id":{message_id},"ts":{now:.6f},"html":""}}'
            )
        await asyncio.sleep(GRACE)
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", type=int, metavar="PORT")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rates", default="20,100,200,400,800,1600,3200")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--generators", type=int, default=2)
    parser.add_argument("--stop-p99-ms", type=float, default=500.0)
    parser.add_argument("--parley", type=Path, help="bench/fanout_load.py's JSON, to compare")
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
        return
    raise_open_files_limit()
    machine = Machine()
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        wait_listening(port)
        steps = ladder(args, port, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=10)
    figures = {
        "benchmark": "baseline",
        "config": {k: v for k, v in vars(args).items() if k not in ("serve", "parley")},
        "steps": steps,
        "machine": machine.finish(),
    }
    if args.parley:
        figures["parley_vs_baseline"] = compare(json.loads(args.parley.read_text()), steps)
    print(json.dumps(figures))


def wait_listening(port: int) -> None:
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the baseline server did not start")


def ladder(args, port: int, server_pid: int) -> list[dict]:
    url = f"ws://127.0.0.1:{port}/"
    address = [(f"http://127.0.0.1:{port}", url, port)]
    people = [Person(index=n, session="-") for n in range(args.clients)]
    generators = Generators(args.generators, WorkerSpec(address, people, "none"))
    steps = []
    try:
        opened, _ = generators.wait_connected()
        next_id = 1
        for rate in (float(r) for r in args.rates.split(",")):
            count = int(rate * args.seconds)
            before = (cpu_seconds(server_pid), generators.cpu(), own_cpu_seconds())
            sent = asyncio.run(send_at(url, rate, count, next_id))
            after = (cpu_seconds(server_pid), generators.cpu(), own_cpu_seconds())
            next_id += count
            arrivals = [a for chunk in generators.ask("arrivals_since") for a in chunk]
            latencies = [received - sent[m] for received, m in arrivals if m in sent]
            times = sorted(sent.values())
            step = {
                "rate": rate,
                "achieved_rate": round((len(times) - 1) / (times[-1] - times[0]), 1),
                "deliver_latency_ms": summary_ms(latencies),
                "delivered": len(latencies),
                "expected": count * opened,
                "lost": count * opened - len(latencies),
                "deliveries_per_second": round(len(latencies) / args.seconds, 1),
                "cpu_seconds": {
                    "server": round(after[0] - before[0], 2),
                    "generators_sockets": round(after[1] - before[1], 2),
                    "sender": round(after[2] - before[2], 2),
                },
                "server_cpu_us_per_delivery": round(
                    1e6 * (after[0] - before[0]) / max(len(latencies), 1), 1
                ),
            }
            steps.append(step)
            progress("baseline", json.dumps({k: step[k] for k in ("rate", "deliver_latency_ms")}))
            p99 = step["deliver_latency_ms"]["p99"]
            if p99 is None or p99 > args.stop_p99_ms:
                break
        generators.stop()
    finally:
        generators.kill()
    return steps


def compare(parley: dict, baseline: list[dict]) -> list[dict]:
    rows = []
    for step in parley["steps"]:
        p99 = step["deliver_latency_ms"]["p99"]
        within = [
            b["deliveries_per_second"]
            for b in baseline
            if b["deliver_latency_ms"]["p99"] is not None
            and b["deliver_latency_ms"]["p99"] <= p99
            and b["lost"] == 0
        ]
        best = max(within, default=None)
        rows.append(
            {
                "parley_rate": step["rate"],
                "parley_p99_ms": p99,
                "parley_deliveries_per_second": step["deliveries_per_second"],
                "baseline_best_deliveries_per_second_at_that_p99": best,
                "parley_share": round(step["deliveries_per_second"] / best, 3) if best else None,
            }
        )
    return rows


if __name__ == "__main__":
    main()
