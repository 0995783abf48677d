"""Connect storm, one step at a time: the server CPU of each step of a storm person, alone.

The storm (bench/connect_storm.py) reports server CPU per person with everyone arriving at
once. Here one server process serves the same people one after another, each step for
everybody before the next step, with no other load: GET the login page, POST the login form,
open the websocket, `resume` (the 20 missed messages and resume.done), close. The difference of
the server's CPU time (from /proc) across a step, divided by the people, is that step's cost.
Prints one JSON object: milliseconds of server CPU per person per step, and their total.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/parley_load \\
    REDIS_URL=redis://127.0.0.1:6379/7 CHANNEL_LAYER_PREFIX=load \\
    .venv/bin/python bench/connect_steps.py

Options: --people 300 --server uvicorn|daphne.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import migrate, session_cookie_name, setup_django  # noqa: E402
from bench.connect_storm import forget_sessions_since, post_missed  # noqa: E402
from bench.load import (  # noqa: E402
    SERVER_KINDS,
    Machine,
    clean_up,
    make_cast,
    server_addresses,
    server_cpu,
    server_env,
    servers,
    username,
)
from tests.live import HttpTab  # noqa: E402

MISSED = 10  # per room: everyone misses 20 (the all-hands room's and their team's)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--server", choices=sorted(SERVER_KINDS), default="uvicorn")
    args = parser.parse_args()
    machine = Machine()
    setup_django()
    migrate()
    import websockets
    from django.db import connections

    everyone = list(range(args.people))
    teams = [everyone[n : n + 20] for n in range(0, args.people, 20)]
    cast = make_cast(args.people, [everyone, *teams], sessions=False)
    started = time.time()
    try:
        last_seen, _ = post_missed(cast, MISSED, 20)
        connections.close_all()
        with servers(1, server_env(), args.server) as processes:
            ((url, ws_url, port),) = server_addresses(processes)
            steps = Steps(processes, args.people)

            def get_login_page() -> HttpTab:
                tab = HttpTab(port, {})
                tab.fetch_csrf_token("/accounts/login/")
                return tab

            for _ in range(10):  # warm up: imports, templates, the pool's connections
                get_login_page().close()
            with steps.measure("get_login_page"):
                for _ in range(args.people):
                    get_login_page().close()
            cookie, sessions = session_cookie_name(), []
            with steps.measure("get_and_post_login"):
                for n in range(args.people):
                    tab = get_login_page()
                    form = {"username": username(cast, n), "password": "bench-password"}
                    status, _ = tab.request("POST", "/accounts/login/", form)
                    if status != 302:
                        raise RuntimeError(f"login gave {status}")
                    sessions.append(tab.cookies[cookie])
                    tab.close()

            async def sockets() -> None:
                opened = []
                with steps.measure("open_socket"):
                    for session in sessions:
                        socket = await websockets.connect(
                            ws_url,
                            origin=url,
                            additional_headers={"Cookie": f"{cookie}={session}"},
                            proxy=None,
                            ping_interval=None,
                            max_queue=None,
                        )
                        opened.append(socket)
                    await asyncio.sleep(1.0)  # what each connect set off (presence) settles
                with steps.measure("resume"):
                    for socket in opened:
                        await socket.send(json.dumps({"type": "resume", "last_id": last_seen}))
                        replayed = 0
                        while '"resume.done"' not in (text := await socket.recv()):
                            replayed += text.startswith('{"type":"message.')
                        if replayed != 2 * MISSED:
                            raise RuntimeError(f"resume replayed {replayed} messages")
                with steps.measure("close_socket"):
                    await asyncio.gather(*(socket.close() for socket in opened))
                    await asyncio.sleep(1.0)

            asyncio.run(sockets())
    finally:
        clean_up(cast)
        forget_sessions_since(started)
    per_person = steps.figures
    per_person["post_login"] = per_person.pop("get_and_post_login") - per_person["get_login_page"]
    per_person["total"] = sum(per_person.values())
    print(
        json.dumps(
            {
                "benchmark": "connect_steps",
                "config": vars(args),
                "server_cpu_ms_per_person": {k: round(v, 2) for k, v in per_person.items()},
                "machine": machine.finish(),
            }
        )
    )


class Steps:
    """Server CPU across each `measure` block, per person, in milliseconds."""

    def __init__(self, processes: list, people: int) -> None:
        self.processes, self.people = processes, people
        self.figures: dict[str, float] = {}

    @contextmanager
    def measure(self, name: str) -> Iterator[None]:
        before = sum(server_cpu(self.processes))
        yield
        spent = sum(server_cpu(self.processes)) - before
        self.figures[name] = 1000 * spent / self.people


if __name__ == "__main__":
    main()
