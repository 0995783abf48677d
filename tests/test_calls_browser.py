"""A call in two real browsers (Chromium's fake camera and microphone): start, see the banner,
join, watch each other's video, mute, record, leave. One test, because each step needs the last.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from rooms.models import Attachment, Message

pytestmark = pytest.mark.browser

MEDIA_WAIT = 20_000


@pytest.fixture
def media(server_media_root) -> Path:
    """The server's MEDIA_ROOT, left as it was found."""
    before = set(server_media_root.rglob("*")) if server_media_root.exists() else set()
    yield server_media_root
    for path in sorted(set(server_media_root.rglob("*")) - before, reverse=True):
        if path.is_file():
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def expect_video_playing(page: Page, user_id: int) -> None:
    """The tile of `user_id` shows real frames that keep coming."""
    video = page.locator(f'#call-grid .call-tile:not(.mine)[data-user="{user_id}"] video')
    page.wait_for_function(
        "(v) => v.videoWidth > 0 && v.currentTime > 0",
        arg=video.element_handle(),
        timeout=MEDIA_WAIT,
    )
    before = video.evaluate("(v) => v.currentTime")
    page.wait_for_timeout(800)
    assert video.evaluate("(v) => v.currentTime") > before


def test_video_call_with_mute_recording_and_end(open_page, room, alice, bob, media):
    alice_page = open_page(alice, f"/rooms/{room.pk}/")
    bob_page = open_page(bob, f"/rooms/{room.pk}/")

    alice_page.get_by_label("Start call").click()
    alice_page.get_by_role("menuitem", name="Video call").click()
    expect(alice_page.locator("#call-panel")).to_be_visible()
    banner = bob_page.locator("#call-banner")
    expect(banner).to_contain_text("Video call in progress —")
    expect(banner).to_contain_text("Alice Adams")
    expect(bob_page.locator(".msg-system").last).to_contain_text("Alice Adams started a video call")

    banner.get_by_role("button", name="Join").click()
    expect(bob_page.locator("#call-panel")).to_be_visible()
    expect_video_playing(bob_page, alice.pk)
    expect_video_playing(alice_page, bob.pk)
    join_to_frame = bob_page.evaluate(
        "() => parleyCalls.stats.firstRemoteFrame - parleyCalls.stats.joinClicked"
    )
    assert 0 < join_to_frame < MEDIA_WAIT

    controls = alice_page.locator("#call-panel")
    controls.get_by_role("button", name="Mute", exact=True).click()
    alice_tile = bob_page.locator(f'#call-grid .call-tile[data-user="{alice.pk}"]')
    expect(alice_tile.locator(".call-muted")).to_be_visible()
    expect(controls.get_by_role("button", name="Unmute", exact=True)).to_be_visible()

    controls.get_by_role("button", name="Record", exact=True).click()
    expect(bob_page.locator("#call-panel .call-recording")).to_be_visible()
    alice_page.wait_for_timeout(3000)
    controls.get_by_role("button", name="Stop recording").click()
    expect(bob_page.locator("#call-panel .call-recording")).to_be_hidden()
    posted = bob_page.locator(".msg-system", has_text="Alice Adams recorded the call · 0:0")
    expect(posted).to_be_visible(timeout=MEDIA_WAIT)
    recording = Attachment.objects.get(room=room, message__isnull=False)
    assert recording.content_type == "video/webm"
    assert recording.size > 10_000
    assert recording.name.startswith("Call recording ") and recording.name.endswith(".webm")

    posted.get_by_role("button", name=f"Preview {recording.name}").click()
    player = bob_page.locator("dialog.file-preview video")
    bob_page.wait_for_function(
        "(v) => v.readyState >= 1 && v.duration > 0 && v.videoWidth === 1280",
        arg=player.element_handle(),
        timeout=MEDIA_WAIT,
    )
    bob_page.keyboard.press("Escape")

    alice_page.locator("#call-panel").get_by_role("button", name="Leave", exact=True).click()
    expect(alice_page.locator("#call-panel")).to_be_hidden()
    expect(bob_page.locator("#call-grid .call-tile:not(.mine)")).to_have_count(0)
    bob_page.locator("#call-panel").get_by_role("button", name="Leave", exact=True).click()
    for page in (alice_page, bob_page):
        ended = page.locator(".msg-system", has_text="Call ended · ")
        expect(ended).to_contain_text("with Alice Adams, Bob Jones")
        expect(page.locator("#call-banner")).to_be_hidden()
    assert Message.objects.filter(room=room, body__startswith="Call ended").count() == 1
