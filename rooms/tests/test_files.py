"""Files: chunked uploads, sending, downloads, previews, thumbnails and deletion, on local disk.

alice owns the room, carol is an admin, bob a member, mallory an outsider. Chunks are 1 KB here
so that a few KB make several chunks.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from PIL import Image

from conftest import befriend, client_for
from rooms import actions, views
from rooms.actions import do_send_message
from rooms.models import Attachment, Message, RoomKind, Upload, UploadChunk

CHUNK = 1024
# Real commits: files leave storage, thumbnails are made and events go out on commit.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.UPLOAD_CHUNK_BYTES = CHUNK
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def eager_celery():
    """Thumbnails are made inline, as in the embedded default, whatever REDIS_URL says."""
    from messages_site.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def stored_files(media: Path) -> list[Path]:
    return sorted(p for p in media.rglob("*") if p.is_file()) if media.exists() else []


def png(width: int = 64, height: int = 48, color: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims width × height pixels and holds none."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def start(client: Client, room, name: str, size: int, declared: str = ""):
    return client.post(f"/rooms/{room.pk}/uploads/", {"name": name, "size": size, "type": declared})


def put(client: Client, upload_id: int, index: int, data: bytes):
    return client.put(
        f"/uploads/{upload_id}/chunks/{index}/", data, content_type="application/octet-stream"
    )


def upload(client: Client, room, name: str, data: bytes, declared: str = "") -> int:
    """Upload `data` chunk by chunk through the API; returns the finished file's id."""
    created = start(client, room, name, len(data), declared)
    assert created.status_code == 201, created.content
    state = created.json()
    size = state["chunk_size"]
    for index in range(state["chunk_count"]):
        stored = put(client, state["id"], index, data[index * size : (index + 1) * size])
        assert stored.status_code == 200, stored.content
    finished = client.post(f"/uploads/{state['id']}/finish/")
    assert finished.status_code == 200, finished.content
    return finished.json()["attachment"]


def share_file(user, room, name: str, data: bytes, body: str = "") -> Attachment:
    """`user` uploads a file through the actions and sends it in a message."""
    started = actions.do_create_upload(user, room=room, name=name, size=len(data))
    for index in range(started.chunk_count):
        start_at = index * started.chunk_size
        chunk = data[start_at : start_at + started.chunk_size]
        actions.do_store_chunk(
            user, upload=started, index=index, source=io.BytesIO(chunk), length=len(chunk)
        )
    attachment = actions.do_finish_upload(user, upload=started)
    do_send_message(user, room=room, body=body, attachments=[attachment.pk])
    attachment.refresh_from_db()
    return attachment


def send(client: Client, room, body: str = "", attachments: list[int] = ()):
    return client.post(f"/rooms/{room.pk}/messages/", {"body": body, "attachments": attachments})


