"""A call in two real browsers (Chromium's fake camera and microphone): start, see the banner,
join, watch each other's video, mute, record, leave. One test, because each step needs the last.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from conftest import client_for
from rooms.models import Attachment, Call, Message
from tests.test_files_browser import media  # noqa: F401  (the server's MEDIA_ROOT, cleaned up)

pytestmark = pytest.mark.browser

MEDIA_WAIT = 20_000


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


@pytest.mark.usefixtures("media")
def test_video_call_with_mute_recording_and_end(open_page, room, alice, bob):
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

    controls.get_by_role("button", name="Camera off").click()
    expect(alice_tile.locator(".call-camera-off")).to_be_visible()
    controls.get_by_role("button", name="Camera on").click()
    expect(alice_tile.locator(".call-camera-off")).to_be_hidden()

    # Screen sharing swaps the track bob receives (replaceTrack): Chromium's fake screen is
    # 1280x720, its fake camera gives 640x360.
    controls.get_by_role("button", name="Share screen").click()
    expect(alice_tile.locator(".call-sharing")).to_be_visible()
    alice_video = alice_tile.locator("video")
    bob_page.wait_for_function(
        "(v) => v.videoWidth === 1280", arg=alice_video.element_handle(), timeout=MEDIA_WAIT
    )
    controls.get_by_role("button", name="Stop sharing").click()
    bob_page.wait_for_function(
        "(v) => v.videoWidth === 640", arg=alice_video.element_handle(), timeout=MEDIA_WAIT
    )

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

    # It plays in the room: the message's video loads the 1280x720 composite of the grid,
    # and knows its length (about the 3 s recorded), so it can seek.
    player = posted.locator(f'.file-card[data-file="{recording.pk}"] video')
    bob_page.wait_for_function(
        "(v) => v.readyState >= 1 && v.videoWidth === 1280",
        arg=player.element_handle(),
        timeout=MEDIA_WAIT,
    )
    assert 2 < player.evaluate("(v) => v.duration") < 10

    alice_page.locator("#call-panel").get_by_role("button", name="Leave", exact=True).click()
    expect(alice_page.locator("#call-panel")).to_be_hidden()
    expect(bob_page.locator("#call-grid .call-tile:not(.mine)")).to_have_count(0)
    bob_page.locator("#call-panel").get_by_role("button", name="Leave", exact=True).click()
    for page in (alice_page, bob_page):
        ended = page.locator(".msg-system", has_text="Call ended · ")
        expect(ended).to_contain_text("with Alice Adams, Bob Jones")
        expect(page.locator("#call-banner")).to_be_hidden()
    assert Message.objects.filter(room=room, body__startswith="Call ended").count() == 1


def test_refused_camera_and_microphone_say_so(browser, app_server, open_page, room, alice):
    """A browser whose permission prompt is answered no (headless Chromium without the fake
    prompt dismisses it) hears why it cannot join, and no call starts."""
    from tests.conftest import CHROMIUM, CHROMIUM_ARGS

    refusing = browser.browser_type.launch(
        executable_path=CHROMIUM,
        args=[arg for arg in CHROMIUM_ARGS if arg != "--use-fake-ui-for-media-stream"],
        headless=True,
    )
    try:
        context = refusing.new_context(base_url=app_server.url)
        session = client_for(alice).cookies["sessionid"].value
        context.add_cookies([{"name": "sessionid", "value": session, "url": app_server.url}])
        page = context.new_page()
        page.goto(f"/rooms/{room.pk}/")
        expect(page.locator("body")).to_have_attribute("data-live", "connected")
        page.get_by_label("Start call").click()
        page.get_by_role("menuitem", name="Video call").click()
        expect(page.locator("#toast")).to_contain_text("permission was refused")
        expect(page.locator("#call-panel")).to_be_hidden()
    finally:
        refusing.close()
    assert not Call.objects.exists()


def test_browser_without_media_devices_is_told(open_page, room, alice):
    page = open_page(alice, f"/rooms/{room.pk}/")
    # What a browser without the API (or a page not served over HTTPS) looks like.
    page.add_init_script("Object.defineProperty(navigator, 'mediaDevices', {value: undefined})")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    page.get_by_label("Start call").click()
    page.get_by_role("menuitem", name="Voice call").click()
    expect(page.locator("#toast")).to_contain_text("lacks getUserMedia")
    assert not Call.objects.exists()


def test_voice_call_screen_share_renegotiates_video(open_page, room, alice, bob):
    """A voice call has no video to replace: sharing adds a track, and the peers negotiate
    again over the websocket (perfect negotiation) so bob sees the screen."""
    alice_page = open_page(alice, f"/rooms/{room.pk}/")
    bob_page = open_page(bob, f"/rooms/{room.pk}/")
    alice_page.get_by_label("Start call").click()
    alice_page.get_by_role("menuitem", name="Voice call").click()
    bob_page.locator("#call-banner").get_by_role("button", name="Join").click()
    alice_tile = bob_page.locator(f'#call-grid .call-tile[data-user="{alice.pk}"]')
    expect(alice_tile).to_have_attribute("data-video", "off")
    expect(bob_page.locator("#call-panel [data-call-action=camera]")).to_be_hidden()
    bob_page.wait_for_function(
        "(v) => v.srcObject && v.srcObject.getAudioTracks().length === 1",
        arg=alice_tile.locator("video").element_handle(),
        timeout=MEDIA_WAIT,
    )

    alice_page.locator("#call-panel").get_by_role("button", name="Share screen").click()
    expect(alice_tile.locator(".call-sharing")).to_be_visible()
    expect(alice_tile).to_have_attribute("data-video", "on")
    bob_page.wait_for_function(
        "(v) => v.videoWidth === 1280 && v.currentTime > 0",
        arg=alice_tile.locator("video").element_handle(),
        timeout=MEDIA_WAIT,
    )
    alice_page.locator("#call-panel").get_by_role("button", name="Stop sharing").click()
    expect(alice_tile).to_have_attribute("data-video", "off")
    for page in (alice_page, bob_page):
        page.locator("#call-panel").get_by_role("button", name="Leave", exact=True).click()
    expect(bob_page.locator(".msg-system", has_text="Call ended · ")).to_be_visible()
