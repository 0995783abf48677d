"""Uploads and ranged downloads against a real server process, as the page makes them.

The chunk PUTs take the streamed path (the body goes from the server's receive loop to the file);
downloads stream asynchronously with byte ranges. alice uploads into her room, bob downloads
parts, mallory (an outsider) is refused. The server stores files in this test's own folder.
"""

from __future__ import annotations

import http.client
import json
import os
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.utils.crypto import get_random_string

from conftest import FAST_HASHERS, GENEROUS_RATE_LIMITS, client_for
from rooms.actions import do_send_message
from rooms.models import UploadChunk
from tests.live import AppServer

CHUNK = 256 * 1024
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def upload_server(test_database_url, tmp_path_factory):
    media = tmp_path_factory.mktemp("live-media")
    env = {
        "DATABASE_URL": test_database_url,
        "PASSWORD_HASHERS": ",".join(FAST_HASHERS),
        "MEDIA_ROOT": str(media),
        "UPLOAD_CHUNK_BYTES": str(CHUNK),
        **GENEROUS_RATE_LIMITS,
    }
    with AppServer(env=env) as server:
        yield server


class Browser:
    """One person's keep-alive connection with their session cookie and CSRF token."""

    def __init__(self, server: AppServer, user) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        self.token = get_random_string(32)
        session = client_for(user).cookies[settings.SESSION_COOKIE_NAME].value
        self.cookie = f"{settings.SESSION_COOKIE_NAME}={session}; csrftoken={self.token}"

    def request(self, method: str, path: str, body=None, **headers: str):
        sent = {"Cookie": self.cookie, "X-CSRFToken": self.token, **headers}
        self.connection.request(method, path, body=body, headers=sent)
        response = self.connection.getresponse()
        return response, response.read()

    def put_chunk(self, upload_id: int, index: int, data: bytes, **headers: str):
        kind = {"Content-Type": "application/octet-stream", **headers}
        return self.request("PUT", f"/uploads/{upload_id}/chunks/{index}/", data, **kind)


def test_a_file_streams_up_in_chunks_and_down_in_ranges(upload_server, room, alice, bob, mallory):
    data = os.urandom(2 * CHUNK + 1000)
    part = lambda index: data[index * CHUNK : (index + 1) * CHUNK]  # noqa: E731
    uploader = Browser(upload_server, alice)
    response, text = uploader.request(
        "POST",
        f"/rooms/{room.pk}/uploads/",
        urlencode({"name": "talk.bin", "size": len(data)}),
        **{"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 201, text
    upload_id = json.loads(text)["id"]

    refusals = [
        (Browser(upload_server, mallory).put_chunk(upload_id, 1, part(1)), 404),
        (uploader.put_chunk(upload_id, 1, part(1), **{"X-CSRFToken": "x" * 32}), 403),
        (uploader.put_chunk(upload_id, 1, part(1) + b"!"), 413),
        (uploader.put_chunk(upload_id, 3, b"beyond"), 400),
    ]
    for (response, text), status in refusals:
        assert response.status == status, text
    assert not UploadChunk.objects.filter(upload_id=upload_id).exists()
    for index in (2, 0, 1, 0):
        response, text = uploader.put_chunk(upload_id, index, part(index))
        assert response.status == 200, text
    response, text = uploader.request("POST", f"/uploads/{upload_id}/finish/")
    assert response.status == 200, text
    attachment_id = json.loads(text)["attachment"]
    do_send_message(alice, room=room, body="", attachments=[attachment_id])

    member = Browser(upload_server, bob)
    whole, got = member.request("GET", f"/files/{attachment_id}/download/")
    middle, got_middle = member.request(
        "GET", f"/files/{attachment_id}/download/", Range=f"bytes={CHUNK - 10}-{CHUNK + 9}"
    )
    beyond, said = member.request("GET", f"/files/{attachment_id}/download/", Range="bytes=-0")

    assert (whole.status, whole.getheader("Accept-Ranges"), got) == (200, "bytes", data)
    assert middle.status == 206
    assert middle.getheader("Content-Range") == f"bytes {CHUNK - 10}-{CHUNK + 9}/{len(data)}"
    assert got_middle == data[CHUNK - 10 : CHUNK + 10]
    assert middle.getheader("X-Content-Type-Options") == "nosniff"
    assert middle.getheader("Content-Disposition") == 'attachment; filename="talk.bin"'
    assert (beyond.status, beyond.getheader("Content-Range")) == (416, f"bytes */{len(data)}")
    assert b"starts beyond its end" in said