def content(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


# Uploading and sending -------------------------------------------------------------------------


def test_a_file_goes_up_in_chunks_and_another_member_downloads_it(room, alice, bob, media):
    data = bytes(range(256)) * 10  # 2,560 bytes: three chunks
    alice_client = client_for(alice)
    file_id = upload(alice_client, room, "report.bin", data)

    sent = send(alice_client, room, "the report", [file_id])
    assert sent.status_code == 201
    assert "report.bin" in sent.content.decode()
    assert 'class="file-card"' in sent.content.decode()

    response = client_for(bob).get(f"/files/{file_id}/download/")
    assert response.status_code == 200
    assert content(response) == data
    assert response["Content-Length"] == str(len(data))
    assert response["Content-Disposition"] == 'attachment; filename="report.bin"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"].startswith("sandbox;")
    assert "default-src 'none'" in response["Content-Security-Policy"]
    # One stored file, no chunk left behind.
    assert [p.read_bytes() for p in stored_files(media)] == [data]


def test_a_message_of_files_alone_needs_no_text(room, alice, bob):
    alice_client = client_for(alice)
    first = upload(alice_client, room, "a.txt", b"first")
    second = upload(alice_client, room, "b.txt", b"second")

    assert send(alice_client, room, "", [first, second]).status_code == 201

    message = Message.objects.get()
    assert message.body == ""
    assert sorted(message.attachments.values_list("name", flat=True)) == ["a.txt", "b.txt"]


def test_a_message_without_text_or_files_is_still_refused(room, alice):
    response = send(client_for(alice), room, "   ")
    assert response.status_code == 400
    assert response.content.decode() == "A message cannot be empty."


def test_chunks_out_of_order_and_twice_are_stored_once(room, alice):
    data = b"a" * CHUNK + b"b" * CHUNK + b"c" * 10
    client = client_for(alice)
    state = start(client, room, "abc.txt", len(data)).json()
    parts = [data[:CHUNK], data[CHUNK : 2 * CHUNK], data[2 * CHUNK :]]

    replies = [put(client, state["id"], i, parts[i]).json() for i in (2, 0, 1, 0, 2)]

    assert [r["duplicate"] for r in replies] == [False, False, False, True, True]
    assert UploadChunk.objects.filter(upload_id=state["id"]).count() == 3
    file_id = client.post(f"/uploads/{state['id']}/finish/").json()["attachment"]
    assert Attachment.objects.get(pk=file_id).file.read() == data


def test_an_upload_resumes_from_the_chunks_the_server_has(room, alice):
    client = client_for(alice)
    state = start(client, room, "big.bin", 3 * CHUNK).json()
    put(client, state["id"], 0, b"x" * CHUNK)
    put(client, state["id"], 2, b"z" * CHUNK)

    # The tab reloads or the connection drops: it asks what arrived and sends only the rest.
    resumed = client.get(f"/uploads/{state['id']}/").json()
    assert resumed["received"] == [0, 2]
    assert resumed["attachment"] is None
    put(client, state["id"], 1, b"y" * CHUNK)

    file_id = client.post(f"/uploads/{state['id']}/finish/").json()["attachment"]
    assert (
        Attachment.objects.get(pk=file_id).file.read() == b"x" * CHUNK + b"y" * CHUNK + b"z" * CHUNK
    )


def test_finishing_twice_gives_the_same_file(room, alice):
    client = client_for(alice)
    state = start(client, room, "once.txt", 5).json()
    put(client, state["id"], 0, b"hello")
    first = client.post(f"/uploads/{state['id']}/finish/").json()
    second = client.post(f"/uploads/{state['id']}/finish/").json()
    assert first["attachment"] == second["attachment"]
    assert Attachment.objects.count() == 1
    # A chunk repeated after the finish changes nothing.
    assert put(client, state["id"], 0, b"HELLO").json()["duplicate"] is True
    assert Attachment.objects.get().file.read() == b"hello"


def test_finishing_before_every_chunk_arrived_is_refused(room, alice):
    client = client_for(alice)
    state = start(client, room, "half.bin", 3 * CHUNK).json()
    put(client, state["id"], 1, b"y" * CHUNK)

    response = client.post(f"/uploads/{state['id']}/finish/")

    assert response.status_code == 400
    assert response.content.decode() == "2 of 3 chunks of half.bin have not arrived yet."
    assert not Attachment.objects.exists()


def test_chunks_beyond_the_declared_size_are_refused(room, alice, media):
    client = client_for(alice)
    state = start(client, room, "two.bin", CHUNK + 10).json()

    beyond = put(client, state["id"], 2, b"x" * 10)
    too_long = put(client, state["id"], 1, b"x" * 11)
    too_short = put(client, state["id"], 0, b"x" * 100)
    empty = put(client, state["id"], 1, b"")

    assert beyond.status_code == 400
    assert (
        beyond.content.decode() == "Chunk 2 is beyond the end of two.bin (1,034 bytes in 2 chunks)."
    )
    assert too_long.status_code == 413
    assert too_long.content.decode() == "Chunk 1 of two.bin is 11 bytes; it must be 10."
    assert too_short.status_code == 400
    assert empty.status_code == 411  # the test client sends no Content-Length for no body
    assert not UploadChunk.objects.exists()
    # The partial file is only the reserved (sparse) space: nothing was written into it.
    (partial,) = stored_files(media)
    assert partial.read_bytes() == b"\0" * (CHUNK + 10)


def test_an_oversized_chunk_is_refused_before_its_body_is_read(room, alice):
    upload_row = actions.do_create_upload(alice, room=room, name="f.bin", size=100)

    class Unreadable(io.RawIOBase):
        def read(self, *args):
            raise AssertionError("the body was read")

    request = RequestFactory().put(
        f"/uploads/{upload_row.pk}/chunks/0/", b"x" * 10, content_type="application/octet-stream"
    )
    request.META["CONTENT_LENGTH"] = str(1024**3)
    request._stream = Unreadable()
    request.user = alice

    response = views.upload_chunk(request, upload_row.pk, 0)

    assert response.status_code == 413
    assert response.content.decode() == "Chunk 0 of f.bin is 1,073,741,824 bytes; it must be 100."


def test_a_file_over_the_limit_is_refused_from_its_declared_size(room, alice, settings, media):
    settings.MAX_UPLOAD_BYTES = 1024**3
    client = client_for(alice)

    response = start(client, room, "movie.mkv", 1024**3 + 1)

    assert response.status_code == 413
    assert response.content.decode() == "movie.mkv is 1.0 GB; files can be at most 1.0 GB."
    assert not Upload.objects.exists()
    assert stored_files(media) == []
    assert start(client, room, "movie.mkv", 1024**3).status_code == 201


def test_cancelling_an_upload_removes_what_arrived(room, alice, media):
    client = client_for(alice)
    state = start(client, room, "gone.bin", 2 * CHUNK).json()
    put(client, state["id"], 0, b"x" * CHUNK)

    assert client.delete(f"/uploads/{state['id']}/").status_code == 204

    assert stored_files(media) == []
    assert client.get(f"/uploads/{state['id']}/").status_code == 404
    assert put(client, state["id"], 1, b"x" * CHUNK).status_code == 404


def test_removing_a_finished_file_before_sending_deletes_it(room, alice, media):
    client = client_for(alice)
    state = start(client, room, "draft.txt", 5).json()
    put(client, state["id"], 0, b"draft")
    file_id = client.post(f"/uploads/{state['id']}/finish/").json()["attachment"]

    assert client.delete(f"/uploads/{state['id']}/").status_code == 204

    assert not Attachment.objects.filter(pk=file_id).exists()
    assert stored_files(media) == []
    assert send(client, room, "", [file_id]).status_code == 400


def test_a_sent_file_cannot_be_cancelled_as_an_upload(room, alice):
    client = client_for(alice)
    file_id = upload(client, room, "sent.txt", b"sent")
    send(client, room, "", [file_id])
    upload_id = Upload.objects.get(attachment_id=file_id).pk

    response = client.delete(f"/uploads/{upload_id}/")

    assert response.status_code == 400
    assert "delete it from Files & Links" in response.content.decode()
    assert Attachment.objects.filter(pk=file_id, deleted__isnull=True).exists()


def test_an_upload_into_an_archived_room_is_refused(room, alice):
    actions.do_archive_room(alice, room=room)
    response = start(client_for(alice), room, "late.txt", 4)
    assert response.status_code == 400
    assert "archived" in response.content.decode()


def test_uploads_are_rate_limited(room, alice, settings):
    cache.clear()
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "upload": (2, 600)}
    client = client_for(alice)
    assert start(client, room, "1.txt", 1).status_code == 201
    assert start(client, room, "2.txt", 1).status_code == 201
    assert start(client, room, "3.txt", 1).status_code == 429


