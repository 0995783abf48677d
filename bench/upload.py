"""Files: a 1 GiB upload through the chunk API and a 1 GiB download, against a real server.

One person uploads a file of --size bytes (1 GiB, the default upload limit) into a room through
the page's chunk API: POST /rooms/<id>/uploads/, PUT /uploads/<id>/chunks/<n>/ for every chunk
(--parallel keep-alive connections share them), POST /uploads/<id>/finish/. Then the file is
downloaded from /files/<id>/download/ and its SHA-256 compared. Prints one JSON object:
throughput of each phase in MB/s (10^6 bytes per second), the server process's peak resident
memory during each phase (VmHWM, reset between phases) and its resident memory before.

Run from the repository root; files go to local disk:

    .venv/bin/python bench/upload.py [--size BYTES] [--parallel N]

With no DATABASE_URL it uses a throw-away SQLite file. Everything the run stores (media folder,
database, server log) lives in a temporary folder that is removed at the end, also on failure.
Only loopback traffic.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    FAST_HASHERS,
    cpu_seconds,
    machine,
    migrate,
    session_cookie_name,
    session_keys,
    setup_django,
)

MB = 1_000_000
READ_BLOCK = 1024 * 1024


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024**3, help="file size in bytes (1 GiB)")
    parser.add_argument(
        "--parallel", type=int, default=2, help="connections sending chunks (2, as the page)"
    )
    return parser.parse_args()


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


class PeakMemory:
    """The server's peak RSS over a phase: the kernel's VmHWM, reset at the start of the phase
    (clear_refs), checked against our own sampling in case the reset is not allowed."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.sampled = 0
        self.running = False
        self.thread: threading.Thread | None = None

    def _sample(self) -> None:
        while self.running:
            self.sampled = max(self.sampled, status_kb(self.pid, "VmRSS"))
            time.sleep(0.005)

    def __enter__(self) -> PeakMemory:
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            self.reset = True
        except OSError:
            self.reset = False
        self.sampled = status_kb(self.pid, "VmRSS")
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()
        self.peak_kb = max(self.sampled, status_kb(self.pid, "VmHWM") if self.reset else 0)


class Tab:
    """A keep-alive connection with the person's cookies and CSRF token."""

    def __init__(self, port: int, cookies: dict[str, str]) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.cookies = cookies

    def headers(self, **extra: str) -> dict[str, str]:
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        return {"Cookie": cookie, "X-CSRFToken": self.cookies.get("csrftoken", ""), **extra}

    def request(self, method: str, path: str, body=None, **headers: str):
        self.connection.request(method, path, body=body, headers=self.headers(**headers))
        return self.connection.getresponse()

    def json(self, method: str, path: str, form: dict | None = None) -> dict:
        body = urlencode(form) if form is not None else None
        kind = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else {}
        response = self.request(method, path, body, **kind)
        text = response.read().decode()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path} gave {response.status}: {text[:300]}")
        return json.loads(text)


def prepare() -> tuple[int, str, str]:
    """A person in a room with a logged-in session: (room id, session key, run id)."""
    import uuid

    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from accounts.models import User
    from rooms.models import Membership, Role, Room, RoomKind

    run = uuid.uuid4().hex[:8]
    person = User.objects.create(
        username=f"bench-upload-{run}", password=make_password("x"), display_name="Bench"
    )
    room = Room.objects.create(
        kind=RoomKind.GROUP, title="Upload bench", last_activity=timezone.now()
    )
    Membership.objects.create(room=room, user=person, role=Role.OWNER)
    return room.pk, session_keys([person])[person.pk], run


def payload(size: int, chunk: int) -> tuple[bytes, str]:
    """One random chunk, sent at every index (the last cut short), and the whole file's SHA-256.

    Made before the clock starts: hashing 1 GiB takes this client about 3 s, which is no part
    of what the server does (the page's uploader hashes nothing either).
    """
    block = os.urandom(chunk)
    digest = hashlib.sha256()
    for start in range(0, size, chunk):
        digest.update(memoryview(block)[: min(chunk, size - start)])
    return block, digest.hexdigest()


def upload(port: int, cookies: dict, room_id: int, size: int, parallel: int, block: bytes) -> int:
    """Send `size` bytes of `block` repeated through the chunk API; returns the file's id."""
    tab = Tab(port, cookies)
    state = tab.json("POST", f"/rooms/{room_id}/uploads/", {"name": "bench.bin", "size": size})
    chunk = state["chunk_size"]
    if chunk != len(block):
        raise RuntimeError(f"the server cuts chunks of {chunk} bytes, not {len(block)}")
    indexes = iter(range(state["chunk_count"]))
    lock = threading.Lock()

    def sender() -> None:
        mine = Tab(port, cookies)
        while True:
            with lock:
                index = next(indexes, None)
            if index is None:
                return
            body = memoryview(block)[: min(chunk, size - index * chunk)]
            response = mine.request(
                "PUT",
                f"/uploads/{state['id']}/chunks/{index}/",
                body,
                **{"Content-Type": "application/octet-stream", "Content-Length": str(len(body))},
            )
            reply = response.read()
            if response.status != 200:
                raise RuntimeError(f"chunk {index}: {response.status} {reply[:300]!r}")

    with ThreadPoolExecutor(parallel) as pool:
        for future in [pool.submit(sender) for _ in range(parallel)]:
            future.result()
    finished = tab.json("POST", f"/uploads/{state['id']}/finish/")
    return finished["attachment"]


