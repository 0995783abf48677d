"""Issue 9's fan-out workload: 1 room, 100 sockets over two server processes, 20 msg/s for 30 s,
then 100 msg/s for 30 s (bench/fanout.py once per rate). Prints one JSON object with each
rate's deliver p99, lost and duplicates, the load generator's CPU and the load average.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/parley_load \\
    REDIS_URL=redis://127.0.0.1:6379/7 CHANNEL_LAYER_PREFIX=load \\
        .venv/bin/python bench/fanout_load.py

Options: --rates 20,100 --seconds 30 --clients 100 --servers 2 --server uvicorn|daphne
--send-over http|socket (http: POST to the page endpoint; socket: message.send over each
sender's websocket, as the composer sends). Senders: one concurrent sender per 10 msg/s of rate
(at least 2), spread over the servers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import fanout  # noqa: E402
from bench.common import FAST_HASHERS  # noqa: E402
from bench.load import SERVER_KINDS, Machine, own_cpu_seconds, progress  # noqa: E402

TARGET_P99_MS = {20: 50, 100: 150}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="20,100")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--server", choices=sorted(SERVER_KINDS), default="uvicorn")
    parser.add_argument("--send-over", choices=("http", "socket"), default="http")
    # What the receivers' handshakes offer: browsers offer permessage-deflate.
    parser.add_argument("--compression", choices=("none", "deflate"), default="deflate")
    options = parser.parse_args()
    os.environ.setdefault("PASSWORD_HASHERS", FAST_HASHERS)
    machine = Machine()
    steps = []
    for rate in (float(r) for r in options.rates.split(",")):
        args = argparse.Namespace(
            clients=options.clients,
            messages=int(rate * options.seconds),
            rate=rate,
            servers=options.servers,
            senders=max(2, math.ceil(rate / 10)),
            server=options.server,
            send_over=options.send_over,
            compression=options.compression,
            grace=2.0,
        )
        progress("fanout_load", f"{rate:g} msg/s for {options.seconds:g}s")
        cpu_before = own_cpu_seconds()
        figures = fanout.run(args)
        sent = figures["messages_sent"]
        generator = figures["cpu_seconds_during_send"]["load_generator"]
        servers = sum(figures["cpu_seconds_during_send"]["servers"])
        target = TARGET_P99_MS.get(int(rate))
        p99 = figures["deliver_latency_ms"]["p99"]
        steps.append(
            {
                "rate": rate,
                "achieved_rate": figures["achieved_rate"],
                "deliver_latency_ms": figures["deliver_latency_ms"],
                "send_request_latency_ms": figures["send_request_latency_ms"],
                "delivered": figures["delivered"],
                "expected": figures["expected"],
                "lost": figures["lost"],
                # Of the messages that were stored (a sender that falls 30 s behind gives up).
                "messages_sent": sent,
                "lost_of_sent": options.clients * sent
                - (figures["delivered"] - figures["duplicates"]),
                "send_error_samples": figures["send_error_samples"],
                "duplicates": figures["duplicates"],
                "send_errors": figures["send_errors"],
                # At the rate achieved: a server that falls behind takes longer than the step.
                "deliveries_per_second": round(
                    figures["delivered"] / max(sent, 1) * (figures["achieved_rate"] or 0), 1
                ),
                "cpu_seconds_during_send": figures["cpu_seconds_during_send"],
                "generator_cpu_ms_per_message": round(1000 * generator / max(sent, 1), 2),
                "server_cpu_ms_per_message": round(1000 * servers / max(sent, 1), 2),
                "generator_cpu_seconds_whole_step": round(own_cpu_seconds() - cpu_before, 2),
                "breakdown_ms": figures["breakdown_ms"],
                "target_p99_ms": target,
                "target_met": None
                if target is None
                else bool(p99 is not None and p99 <= target and figures["lost"] == 0),
                "load_average_1m_after": figures["machine"]["load_average_1m"],
            }
        )
    print(
        json.dumps(
            {
                "benchmark": "fanout_load",
                "config": {
                    "clients": options.clients,
                    "seconds_per_rate": options.seconds,
                    "servers": options.servers,
                    "server": options.server,
                    "send_over": options.send_over,
                    "compression": options.compression,
                },
                "steps": steps,
                "machine": machine.finish(),
            }
        )
    )


if __name__ == "__main__":
    main()
