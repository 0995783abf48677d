"""Calls: time from clicking Join to the first remote video frame, and a recording's size.

Two people in two Chromium contexts (Debian's /usr/bin/chromium, fake camera and microphone)
on a real server (Uvicorn). For each of --runs calls, alice starts a video call, bob clicks Join,
and the page notes when bob's first frame of alice's video is presented
(requestVideoFrameCallback); both leave. Then alice records --record-seconds of the call grid
(two fake cameras composited on the 1280x720 canvas, both microphones mixed) at the bitrate
static/js/calls.js sets, and the WebM that lands in the room gives the size per minute.
Prints one JSON object.

    .venv/bin/python bench/calls.py [--runs 5] [--record-seconds 20]

With no DATABASE_URL it uses a throw-away SQLite file. Everything the run stores (media folder,
database, server log) lives in a temporary folder that is removed at the end, also on failure.
Only loopback traffic.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    FAST_HASHERS,
    machine,
    migrate,
    session_cookie_name,
    session_keys,
    setup_django,
)

MEDIA_WAIT = 30_000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="calls to join, one timing each")
    parser.add_argument("--record-seconds", type=float, default=20.0, help="recording length")
    return parser.parse_args()


def prepare() -> tuple[int, dict[str, str], list[int]]:
    """alice and bob in a group room: (room id, {name: session key}, [their ids])."""
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from accounts.models import User
    from rooms.models import Membership, Role, Room, RoomKind

    people = [
        User.objects.create(username=name, password=make_password("x"), display_name=name.title())
        for name in ("alice", "bob")
    ]
    room = Room.objects.create(
        kind=RoomKind.GROUP, title="Calls bench", last_activity=timezone.now()
    )
    for person, role in zip(people, (Role.OWNER, Role.MEMBER), strict=True):
        Membership.objects.create(room=room, user=person, role=role)
    keys = session_keys(people)
    return room.pk, {p.username: keys[p.pk] for p in people}, [p.pk for p in people]


def open_room(browser, server, session: str, room_id: int):
    from playwright.sync_api import expect

    context = browser.new_context(base_url=server.url)
    context.set_default_timeout(MEDIA_WAIT)
    context.add_cookies([{"name": session_cookie_name(), "value": session, "url": server.url}])
    page = context.new_page()
    page.goto(f"/rooms/{room_id}/")
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    return page


def start_and_join(alice, bob) -> float:
    """alice starts a video call, bob joins: milliseconds from bob's click to alice's frame."""
    from playwright.sync_api import expect

    alice.get_by_label("Start call").click()
    alice.get_by_role("menuitem", name="Video call").click()
    join = bob.locator("#call-banner").get_by_role("button", name="Join")
    expect(join).to_be_visible()
    join.click()
    bob.wait_for_function("() => parleyCalls.stats.firstRemoteFrame !== null")
    return bob.evaluate("() => parleyCalls.stats.firstRemoteFrame - parleyCalls.stats.joinClicked")


def leave(*pages) -> None:
    from playwright.sync_api import expect

    for page in pages:
        page.locator("#call-panel").get_by_role("button", name="Leave", exact=True).click()
        expect(page.locator("#call-panel")).to_be_hidden()
    expect(pages[-1].locator("#call-banner")).to_be_hidden()


def record(alice, bob, room_id: int, seconds: float) -> tuple[int, float]:
    """alice records `seconds` of a call with bob: (bytes of the WebM posted, seconds)."""
    from playwright.sync_api import expect

    from rooms.models import Attachment

    start_and_join(alice, bob)
    alice.wait_for_function(
        "() => [...document.querySelectorAll('#call-grid video')].every((v) => v.videoWidth > 0)"
    )
    controls = alice.locator("#call-panel")
    controls.get_by_role("button", name="Record", exact=True).click()
    started = time.perf_counter()
    alice.wait_for_timeout(seconds * 1000)
    controls.get_by_role("button", name="Stop recording").click()
    recorded = time.perf_counter() - started
    expect(alice.locator(".msg-system", has_text="recorded the call")).to_be_visible()
    attachment = Attachment.objects.get(room_id=room_id, message__isnull=False)
    leave(alice, bob)
    return attachment.size, recorded


def run(args: argparse.Namespace, scratch: Path) -> dict:
    from django.db import connection, connections
    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM, CHROMIUM_ARGS
    from tests.live import AppServer

    migrate()
    room_id, sessions, _ = prepare()
    database = connection.vendor
    connections.close_all()
    server = AppServer(env={"MEDIA_ROOT": str(scratch / "media"), "LOG_LEVEL": "WARNING"})
    server.log_path = scratch / "server.log"
    server.env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the server keeps Django's check
    with server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        alice = open_room(browser, server, sessions["alice"], room_id)
        bob = open_room(browser, server, sessions["bob"], room_id)
        bitrate = alice.evaluate("() => parleyCalls.RECORDING_VIDEO_BITS_PER_SECOND")
        timings = []
        for _ in range(args.runs):
            timings.append(round(start_and_join(alice, bob), 1))
            leave(bob, alice)
        size, seconds = record(alice, bob, room_id, args.record_seconds)
        browser.close()
    return {
        "benchmark": "calls",
        "config": {
            "runs": args.runs,
            "record_seconds": args.record_seconds,
            "recording_video_bits_per_second": bitrate,
            "recording_audio_bits_per_second": 64_000,
            "recording_canvas": "1280x720, 25 fps, VP8+Opus WebM",
            "cameras": "Chromium fake device, 640x360 asked",
            "database": database,
        },
        "join_to_first_remote_frame_ms": {
            "runs": timings,
            "median": round(statistics.median(timings), 1),
            "max": max(timings),
        },
        "recording": {
            "seconds": round(seconds, 2),
            "bytes": size,
            "mb_per_minute": round(size / seconds * 60 / 1_000_000, 2),
            "measured_kbit_per_s": round(size * 8 / seconds / 1000, 1),
        },
        "machine": {**machine(), "nproc": os.cpu_count()},
    }


def main() -> None:
    args = parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="parley-calls-"))
    os.environ.setdefault("PASSWORD_HASHERS", FAST_HASHERS)
    os.environ["MEDIA_ROOT"] = str(scratch / "media")
    # The ORM calls between Playwright's (sync API) calls are plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    if not os.environ.get("DATABASE_URL"):
        os.environ["PARLEY_DATA_DIR"] = str(scratch)  # the server inherits it: same SQLite file
    try:
        setup_django()
        print(json.dumps(run(args, scratch)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