# Bad names and contents ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("reports/2024/q1.pdf", "q1.pdf"),
        ("bad\x07\x1bname.txt", "badname.txt"),
        ("line\nbreak\r.txt", "linebreak.txt"),
        ("invoice\u202etxt.exe", "invoicetxt.exe"),
        ("\u200fright\u200e-to-left.doc", "right-to-left.doc"),
        ("  spaced   out  .txt  ", "spaced out .txt"),
        ("trailing dots...", "trailing dots"),
        ("café\u0301.txt", "café\u0301.txt"),
    ],
)
def test_odd_names_are_stored_harmlessly(room, alice, raw, shown):
    response = start(client_for(alice), room, raw, 3)
    assert response.status_code == 201
    assert response.json()["name"] == shown


def test_a_thousand_character_name_is_shortened_keeping_its_extension(room, alice):
    response = start(client_for(alice), room, "x" * 1000 + ".pdf", 3)
    name = response.json()["name"]
    assert len(name) == 255
    assert name.endswith("xxx.pdf")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "This file has no name."),
        ("nul\x00.txt", "Null characters are not allowed."),
        ("..", "This file has no usable name; rename it and try again."),
        ("../", "This file has no usable name; rename it and try again."),
        ("\u202e\u200b", "This file has no usable name; rename it and try again."),
    ],
)
def test_names_with_nothing_left_are_refused(room, alice, raw, message):
    response = start(client_for(alice), room, raw, 3)
    assert response.status_code == 400
    assert response.content.decode() == message
    assert not Upload.objects.exists()


