"""Record screen and Take screenshot, in a real Chromium against the session's server.

The browser's fake media (CHROMIUM_ARGS) answers getDisplayMedia with no picker: a 1280x720
moving test pattern with a beeping audio track, and getUserMedia with a fake microphone. A
second Chromium launched with `--use-fake-ui-for-media-stream=deny` refuses every capture, as
a person cancelling the browser's picker does (NotAllowedError).
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from PIL import Image
from playwright.sync_api import Page, expect

from conftest import client_for
from rooms.models import Attachment, Upload
from tests import test_files_browser
from tests.conftest import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser

# The server's MEDIA_ROOT, left as it was found.
media = test_files_browser.media

UPLOAD_WAIT = 30_000
RECORDING_NAME = re.compile(r"screen-recording-\d{4}-\d\d-\d\d-\d{4}\.webm")
SCREENSHOT_NAME = re.compile(r"screenshot-\d{4}-\d\d-\d\d-\d{4}\.png")
# The fake screen's size.
SCREEN = (1280, 720)


@pytest.fixture(scope="module")
def denying_browser(browser):
    """A Chromium whose capture prompts all answer no."""
    args = [
        "--use-fake-ui-for-media-stream=deny" if arg == "--use-fake-ui-for-media-stream" else arg
        for arg in CHROMIUM_ARGS
    ]
    denying = browser.browser_type.launch(executable_path=CHROMIUM, args=args, headless=True)
    yield denying
    denying.close()


def keep_display_streams(page: Page) -> None:
    """Keep every stream getDisplayMedia hands the page, to see later whether it was stopped."""
    page.add_init_script(
        """(() => {
          const devices = navigator.mediaDevices;
          const real = devices.getDisplayMedia.bind(devices);
          window.__displayStreams = [];
          devices.getDisplayMedia = async (options) => {
            const stream = await real(options);
            window.__displayStreams.push(stream);
            return stream;
          };
        })()"""
    )


def live_display_tracks(page: Page) -> int:
    return page.evaluate(
        """() => window.__displayStreams.flatMap(s => s.getTracks())
                  .filter(t => t.readyState === 'live').length"""
    )


def open_attach_item(page: Page, name: str) -> None:
    page.get_by_label("Attach file").click()
    page.get_by_role("menuitem", name=name).click()


def record_screen(page: Page, *, microphone: bool, seconds: float | None) -> None:
    """Record screen from the attach menu; Stop after `seconds`, or wait for the limit."""
    open_attach_item(page, "Record screen")
    dialog = page.get_by_role("dialog", name="Record screen")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Include microphone").set_checked(microphone)
    dialog.get_by_role("button", name="Choose what to record").click()
    if seconds is not None:
        expect(dialog.get_by_role("timer")).to_be_visible()
        page.wait_for_timeout(seconds * 1000)
        dialog.get_by_role("button", name="Stop").click()
    expect(dialog.get_by_role("button", name="Send")).to_be_visible(timeout=15_000)


def ready_upload(page: Page, pattern: re.Pattern):
    item = page.locator("#attachments .upload", has_text=pattern)
    expect(item.locator(".upload-status")).to_have_text("100% · Ready to send", timeout=UPLOAD_WAIT)
    return item


def send_message(page: Page, text: str) -> None:
    page.get_by_role("textbox", name="Message").fill(text)
    page.get_by_role("textbox", name="Message").press("Enter")
    expect(page.locator("#attachments .upload")).to_have_count(0)


def test_a_screen_recording_with_the_microphone_is_previewed_sent_and_plays_for_bob(
    open_page, room, alice, bob, mallory, media
):
    bob_page = open_page(bob, f"/rooms/{room.pk}/")
    page = open_page(alice, f"/rooms/{room.pk}/")

    record_screen(page, microphone=True, seconds=2.5)

    dialog = page.get_by_role("dialog", name="Record screen")
    preview = dialog.locator("video")
    page.wait_for_function("video => video.readyState >= 1", arg=preview.element_handle())
    note = dialog.get_by_role("status")
    expect(note).to_contain_text(re.compile(r"^0:0[2-6] recorded · [\d.]+ (KB|MB)\."))
    assert preview.evaluate("v => v.videoWidth") == SCREEN[0]
    # The WebM carries its length (MediaRecorder leaves it out), so the player can seek.
    assert 2.0 <= preview.evaluate("v => v.duration") <= 7

    dialog.get_by_role("button", name="Send").click()
    expect(dialog).to_be_hidden()
    item = ready_upload(page, RECORDING_NAME)
    expect(item.locator("progress")).to_have_attribute("value", "100")
    send_message(page, "how it looks now")

    stored = Attachment.objects.get(room=room)
    assert RECORDING_NAME.fullmatch(stored.name), stored.name
    assert stored.content_type == "video/webm"
    data = (media / stored.file.name).read_bytes()
    assert stored.size == len(data) > 10_000
    # Screen video and one sound track: the fake screen's beep mixed with the microphone.
    assert b"V_VP9" in data or b"V_VP8" in data
    assert data.count(b"A_OPUS") == 1

    message = bob_page.locator("#messages .msg", has_text="how it looks now")
    video = message.locator("video.file-video")
    expect(video).to_have_attribute("src", f"/files/{stored.pk}/view/")
    bob_page.wait_for_function(
        "video => video.readyState >= 1 && video.videoWidth > 0", arg=video.element_handle()
    )
    assert video.evaluate("v => v.videoWidth") == SCREEN[0]
    assert 2.0 <= video.evaluate("v => v.duration") <= 7
    served = bob_page.request.get(f"/files/{stored.pk}/view/")
    assert served.ok
    assert served.headers["content-type"] == "video/webm"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-security-policy"].startswith("sandbox")
    assert len(served.body()) == stored.size

    outsider = client_for(mallory)
    assert outsider.get(f"/files/{stored.pk}/download/").status_code == 404
    assert outsider.get(f"/files/{stored.pk}/view/").status_code == 404
    assert Client().get(f"/files/{stored.pk}/view/").status_code == 302  # to the login page


def test_a_screen_recording_stops_by_itself_at_the_length_limit(open_page, room, alice, media):
    page = open_page(alice, f"/rooms/{room.pk}/")
    keep_display_streams(page)
    page.reload()
    # The server's limit is 30 minutes; this page is given 2 seconds.
    recorder = page.locator("#screen-recorder")
    assert recorder.get_attribute("data-max-seconds") == "1800"
    recorder.evaluate("dialog => { dialog.dataset.maxSeconds = '2'; }")

    record_screen(page, microphone=False, seconds=None)

    dialog = page.get_by_role("dialog", name="Record screen")
    expect(dialog.get_by_role("status")).to_have_text(
        re.compile(r"^0:0[23] recorded · [\d.]+ KB\. Stopped at the 2 seconds limit\.$")
    )
    assert live_display_tracks(page) == 0
    page.wait_for_function(
        "video => video.readyState >= 1", arg=dialog.locator("video").element_handle()
    )

    dialog.get_by_role("button", name="Discard").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#attachments .upload")).to_have_count(0)
    assert not Upload.objects.filter(uploader=alice).exists()


def test_ending_the_share_from_the_browser_stops_the_recording(open_page, room, alice, media):
    page = open_page(alice, f"/rooms/{room.pk}/")
    keep_display_streams(page)
    page.reload()
    open_attach_item(page, "Record screen")
    dialog = page.get_by_role("dialog", name="Record screen")
    dialog.get_by_role("button", name="Choose what to record").click()
    expect(dialog.get_by_role("timer")).to_have_text(re.compile(r"0:0[1-9]"), timeout=5_000)
    page.keyboard.press("Escape")  # would throw the recording away: Stop comes first
    expect(dialog.get_by_role("button", name="Stop")).to_be_visible()

    # What the browser's own "Stop sharing" does: the video track ends.
    page.evaluate(
        """() => window.__displayStreams[0].getVideoTracks()[0]
                   .dispatchEvent(new Event('ended'))"""
    )

    expect(dialog.get_by_role("status")).to_contain_text("Sharing ended, so the recording stopped.")
    assert live_display_tracks(page) == 0
    dialog.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.locator("#attachments .upload")).to_have_count(0)


def test_a_cropped_screenshot_is_attached_as_a_png_of_the_cropped_size(
    open_page, room, alice, bob, media
):
    bob_page = open_page(bob, f"/rooms/{room.pk}/")
    page = open_page(alice, f"/rooms/{room.pk}/")
    keep_display_streams(page)
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-live", "connected")

    open_attach_item(page, "Take screenshot")

    dialog = page.get_by_role("dialog", name="Screenshot")
    expect(dialog).to_be_visible()
    note = dialog.get_by_role("status")
    expect(note).to_have_text("Whole picture, 1280 × 720 pixels.")
    assert live_display_tracks(page) == 0  # one frame taken, sharing over at once

    picture = dialog.get_by_role("img", name="The screenshot")
    box = picture.bounding_box()

    def drag(x0: float, y0: float, x1: float, y1: float) -> None:
        page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
        page.mouse.down()
        page.mouse.move(box["x"] + x1 * box["width"], box["y"] + y1 * box["height"], steps=5)
        page.mouse.up()

    drag(0.1, 0.1, 0.3, 0.3)
    expect(note).to_contain_text("Cropped to")
    dialog.get_by_role("button", name="Reset crop").click()
    expect(note).to_have_text("Whole picture, 1280 × 720 pixels.")

    drag(0.75, 0.6, 0.25, 0.2)  # dragged up and to the left
    expect(note).to_have_text(re.compile(r"Cropped to \d+ × \d+ pixels\."))
    width, height = map(int, re.findall(r"\d+", note.text_content()))
    assert abs(width - SCREEN[0] * 0.5) <= 8 and abs(height - SCREEN[1] * 0.4) <= 8

    dialog.get_by_role("button", name="Attach").click()
    expect(dialog).to_be_hidden()
    ready_upload(page, SCREENSHOT_NAME)
    send_message(page, "this part")

    stored = Attachment.objects.get(room=room)
    assert SCREENSHOT_NAME.fullmatch(stored.name), stored.name
    assert stored.content_type == "image/png"
    with Image.open(media / stored.file.name) as image:
        assert image.format == "PNG"
        assert image.size == (width, height)
        assert any(low != high for low, high in image.convert("RGB").getextrema())
    card = bob_page.locator("#messages .msg", has_text="this part").locator(".file-card")
    expect(card).to_contain_text(stored.name)


def test_without_image_capture_the_screenshot_is_taken_from_a_video_frame(
    open_page, room, alice, media
):
    page = open_page(alice, f"/rooms/{room.pk}/")
    page.add_init_script("delete window.ImageCapture;")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-live", "connected")

    open_attach_item(page, "Take screenshot")
    dialog = page.get_by_role("dialog", name="Screenshot")
    expect(dialog.get_by_role("status")).to_have_text("Whole picture, 1280 × 720 pixels.")
    dialog.get_by_role("button", name="Attach").click()
    ready_upload(page, SCREENSHOT_NAME)
    send_message(page, "the whole screen")

    stored = Attachment.objects.get(room=room)
    with Image.open(media / stored.file.name) as image:
        assert image.size == SCREEN
        # The fake screen's picture, not an empty canvas.
        assert any(low != high for low, high in image.convert("RGB").getextrema())


def test_a_screenshot_can_be_cropped_from_the_keyboard(open_page, room, alice, media):
    page = open_page(alice, f"/rooms/{room.pk}/")
    open_attach_item(page, "Take screenshot")
    dialog = page.get_by_role("dialog", name="Screenshot")
    note = dialog.get_by_role("status")
    expect(note).to_have_text("Whole picture, 1280 × 720 pixels.")

    picture = dialog.get_by_role("img", name="The screenshot")
    picture.focus()
    picture.press("ArrowRight")  # the middle half first
    expect(note).to_have_text("Cropped to 640 × 360 pixels.")
    for key in ("ArrowRight", "ArrowDown", "Shift+ArrowLeft", "Shift+ArrowLeft", "Shift+ArrowUp"):
        picture.press(key)
    # A step is a fiftieth of the picture: 26 × 14 pixels.
    expect(note).to_have_text("Cropped to 588 × 346 pixels.")
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Attach")).to_be_focused()
    page.keyboard.press("Enter")

    expect(dialog).to_be_hidden()
    ready_upload(page, SCREENSHOT_NAME)
    send_message(page, "from the keyboard")
    stored = Attachment.objects.get(room=room)
    with Image.open(media / stored.file.name) as image:
        assert image.size == (588, 346)


def test_cancel_and_discard_attach_nothing(open_page, room, alice, media):
    page = open_page(alice, f"/rooms/{room.pk}/")

    open_attach_item(page, "Take screenshot")
    shot = page.get_by_role("dialog", name="Screenshot")
    expect(shot).to_be_visible()
    shot.get_by_role("button", name="Cancel").click()
    expect(shot).to_be_hidden()

    open_attach_item(page, "Take screenshot")
    expect(shot).to_be_visible()
    page.keyboard.press("Escape")
    expect(shot).to_be_hidden()

    open_attach_item(page, "Record screen")
    recorder = page.get_by_role("dialog", name="Record screen")
    recorder.get_by_role("button", name="Cancel").click()
    expect(recorder).to_be_hidden()

    record_screen(page, microphone=False, seconds=1)
    recorder.get_by_role("button", name="Discard").click()
    expect(recorder).to_be_hidden()

    page.wait_for_timeout(500)
    expect(page.locator("#attachments .upload")).to_have_count(0)
    expect(page.locator(".composer-error")).to_be_hidden()
    assert not Upload.objects.filter(uploader=alice).exists()
    assert not Attachment.objects.filter(uploader=alice).exists()


def test_without_screen_capture_the_composer_says_so(open_page, room, alice):
    page = open_page(alice, f"/rooms/{room.pk}/")
    page.add_init_script("delete MediaDevices.prototype.getDisplayMedia;")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    error = page.locator(".composer-error")

    for item in ("Take screenshot", "Record screen"):
        open_attach_item(page, item)
        expect(error).to_be_visible()
        expect(error).to_have_text(
            "This browser cannot capture the screen (phones and tablets cannot); "
            "use “Upload from this device” instead."
        )
        expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.locator("#attachments .upload")).to_have_count(0)


def test_without_media_recorder_record_screen_says_so(open_page, room, alice):
    page = open_page(alice, f"/rooms/{room.pk}/")
    page.add_init_script("delete window.MediaRecorder;")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-live", "connected")

    open_attach_item(page, "Record screen")

    expect(page.locator(".composer-error")).to_have_text(
        "This browser cannot record video (no WebM MediaRecorder); "
        "use “Upload from this device” instead."
    )
    expect(page.get_by_role("dialog")).to_have_count(0)


def test_a_refused_picker_attaches_nothing_and_says_why(
    denying_browser, app_server, transactional_db, room, alice
):
    context = denying_browser.new_context(base_url=app_server.url)
    context.set_default_timeout(10_000)
    errors: list[str] = []
    try:
        session = client_for(alice).cookies["sessionid"].value
        context.add_cookies([{"name": "sessionid", "value": session, "url": app_server.url}])
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"/rooms/{room.pk}/")
        expect(page.locator("body")).to_have_attribute("data-live", "connected")
        error = page.locator(".composer-error")

        open_attach_item(page, "Take screenshot")
        expect(error).to_have_text(
            "Screenshot cancelled: no screen, window or tab was shared, so nothing was attached."
        )
        expect(page.get_by_role("dialog")).to_have_count(0)

        open_attach_item(page, "Record screen")
        page.get_by_role("dialog", name="Record screen").get_by_role(
            "button", name="Choose what to record"
        ).click()
        expect(error).to_have_text(
            "Screen recording cancelled: no screen, window or tab was shared, "
            "so nothing was attached."
        )
        expect(page.get_by_role("dialog")).to_have_count(0)
        expect(page.locator("#attachments .upload")).to_have_count(0)
    finally:
        context.close()
    assert not errors, errors
    assert not Upload.objects.filter(uploader=alice).exists()
