"""Record screen: the size of a screen recording per minute at the bitrate capture.js sets.

alice, in Debian's headless Chromium (fake 1280x720 screen with a beeping sound track, fake
microphone), records --seconds of her screen with the microphone through the attach menu
(static/js/capture.js: MediaRecorder to WebM), sends it, and the stored file's size gives the
figure. The fake screen is a mostly still test pattern, so the figure is a floor; the bitrate
is the ceiling. Prints one JSON object.

    .venv/bin/python bench/screen_recording.py [--seconds 60]

With no DATABASE_URL it uses a throw-away SQLite file. Everything the run stores lives in a
temporary folder that is removed at the end, also on failure. Only loopback traffic.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.calls import open_room, prepare  # noqa: E402
from bench.common import FAST_HASHERS, machine, migrate, setup_django  # noqa: E402


def record(page, room_id: int, seconds: float) -> tuple[int, float, str]:
    """(bytes stored, seconds recorded, file name) of one recording sent in the room."""
    from playwright.sync_api import expect

    from rooms.models import Attachment

    page.get_by_label("Attach file").click()
    page.get_by_role("menuitem", name="Record screen").click()
    dialog = page.get_by_role("dialog", name="Record screen")
    dialog.get_by_label("Include microphone").check()
    dialog.get_by_role("button", name="Choose what to record").click()
    expect(dialog.get_by_role("timer")).to_be_visible()
    started = time.perf_counter()
    page.wait_for_timeout(seconds * 1000)
    dialog.get_by_role("button", name="Stop").click()
    recorded = time.perf_counter() - started
    dialog.get_by_role("button", name="Send").click()
    expect(page.locator("#attachments .upload-status")).to_have_text(
        "100% · Ready to send", timeout=120_000
    )
    page.get_by_role("textbox", name="Message").press("Enter")
    expect(page.locator("#attachments .upload")).to_have_count(0)
    attachment = Attachment.objects.get(room_id=room_id, message__isnull=False)
    return attachment.size, recorded, attachment.name


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
        page = open_room(browser, server, sessions["alice"], room_id)
        size, seconds, name = record(page, room_id, args.seconds)
        browser.close()
    return {
        "benchmark": "screen_recording",
        "config": {
            "seconds": args.seconds,
            "video_bits_per_second": 1_000_000,
            "audio_bits_per_second": 64_000,
            "source": "Chromium fake screen 1280x720 + fake microphone, mixed (WebAudio)",
            "database": database,
        },
        "recording": {
            "name": name,
            "seconds": round(seconds, 2),
            "bytes": size,
            "mb_per_minute": round(size / seconds * 60 / 1_000_000, 2),
            "measured_kbit_per_s": round(size * 8 / seconds / 1000, 1),
            "ceiling_mb_per_minute": round(1_064_000 / 8 * 60 / 1_000_000, 2),
        },
        "machine": {**machine(), "nproc": os.cpu_count()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="recording length")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="parley-screen-"))
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