def test_a_stored_file_name_never_comes_from_the_uploader(room, alice, media):
    file_id = upload(client_for(alice), room, "../../../escape.txt", b"data")
    stored = Attachment.objects.get(pk=file_id).file.name
    assert "escape" not in stored
    assert [p.relative_to(media).parts[0] for p in stored_files(media)] == ["files"]


def test_a_zero_byte_file_is_stored_and_downloads_empty(room, alice, bob):
    client = client_for(alice)
    state = start(client, room, "empty.txt", 0).json()
    assert state["chunk_count"] == 0
    file_id = client.post(f"/uploads/{state['id']}/finish/").json()["attachment"]
    send(client, room, "", [file_id])

    response = client_for(bob).get(f"/files/{file_id}/download/")

    assert response.status_code == 200
    assert content(response) == b""
    assert response["Content-Type"] == "application/octet-stream"


@pytest.mark.parametrize(
    ("name", "data", "sniffed"),
    [
        ("page.html", b"<!doctype html><script>alert(document.cookie)</script>", "text/html"),
        (
            "logo.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "image/svg+xml",
        ),
        ("feed.xml", b'<?xml version="1.0"?><rss><item>x</item></rss>', "application/xml"),
        ("cat.png", b"<p>not a cat<script>alert(1)</script>", "text/html"),
    ],
)
def test_markup_is_never_shown_inline(room, alice, bob, name, data, sniffed):
    client = client_for(alice)
    file_id = upload(client, room, name, data, declared="image/png")
    send(client, room, "", [file_id])
    assert Attachment.objects.get(pk=file_id).content_type == sniffed

    for url in (f"/files/{file_id}/view/", f"/files/{file_id}/download/"):
        response = client_for(bob).get(url)
        assert response["Content-Type"] == "application/octet-stream"
        assert response["Content-Disposition"].startswith("attachment;")
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Security-Policy"].startswith("sandbox;")
        assert response["X-Frame-Options"] == "DENY"


def test_a_lying_declared_type_is_overridden_by_the_content(room, alice, bob):
    client = client_for(alice)
    file_id = upload(client, room, "notes.txt", png(), declared="text/plain")
    send(client, room, "", [file_id])

    response = client_for(bob).get(f"/files/{file_id}/view/")

    assert Attachment.objects.get(pk=file_id).content_type == "image/png"
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == 'inline; filename="notes.txt"'
    assert response["X-Frame-Options"] == "SAMEORIGIN"


