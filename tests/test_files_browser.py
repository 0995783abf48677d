"""Files in a real browser: attach, watch the upload, resume it, preview, download, delete, search.

Uploads go through the page's chunk API to the session's server, whose chunks are 8 MiB:
a 17 MiB file is three chunks. Files made in the test process (`share_file`) are stored where
that server reads them (`server_media_root`); every file a test stores is removed after it.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import Counter
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from rooms.models import Attachment
from rooms.tests.test_files import eager_celery, png, share_file  # noqa: F401

pytestmark = pytest.mark.browser

MiB = 1024 * 1024
# Routed requests pass through Playwright's driver, which is slow with 8 MiB bodies.
UPLOAD_WAIT = 30_000
CHUNK_URL = re.compile(r"/uploads/\d+/chunks/(\d+)/$")


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


@pytest.fixture
def big_file(tmp_path) -> Path:
    path = tmp_path / "design-v2.bin"
    path.write_bytes(os.urandom(17 * MiB))
    return path


def record_statuses(page: Page) -> None:
    """Keep every text the upload status lines show, to look at the progress afterwards."""
    page.evaluate(
        """() => {
          window.__statuses = [];
          new MutationObserver(() => {
            for (const line of document.querySelectorAll('.upload-status')) {
              window.__statuses.push(line.textContent);
            }
          }).observe(document.getElementById('attachments'),
                     {subtree: true, childList: true, characterData: true});
        }"""
    )


def count_chunks(page: Page) -> Counter:
    """Chunk PUTs that reached the server and were answered, by chunk index."""
    answered: Counter = Counter()

    def on_response(response) -> None:
        match = CHUNK_URL.search(response.url)
        if match and response.request.method == "PUT" and response.ok:
            answered[int(match.group(1))] += 1

    page.on("response", on_response)
    return answered


def upload_item(page: Page, name: str):
    return page.locator("#attachments .upload", has_text=name)


def send_files(page: Page) -> None:
    box = page.get_by_role("textbox", name="Message")
    box.press("Enter")
    expect(page.locator("#attachments .upload")).to_have_count(0)


def test_paperclip_upload_shows_progress_and_the_file_reaches_bob_live(
    open_page, room, alice, bob, big_file, media
):
    bob_page = open_page(bob, f"/rooms/{room.pk}/")
    page = open_page(alice, f"/rooms/{room.pk}/")
    chunks = count_chunks(page)
    record_statuses(page)

    with page.expect_file_chooser() as chooser:
        page.get_by_label("Attach file").click()
        page.get_by_role("menuitem", name="Upload from this device").click()
    chooser.value.set_files(big_file)

    item = upload_item(page, "design-v2.bin")
    expect(item.locator("progress")).to_have_attribute("value", "100", timeout=UPLOAD_WAIT)
    expect(item.locator(".upload-status")).to_have_text("100% · Ready to send", timeout=UPLOAD_WAIT)
    statuses = page.evaluate("window.__statuses")
    speeds = [s for s in statuses if re.fullmatch(r"\d+% · [\d.]+ (bytes|KB|MB|GB)/s", s)]
    assert speeds, statuses
    percents = [int(s.split("%")[0]) for s in speeds]
    assert percents == sorted(percents)
    assert dict(chunks) == {0: 1, 1: 1, 2: 1}

    send_files(page)

    card = bob_page.locator("#messages .file-card", has_text="design-v2.bin")
    expect(card).to_be_visible()
    expect(card.locator(".file-size")).to_have_text("17.0\xa0MB")
    stored = Attachment.objects.get(name="design-v2.bin")
    assert (media / stored.file.name).read_bytes() == big_file.read_bytes()


def test_an_upload_resumes_after_the_connection_drops_and_no_chunk_arrives_twice(
    open_page, room, alice, bob, big_file, media
):
    page = open_page(alice, f"/rooms/{room.pk}/")
    reached_server: Counter = Counter()
    dropped: list[int] = []

    def drop_the_reply_once(route) -> None:
        index = int(CHUNK_URL.search(route.request.url).group(1))
        reached_server[index] += 1
        if index == 1 and not dropped:
            # The chunk gets to the server, but the connection dies before the reply.
            route.fetch()
            dropped.append(index)
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(CHUNK_URL, drop_the_reply_once)
    record_statuses(page)
    page.locator("#attach-input").set_input_files(big_file)

    item = upload_item(page, "design-v2.bin")
    expect(item.locator(".upload-status")).to_have_text("100% · Ready to send", timeout=UPLOAD_WAIT)
    assert dropped == [1]
    assert "Connection lost — retrying…" in page.evaluate("window.__statuses")
    # The page asked what had arrived and did not send chunk 1 again.
    assert dict(reached_server) == {0: 1, 1: 1, 2: 1}

    send_files(page)
    stored = Attachment.objects.get(name="design-v2.bin")
    assert (media / stored.file.name).read_bytes() == big_file.read_bytes()


def test_an_upload_interrupted_by_a_reload_resumes_from_the_last_stored_chunk(
    open_page, room, alice, bob, big_file, media
):
    page = open_page(alice, f"/rooms/{room.pk}/")
    held = []
    holding = True

    def hold_chunk_1(route) -> None:
        if "/chunks/1/" in route.request.url and holding:
            held.append(route)  # not answered: the page is reloaded meanwhile
        else:
            route.continue_()

    page.route(CHUNK_URL, hold_chunk_1)
    first_try = count_chunks(page)
    page.locator("#attach-input").set_input_files(big_file)
    # Chunks go up in parallel: chunks 0 and 2 are stored while chunk 1 hangs.
    for _ in range(300):
        if held and first_try[0] and first_try[2]:
            break
        page.wait_for_timeout(100)
    assert len(held) == 1
    assert dict(first_try) == {0: 1, 2: 1}

    page.reload()
    holding = False
    for route in held:
        with contextlib.suppress(Exception):  # it died with the page it came from
            route.abort()
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    paused = upload_item(page, "design-v2.bin")
    expect(paused.locator(".upload-status")).to_have_text(
        "Paused at 52%. Attach design-v2.bin again to resume."
    )
    chunks = count_chunks(page)
    page.locator("#attach-input").set_input_files(big_file)

    expect(paused.locator(".upload-status")).to_have_text(
        "100% · Ready to send", timeout=UPLOAD_WAIT
    )
    assert dict(chunks) == {1: 1}
    send_files(page)
    stored = Attachment.objects.get(name="design-v2.bin")
    assert (media / stored.file.name).read_bytes() == big_file.read_bytes()


def test_a_file_over_the_limit_is_refused_before_a_byte_is_sent(open_page, room, alice, tmp_path):
    huge = tmp_path / "disk.img"
    with huge.open("wb") as sparse:
        sparse.truncate(1024**3 + 1)  # takes no disk
    page = open_page(alice, f"/rooms/{room.pk}/")
    sent = []
    page.on("request", lambda request: "/uploads/" in request.url and sent.append(request.url))

    page.locator("#attach-input").set_input_files(huge)

    refusal = upload_item(page, "disk.img").locator(".upload-status")
    expect(refusal).to_have_text("disk.img is 1.0 GB; files can be at most 1.0 GB.")
    assert sent == []


def test_a_dropped_file_and_a_pasted_image_go_with_the_message(open_page, room, alice, bob, media):
    bob_page = open_page(bob, f"/rooms/{room.pk}/")
    page = open_page(alice, f"/rooms/{room.pk}/")

    page.evaluate(
        """() => {
          const dropped = new DataTransfer();
          dropped.items.add(new File(['dropped words'], 'dropped.txt', {type: 'text/plain'}));
          const room = document.getElementById('room');
          room.dispatchEvent(new DragEvent('dragenter', {dataTransfer: dropped, bubbles: true}));
          room.dispatchEvent(new DragEvent('drop', {dataTransfer: dropped, bubbles: true,
                                                    cancelable: true}));
        }"""
    )
    page.evaluate(
        """async (bytes) => {
          const pasted = new DataTransfer();
          pasted.items.add(new File([new Uint8Array(bytes)], 'image.png', {type: 'image/png'}));
          document.getElementById('composer-body').dispatchEvent(
            new ClipboardEvent('paste', {clipboardData: pasted, bubbles: true, cancelable: true}));
        }""",
        list(png(120, 80)),
    )
    for name in ("dropped.txt", "image.png"):
        expect(upload_item(page, name).locator(".upload-status")).to_have_text(
            "100% · Ready to send", timeout=UPLOAD_WAIT
        )
    page.get_by_role("textbox", name="Message").fill("two files")
    send_files(page)

    message = bob_page.locator("#messages .msg", has_text="two files")
    expect(message.locator(".file-card")).to_have_count(2)
    for name in ("dropped.txt", "image.png"):
        expect(message.locator(".file-card", has_text=name)).to_be_visible()


def test_preview_an_image_then_download_it(open_page, room, alice, bob, media, tmp_path):
    picture = png(1200, 800, "orange")
    share_file(alice, room, "sunset.png", picture, body="the sunset")
    page = open_page(bob, f"/rooms/{room.pk}/")

    page.get_by_role("button", name="Preview sunset.png").click()

    dialog = page.get_by_role("dialog", name="sunset.png")
    expect(dialog).to_be_visible()
    image = dialog.get_by_role("img", name="sunset.png")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth") == 1200
    with page.expect_download() as download:
        dialog.get_by_role("link", name="Download").click()
    assert download.value.suggested_filename == "sunset.png"
    saved = tmp_path / "downloaded.png"
    download.value.save_as(saved)
    assert saved.read_bytes() == picture
    dialog.get_by_role("button", name="Close preview").click()
    expect(dialog).to_be_hidden()


def test_deleting_a_file_shows_file_deleted_for_bob_live(open_page, room, alice, bob, media):
    attachment = share_file(alice, room, "draft.pdf", b"%PDF-1.4 draft", body="the draft")
    bob_page = open_page(bob, f"/rooms/{room.pk}/")
    page = open_page(alice, f"/rooms/{room.pk}/")
    page.on("dialog", lambda confirm: confirm.accept())

    page.get_by_role("button", name="Members").click()
    page.get_by_role("button", name="Files & Links").click()
    item = page.locator(f"#file-item-{attachment.pk}")
    expect(item).to_contain_text("draft.pdf")
    item.get_by_label("File options").click()
    item.get_by_role("menuitem", name="Delete").click()

    expect(item).to_have_count(0)
    message = bob_page.locator("#messages .msg", has_text="the draft")
    expect(message.locator(".file-card.deleted")).to_have_text("File deleted")
    expect(message.locator(".file-card.deleted")).to_be_visible()
    assert not (media / attachment.file.name).exists()
    response = bob_page.request.get(f"/files/{attachment.pk}/download/")
    assert response.status == 404


def test_the_files_and_links_panel_searches_files_by_name(open_page, room, alice, bob, media):
    for name in ("invoice-march.pdf", "logo.png", "invoice-april.pdf", "notes.txt"):
        share_file(bob, room, name, b"%PDF-1.4" if name.endswith(".pdf") else b"x")
    share_file(bob, room, "brief.txt", b"brief", body="see https://example.com/brief")
    page = open_page(alice, f"/rooms/{room.pk}/")

    page.get_by_role("button", name="Members").click()
    page.get_by_role("button", name="Files & Links").click()
    panel = page.locator(".files-panel")
    names = panel.locator("#file-list .file-name")
    expect(names).to_have_text(
        ["brief.txt", "notes.txt", "invoice-april.pdf", "logo.png", "invoice-march.pdf"]
    )
    expect(panel.locator("#link-list")).to_contain_text("https://example.com/brief")
    expect(panel.locator("#link-list")).to_contain_text("Bob Jones")

    panel.get_by_role("searchbox", name="Search files").fill("invoice")
    expect(names).to_have_text(["invoice-april.pdf", "invoice-march.pdf"])
    panel.get_by_role("searchbox", name="Search files").fill("nothing like it")
    expect(panel.locator("#file-list")).to_have_text("No files named like “nothing like it”.")
