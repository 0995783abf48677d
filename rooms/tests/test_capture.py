"""Screen recordings and screenshots, server side: the length limit setting, the attach menu,
and a shared video playing in the message from the protected view URL.

What the browser does (capture, record, crop, upload) is in tests/test_capture_browser.py.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client

from conftest import client_for
from messages_site.tests.test_settings import check_with
from rooms.tests.test_files import png, share_file

pytestmark = pytest.mark.django_db(transaction=True)

# An EBML header whose DocType is "webm": the start of every MediaRecorder WebM file.
WEBM_START = (
    b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08"
    b"\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02"
)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.mark.parametrize(
    "value, message",
    [
        ("half an hour", "SCREEN_RECORDING_MAX_SECONDS must be a whole number"),
        ("0", "SCREEN_RECORDING_MAX_SECONDS must be between 1 and 14400 seconds"),
        ("-5", "SCREEN_RECORDING_MAX_SECONDS must be between 1 and 14400 seconds"),
        ("14401", "SCREEN_RECORDING_MAX_SECONDS must be between 1 and 14400 seconds"),
    ],
)
def test_a_bad_recording_limit_stops_start_up_with_a_clear_message(value, message):
    result = check_with(SCREEN_RECORDING_MAX_SECONDS=value)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_the_recording_limit_defaults_to_thirty_minutes():
    from django.conf import settings

    assert settings.SCREEN_RECORDING_MAX_SECONDS == 1800


def test_the_attach_menu_offers_capture_with_the_servers_limit(settings, room, alice):
    settings.SCREEN_RECORDING_MAX_SECONDS = 90

    page = client_for(alice).get(f"/rooms/{room.pk}/").content.decode()

    assert re.search(r'role="menuitem" data-capture="record">Record screen</button>', page)
    assert re.search(r'role="menuitem" data-capture="screenshot">Take screenshot</button>', page)
    assert re.search(r'<dialog id="screen-recorder"[^>]* data-max-seconds="90"', page)


def test_a_shared_video_plays_inline_in_the_message_for_members(room, alice, bob):
    video = share_file(alice, room, "screen-recording-2026-11-27-1210.webm", WEBM_START * 8)
    picture = share_file(alice, room, "screenshot-2026-11-27-1211.png", png(40, 30))
    assert video.content_type == "video/webm" and video.kind == "video"

    page = client_for(bob).get(f"/rooms/{room.pk}/").content.decode()

    players = re.findall(r"<video class=\"file-video\"[^>]*>", page)
    assert players == [
        f'<video class="file-video" src="/files/{video.pk}/view/" controls preload="metadata"'
        f' aria-label="{video.name}">'
    ]
    assert f'src="/files/{picture.pk}/view/"' not in page


def test_a_recording_is_served_inline_safely_to_members_and_to_nobody_else(
    room, alice, bob, mallory
):
    video = share_file(alice, room, "screen-recording-2026-11-27-1210.webm", WEBM_START * 8)

    view = client_for(bob).get(f"/files/{video.pk}/view/")
    assert view.status_code == 200
    assert b"".join(view.streaming_content) == WEBM_START * 8
    assert view["Content-Type"] == "video/webm"
    assert view["Content-Disposition"] == f'inline; filename="{video.name}"'
    assert view["X-Content-Type-Options"] == "nosniff"
    assert view["Content-Security-Policy"].startswith("sandbox;")
    download = client_for(bob).get(f"/files/{video.pk}/download/")
    assert download["Content-Disposition"] == f'attachment; filename="{video.name}"'

    for url in (f"/files/{video.pk}/view/", f"/files/{video.pk}/download/"):
        assert client_for(mallory).get(url).status_code == 404
        assert Client().get(url).status_code == 302  # to the login page
    room_page = client_for(mallory).get(f"/rooms/{room.pk}/")
    assert room_page.status_code == 404