def test_inline_types_are_inline_only_on_the_view_url(room, alice, bob):
    client = client_for(alice)
    pdf = upload(client, room, "spec.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
    send(client, room, "", [pdf])
    bob_client = client_for(bob)

    view = bob_client.get(f"/files/{pdf}/view/")
    download = bob_client.get(f"/files/{pdf}/download/")

    assert view["Content-Type"] == "application/pdf"
    assert view["Content-Disposition"] == 'inline; filename="spec.pdf"'
    assert download["Content-Disposition"] == 'attachment; filename="spec.pdf"'


def test_a_name_outside_ascii_is_encoded_per_rfc_6266(room, alice, bob):
    client = client_for(alice)
    file_id = upload(client, room, 'Résumé "final" ✓.txt', b"text")
    send(client, room, "", [file_id])

    response = client_for(bob).get(f"/files/{file_id}/download/")

    assert response["Content-Disposition"] == (
        "attachment; filename*=utf-8''R%C3%A9sum%C3%A9%20%22final%22%20%E2%9C%93.txt"
    )


def test_a_zip_bomb_is_stored_as_it_came_and_never_expanded(room, alice, bob, media):
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", b"\0" * (64 * 1024 * 1024))
    data = packed.getvalue()
    assert len(data) < 100_000
    client = client_for(alice)
    file_id = upload(client, room, "bomb.zip", data)
    send(client, room, "", [file_id])

    attachment = Attachment.objects.get(pk=file_id)
    response = client_for(bob).get(f"/files/{file_id}/download/")

    assert attachment.content_type == "application/zip"
    assert attachment.size == len(data)
    assert not attachment.thumbnail
    assert content(response) == data
    assert response["Content-Disposition"].startswith("attachment;")
    assert sum(p.stat().st_size for p in stored_files(media)) == len(data)


# Thumbnails --------------------------------------------------------------------------------------


def test_an_image_gets_a_thumbnail_shown_in_its_message(room, alice, bob):
    client = client_for(alice)
    file_id = upload(client, room, "photo.png", png(800, 600))
    html = send(client, room, "look", [file_id]).content.decode()

    attachment = Attachment.objects.get(pk=file_id)
    assert (attachment.width, attachment.height) == (800, 600)
    assert f'src="/files/{file_id}/thumbnail/"' in html
    response = client_for(bob).get(f"/files/{file_id}/thumbnail/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    with Image.open(io.BytesIO(content(response))) as small:
        assert max(small.size) == 320


@pytest.mark.parametrize(
    "data",
    [
        png_header(60_000, 60_000),
        png_header(10_000, 10_000),
        b"\x89PNG\r\n\x1a\n" + b"broken" * 100,
        b"\xff\xd8\xff\xe0" + b"\0" * 500,
        b"GIF89a" + b"\xff" * 100,
    ],
    ids=["60000x60000 header", "100 megapixels", "broken png", "broken jpeg", "broken gif"],
)
def test_huge_or_broken_images_get_no_thumbnail_and_no_error(room, alice, bob, data):
    client = client_for(alice)
    file_id = upload(client, room, "image.png", data)
    sent = send(client, room, "", [file_id])

    attachment = Attachment.objects.get(pk=file_id)
    assert sent.status_code == 201
    assert not attachment.thumbnail
    assert client_for(bob).get(f"/files/{file_id}/thumbnail/").status_code == 404
    assert content(client_for(bob).get(f"/files/{file_id}/download/")) == data


def test_making_a_thumbnail_twice_is_harmless(room, alice):
    attachment = share_file(alice, room, "p.png", png())
    assert attachment.thumbnail
    assert actions.do_make_thumbnail(attachment.pk) is False


# Who may see what --------------------------------------------------------------------------------


def file_urls(file_id: int) -> list[tuple[str, str]]:
    return [
        ("get", f"/files/{file_id}/"),
        ("get", f"/files/{file_id}/download/"),
        ("get", f"/files/{file_id}/view/"),
        ("get", f"/files/{file_id}/thumbnail/"),
        ("post", f"/files/{file_id}/delete/"),
    ]


def test_outsiders_get_404_from_every_file_url_and_no_bytes(room, alice, mallory):
    secret = png(color="blue")
    attachment = share_file(alice, room, "secret.png", secret)
    outsider = client_for(mallory)

    for method, url in [
        *file_urls(attachment.pk),
        ("get", f"/rooms/{room.pk}/files/"),
        ("get", f"/rooms/{room.pk}/files/list/"),
        ("get", f"/rooms/{room.pk}/links/"),
    ]:
        response = getattr(outsider, method)(url)
        assert response.status_code == 404, url
        assert secret not in content(response)
        assert b"secret.png" not in content(response)
    # Guessing ids finds nothing either.
    for guess in range(1, attachment.pk + 5):
        assert outsider.get(f"/files/{guess}/download/").status_code == 404
    assert Attachment.objects.get(pk=attachment.pk).deleted is None


def test_someone_who_left_the_room_loses_its_files(room, alice, bob):
    attachment = share_file(alice, room, "plan.txt", b"plan")
    actions.do_leave_room(bob, room=room)
    assert client_for(bob).get(f"/files/{attachment.pk}/download/").status_code == 404


def test_upload_urls_belong_to_the_uploader_alone(room, alice, bob, mallory):
    client = client_for(alice)
    state = start(client, room, "mine.bin", 2 * CHUNK).json()
    put(client, state["id"], 0, b"x" * CHUNK)

    for other in (client_for(bob), client_for(mallory)):
        assert other.get(f"/uploads/{state['id']}/").status_code == 404
        assert put(other, state["id"], 1, b"y" * CHUNK).status_code == 404
        assert other.post(f"/uploads/{state['id']}/finish/").status_code == 404
        assert other.delete(f"/uploads/{state['id']}/").status_code == 404
    assert UploadChunk.objects.filter(upload_id=state["id"]).count() == 1


def test_an_upload_into_a_room_you_are_not_in_is_404(room, mallory):
    response = start(client_for(mallory), room, "spam.exe", 10)
    assert response.status_code == 404
    assert not Upload.objects.exists()


def test_an_unsent_file_is_seen_by_its_uploader_alone(room, alice, bob):
    client = client_for(alice)
    file_id = upload(client, room, "draft.txt", b"draft")
    assert content(client.get(f"/files/{file_id}/download/")) == b"draft"
    assert client_for(bob).get(f"/files/{file_id}/download/").status_code == 404


def test_only_your_own_unsent_files_from_this_room_can_be_sent(room, alice, bob, carol):
    alice_client = client_for(alice)
    alices = upload(alice_client, room, "a.txt", b"a")
    befriend(alice, bob)
    other_room = actions.do_create_room(alice, kind=RoomKind.GROUP, title="Other", members=[bob])
    elsewhere = upload(alice_client, other_room, "b.txt", b"b")

    assert send(client_for(bob), room, "mine now", [alices]).status_code == 400
    assert send(alice_client, room, "wrong room", [elsewhere]).status_code == 400
    assert send(alice_client, room, "ok", [alices]).status_code == 201
    again = send(alice_client, room, "again", [alices])
    assert again.status_code == 400
    assert again.content.decode() == (
        "A file is not ready to send: it is still uploading, was removed, or was sent already."
    )
    assert send(alice_client, room, "junk", ["x1"]).status_code == 400
    assert Message.objects.count() == 1


def test_a_deleted_messages_files_are_gone(room, alice, bob, media):
    attachment = share_file(alice, room, "old.txt", b"old")
    actions.do_delete_message(alice, message=attachment.message)

    assert client_for(bob).get(f"/files/{attachment.pk}/download/").status_code == 404
    assert "old.txt" not in client_for(bob).get(f"/rooms/{room.pk}/files/").content.decode()
    assert actions.do_purge_stale_files() == 1
    assert stored_files(media) == []


# Deleting ----------------------------------------------------------------------------------------


def test_the_sharer_deletes_a_file_and_every_tab_shows_file_deleted(room, alice, bob, inbox, media):
    attachment = share_file(alice, room, "draft.pdf", b"%PDF-1.4 draft")
    bob_inbox = inbox(bob)
    client = client_for(alice)

    response = client.post(f"/files/{attachment.pk}/delete/")

    assert response.status_code == 200
    assert json.loads(response["HX-Trigger"]) == {"parley:file-deleted": {"id": attachment.pk}}
    (frame,) = [f for f in bob_inbox.frames() if f["type"] == "message.changed"]
    assert frame["id"] == attachment.message_id
    assert "File deleted" in frame["html"]
    assert "draft.pdf" not in frame["html"]
    assert stored_files(media) == []
    # The old URLs are gone for everyone, the sharer included.
    for method, url in file_urls(attachment.pk):
        assert getattr(client, method)(url).status_code == 404
    message_html = client_for(bob).get(f"/messages/{attachment.message_id}/").content.decode()
    assert "File deleted" in message_html


def test_a_room_admin_may_delete_anyones_file_a_member_only_their_own(room, alice, bob, carol):
    bobs = share_file(bob, room, "bob.txt", b"bob")
    alices = share_file(alice, room, "alice.txt", b"alice")

    refused = client_for(bob).post(f"/files/{alices.pk}/delete/")
    assert refused.status_code == 403
    assert refused.content.decode() == (
        "Only the person who shared a file, or the room's owner or an admin, can delete it."
    )
    assert client_for(carol).post(f"/files/{bobs.pk}/delete/").status_code == 200
    assert client_for(alice).post(f"/files/{alices.pk}/delete/").status_code == 200
    assert Attachment.objects.filter(deleted__isnull=False).count() == 2


def test_deleting_one_file_leaves_the_rest_of_the_message(room, alice, bob):
    client = client_for(alice)
    keep = upload(client, room, "keep.txt", b"keep")
    drop = upload(client, room, "drop.txt", b"drop")
    send(client, room, "two files", [keep, drop])

    client.post(f"/files/{drop}/delete/")

    html = client_for(bob).get(f"/messages/{Message.objects.get().pk}/").content.decode()
    assert "two files" in html
    assert "keep.txt" in html
    assert "File deleted" in html
    assert content(client_for(bob).get(f"/files/{keep}/download/")) == b"keep"


# Housekeeping ------------------------------------------------------------------------------------


def test_stale_uploads_and_unsent_files_are_purged(room, alice, settings, media):
    client = client_for(alice)
    state = start(client, room, "abandoned.bin", 2 * CHUNK).json()
    put(client, state["id"], 0, b"x" * CHUNK)
    unsent = upload(client, room, "unsent.txt", b"unsent")
    sent = share_file(alice, room, "sent.txt", b"sent")
    assert actions.do_purge_stale_files() == 0

    settings.UPLOAD_EXPIRY_HOURS = -1
    assert actions.do_purge_stale_files() == 2

    assert not Upload.objects.exists()
    assert not Attachment.objects.filter(pk=unsent).exists()
    assert [p.read_bytes() for p in stored_files(media)] == [b"sent"]
    assert Attachment.objects.get(pk=sent.pk).file.read() == b"sent"


def test_the_room_page_makes_as_many_queries_with_one_file_as_with_six(room, alice, bob):
    share_file(bob, room, "one.png", png(), body="https://www.dropbox.com/s/abc/one.pdf?dl=0")
    client = client_for(alice)
    client.get(f"/rooms/{room.pk}/")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(f"/rooms/{room.pk}/").status_code == 200
        return len(captured)

    few = queries()
    for n in range(5):
        share_file(bob, room, f"more-{n}.png", png(), body=f"https://example.com/{n}")
    client.get(f"/rooms/{room.pk}/")  # reads the new messages
    assert queries() == few