def download(port: int, cookies: dict, file_id: int) -> tuple[int, str]:
    tab = Tab(port, cookies)
    response = tab.request("GET", f"/files/{file_id}/download/")
    if response.status != 200:
        raise RuntimeError(f"download gave {response.status}: {response.read()[:300]!r}")
    digest = hashlib.sha256()
    received = 0
    while block := response.read(READ_BLOCK):
        digest.update(block)
        received += len(block)
    return received, digest.hexdigest()


def rss_mb(kb: int) -> float:
    return round(kb / 1024, 1)


def run(args: argparse.Namespace, scratch: Path) -> dict:
    from django.conf import settings
    from django.db import connection, connections

    from tests.live import AppServer

    migrate()
    room_id, session, run_id = prepare()
    database = connection.vendor
    connections.close_all()
    env = {
        "MEDIA_ROOT": str(scratch / "media"),
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_UPLOAD": "1000000",
        "MAX_UPLOAD_BYTES": str(max(args.size, settings.MAX_UPLOAD_BYTES)),
    }
    server = AppServer(env=env)
    server.log_path = scratch / "server.log"
    with server:
        pid = server.process.pid
        cookies = {session_cookie_name(): session}
        warm = Tab(server.port, cookies)
        warm.request("GET", f"/rooms/{room_id}/").read()
        cookies.update(csrftoken=_csrf_cookie(server.port, cookies, room_id))
        baseline_kb = status_kb(pid, "VmRSS")
        load_before = round(os.getloadavg()[0], 2)
        block, sent_digest = payload(args.size, settings.UPLOAD_CHUNK_BYTES)

        with PeakMemory(pid) as up:
            started, cpu = time.perf_counter(), cpu_seconds(pid)
            file_id = upload(server.port, cookies, room_id, args.size, args.parallel, block)
            up_seconds, up_cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu
        with PeakMemory(pid) as down:
            started, cpu = time.perf_counter(), cpu_seconds(pid)
            received, got_digest = download(server.port, cookies, file_id)
            down_seconds, down_cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu
        stored = sum(p.stat().st_size for p in (scratch / "media").rglob("*") if p.is_file())

    clean_up(run_id)
    return {
        "benchmark": "upload",
        "config": {
            "size_bytes": args.size,
            "parallel_connections": args.parallel,
            "chunk_bytes": settings.UPLOAD_CHUNK_BYTES,
            "database": database,
            "storage": "local disk",
            "run": run_id,
        },
        "upload": {
            "seconds": round(up_seconds, 2),
            "mb_per_s": round(args.size / MB / up_seconds, 1),
            "server_cpu_seconds": round(up_cpu, 2),
            "server_cpu_seconds_per_gib": round(up_cpu / (args.size / 1024**3), 2),
            "server_peak_rss_mb": rss_mb(up.peak_kb),
        },
        "download": {
            "seconds": round(down_seconds, 2),
            "mb_per_s": round(received / MB / down_seconds, 1),
            "server_cpu_seconds": round(down_cpu, 2),
            "server_cpu_seconds_per_gib": round(down_cpu / (args.size / 1024**3), 2),
            "server_peak_rss_mb": rss_mb(down.peak_kb),
        },
        "server_rss_before_mb": rss_mb(baseline_kb),
        "load_average_1m_before": load_before,
        "peak_reset_by_kernel": up.reset,
        "verified": received == args.size and got_digest == sent_digest,
        "stored_bytes": stored,
        "machine": machine(),
    }


def clean_up(run_id: str) -> None:
    """Remove the run's person and room from the database (the files went with the folder)."""
    from accounts.models import User
    from rooms.models import Room

    Room.objects.filter(
        title="Upload bench", memberships__user__username=f"bench-upload-{run_id}"
    ).delete()
    User.objects.filter(username=f"bench-upload-{run_id}").delete()


def _csrf_cookie(port: int, cookies: dict, room_id: int) -> str:
    tab = Tab(port, cookies)
    response = tab.request("GET", f"/rooms/{room_id}/")
    response.read()
    for header in response.headers.get_all("Set-Cookie") or []:
        if header.startswith("csrftoken="):
            return header.split(";", 1)[0].split("=", 1)[1]
    raise RuntimeError("the room page set no CSRF cookie")


def main() -> None:
    args = parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="parley-upload-"))
    os.environ.setdefault("PASSWORD_HASHERS", FAST_HASHERS)
    os.environ["MEDIA_ROOT"] = str(scratch / "media")
    if not os.environ.get("DATABASE_URL"):
        os.environ["PARLEY_DATA_DIR"] = str(scratch)  # the server inherits it: same SQLite file
    try:
        setup_django()
        print(json.dumps(run(args, scratch)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
