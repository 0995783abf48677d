"""Downloads honour a single HTTP byte range: players seek, interrupted downloads resume.

alice shares a file in the room, bob (a member) fetches parts of it, mallory (an outsider) gets
nothing. The protective headers of a download go with every part.
"""

from __future__ import annotations

import io

import pytest

from conftest import client_for
from rooms import actions, files
from rooms.actions import do_send_message

pytestmark = pytest.mark.django_db(transaction=True)

# A WebM header (so it plays inline on the view URL), then 1,000 counted bytes.
VIDEO = b"\x1a\x45\xdf\xa3" + b"\x9f\x42\x86\x81\x01webm" + bytes(i % 251 for i in range(987))


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.UPLOAD_CHUNK_BYTES = 256 * 1024


def share(user, room, name: str, data: bytes):
    upload = actions.do_create_upload(user, room=room, name=name, size=len(data))
    if data:
        actions.do_store_chunk(
            user, upload=upload, index=0, source=io.BytesIO(data), length=len(data)
        )
    attachment = actions.do_finish_upload(user, upload=upload)
    do_send_message(user, room=room, body="", attachments=[attachment.pk])
    return attachment


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def assert_protected(response) -> None:
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"].startswith("sandbox")


@pytest.mark.parametrize(
    ("header", "span"),
    [
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=990-5000", (990, 999)),
        ("bytes=999-999", (999, 999)),
        ("Bytes = 1 - 2", (1, 2)),
        ("bytes=5-2", None),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=-", None),
        ("bytes=a-b", None),
        ("bytes=" + "9" * 30 + "-", None),
        ("", None),
    ],
)
def test_a_range_header_is_read_as_one_span_or_ignored(header, span):
    assert files.byte_range(header, 1000) == span


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("bytes=1000-", 1000),
        ("bytes=5000-6000", 1000),
        ("bytes=-0", 1000),
        ("bytes=0-", 0),
        ("bytes=-10", 0),
    ],
)
def test_a_range_outside_the_file_cannot_be_satisfied(header, size):
    with pytest.raises(files.RangeNotSatisfiable):
        files.byte_range(header, size)


def test_a_member_gets_the_part_asked_for_with_the_download_headers(room, alice, bob):
    attachment = share(alice, room, "clip.webm", VIDEO)
    client = client_for(bob)

    middle = client.get(f"/files/{attachment.pk}/download/", headers={"Range": "bytes=100-199"})

    assert middle.status_code == 206
    assert body(middle) == VIDEO[100:200]
    assert middle["Content-Range"] == "bytes 100-199/1000"
    assert middle["Content-Length"] == "100"
    assert middle["Content-Disposition"] == 'attachment; filename="clip.webm"'
    assert_protected(middle)


def test_a_player_seeks_to_the_end_of_an_inline_video(room, alice, bob):
    attachment = share(alice, room, "clip.webm", VIDEO)
    client = client_for(bob)

    whole = client.get(f"/files/{attachment.pk}/view/")
    tail = client.get(f"/files/{attachment.pk}/view/", headers={"Range": "bytes=-24"})
    rest = client.get(f"/files/{attachment.pk}/view/", headers={"Range": "bytes=600-"})

    assert whole.status_code == 200
    assert whole["Accept-Ranges"] == "bytes"
    assert whole["Content-Length"] == "1000"
    assert body(whole) == VIDEO
    assert (tail.status_code, tail["Content-Range"], body(tail)) == (
        206,
        "bytes 976-999/1000",
        VIDEO[-24:],
    )
    assert (rest.status_code, rest["Content-Length"], body(rest)) == (206, "400", VIDEO[600:])
    for response in (whole, tail, rest):
        assert response["Content-Type"] == "video/webm"
        assert response["Content-Disposition"] == 'inline; filename="clip.webm"'
        assert_protected(response)


def test_a_range_beyond_the_end_is_416_with_the_size(room, alice, bob):
    attachment = share(alice, room, "clip.webm", VIDEO)

    response = client_for(bob).get(
        f"/files/{attachment.pk}/download/", headers={"Range": "bytes=1000-"}
    )

    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */1000"
    assert response.content.decode() == (
        "This file is 1,000 bytes; the range asked for starts beyond its end."
    )
    assert_protected(response)


def test_an_empty_file_has_no_part_to_give(room, alice, bob):
    attachment = share(alice, room, "empty.txt", b"")
    client = client_for(bob)

    assert client.get(f"/files/{attachment.pk}/download/").status_code == 200
    refused = client.get(f"/files/{attachment.pk}/download/", headers={"Range": "bytes=0-"})
    assert (refused.status_code, refused["Content-Range"]) == (416, "bytes */0")


@pytest.mark.parametrize(
    "headers",
    [
        {"Range": "bytes=0-1,5-6"},
        {"Range": "bytes=9-3"},
        {"Range": "lines=1-2"},
        {"Range": "bytes=0-9", "If-Range": '"an-old-version"'},
    ],
)
def test_ranges_it_does_not_serve_get_the_whole_file(room, alice, bob, headers):
    attachment = share(alice, room, "clip.webm", VIDEO)

    response = client_for(bob).get(f"/files/{attachment.pk}/download/", headers=headers)

    assert response.status_code == 200
    assert "Content-Range" not in response
    assert body(response) == VIDEO


def test_an_outsider_asking_for_a_range_gets_404_and_no_bytes(room, alice, mallory):
    attachment = share(alice, room, "clip.webm", VIDEO)

    for url in (f"/files/{attachment.pk}/download/", f"/files/{attachment.pk}/view/"):
        response = client_for(mallory).get(url, headers={"Range": "bytes=0-99"})
        assert response.status_code == 404
        assert VIDEO[:100] not in body(response)
