"""Upload chunks through the ASGI application, as the server hands them over: the body streams from
the receive loop to storage, and every check comes before the first byte of it is taken.

alice owns the room and uploads, bob is a member, mallory an outsider. Chunks are 1 KB here.
Each request body arrives in several ASGI messages, and `Exchange.taken` counts how many of
them the application asked for: a refused chunk must take none.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils.crypto import get_random_string

from conftest import client_for
from messages_site.asgi import application
from moderation import ratelimit
from rooms import actions
from rooms.models import Upload, UploadChunk
from rooms.tests.test_files import CHUNK, media  # noqa: F401 (files in tmp_path, 1 KB chunks)

pytestmark = pytest.mark.django_db(transaction=True)


class Exchange:
    """One HTTP request to the ASGI application: its body in `parts`, then, if asked, the client
    goes away. Keeps what the application sent back."""

    def __init__(self, parts: list[bytes], *, disconnect: bool = False) -> None:
        self.parts = parts
        self.disconnect = disconnect
        self.taken = 0
        self.sent: list[dict] = []

    async def receive(self) -> dict:
        if self.taken < len(self.parts):
            self.taken += 1
            more = self.taken < len(self.parts) or self.disconnect
            return {"type": "http.request", "body": self.parts[self.taken - 1], "more_body": more}
        if self.disconnect:
            return {"type": "http.disconnect"}
        await asyncio.Event().wait()  # a connection that stays open after its body
        raise AssertionError("unreachable")

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return self.sent[0]["status"]

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode().lower(): v.decode() for k, v in self.sent[0]["headers"]}

    @property
    def text(self) -> str:
        return b"".join(m.get("body", b"") for m in self.sent[1:]).decode()


class Person:
    """Someone's browser: their session cookie and CSRF token, as the page sends them."""

    def __init__(self, user=None) -> None:
        self.cookies = {"csrftoken": get_random_string(32)}
        if user is not None:
            session = client_for(user).cookies[django_settings.SESSION_COOKIE_NAME].value
            self.cookies[django_settings.SESSION_COOKIE_NAME] = session

    def put(
        self,
        path: str,
        data: bytes,
        *,
        parts: int = 4,
        method: str = "PUT",
        length: int | None = None,
        csrf: str | None = None,
        origin: str | None = None,
        disconnect_after: int | None = None,
    ) -> Exchange:
        step = max(1, -(-len(data) // parts))
        pieces = [data[i : i + step] for i in range(0, len(data), step)] or [b""]
        if disconnect_after is not None:
            pieces = pieces[:disconnect_after]
        headers = [
            (b"host", b"testserver"),
            (b"cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()).encode()),
            (b"content-type", b"application/octet-stream"),
            (b"x-csrftoken", (self.cookies["csrftoken"] if csrf is None else csrf).encode()),
        ]
        if length != -1:
            headers.append(
                (b"content-length", str(len(data) if length is None else length).encode())
            )
        if origin is not None:
            headers.append((b"origin", origin.encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        exchange = Exchange(pieces, disconnect=disconnect_after is not None)

        async def run() -> None:
            await asyncio.wait_for(application(scope, exchange.receive, exchange.send), 20)

        asyncio.run(run())
        return exchange


def started_upload(user, room, size: int) -> Upload:
    """An upload with its first chunk stored (so a test can see it is left alone)."""
    upload = actions.do_create_upload(user, room=room, name="plan.bin", size=size)
    first = b"A" * CHUNK
    actions.do_store_chunk(user, upload=upload, index=0, source=io.BytesIO(first), length=CHUNK)
    return upload


def partial_bytes() -> bytes:
    (partial,) = Path(django_settings.MEDIA_ROOT).rglob("*.part")
    return partial.read_bytes()


def chunk_url(upload: Upload, index: int) -> str:
    return f"/uploads/{upload.pk}/chunks/{index}/"


def test_chunks_stream_in_out_of_order_and_twice_and_make_the_file(room, alice, bob):
    data = bytes(range(256)) * 10  # 2,560 bytes: chunks of 1,024, 1,024 and 512
    upload = actions.do_create_upload(alice, room=room, name="notes.bin", size=len(data))
    browser = Person(alice)

    for index in (2, 0, 1):
        sent = browser.put(chunk_url(upload, index), data[index * CHUNK : (index + 1) * CHUNK])
        assert (sent.status, sent.text) == (
            200,
            f'{{"index": {index}, "stored": true, "duplicate": false}}',
        )
        assert sent.taken == len(sent.parts)
    again = browser.put(chunk_url(upload, 1), b"Z" * CHUNK)

    assert again.status == 200
    assert '"duplicate": true' in again.text
    assert again.taken == 0  # a chunk already stored is not read again
    client = client_for(alice)
    finished = client.post(f"/uploads/{upload.pk}/finish/")
    assert finished.status_code == 200, finished.content
    attachment_id = finished.json()["attachment"]
    client.post(f"/rooms/{room.pk}/messages/", {"body": "", "attachments": [attachment_id]})
    download = client_for(bob).get(f"/files/{attachment_id}/download/")
    assert b"".join(download.streaming_content) == data


REFUSALS = {
    # name: (who sends, what changes, status, the reason given)
    "signed out": (None, {}, 302, ""),
    "no CSRF token": ("alice", {"csrf": ""}, 403, "CSRF"),
    "wrong CSRF token": ("alice", {"csrf": "x" * 32}, 403, "CSRF"),
    "another site's page": ("alice", {"origin": "https://evil.example"}, 403, "CSRF"),
    "an outsider": ("mallory", {}, 404, "No such upload."),
    "a member who is not the uploader": ("bob", {}, 404, "No such upload."),
    "an index beyond the end": (
        "alice",
        {"index": 3},
        400,
        "Chunk 3 is beyond the end of plan.bin (2,058 bytes in 3 chunks).",
    ),
    "a body longer than the chunk": (
        "alice",
        {"data": b"B" * (CHUNK + 1)},
        413,
        "Chunk 1 of plan.bin is 1,025 bytes; it must be 1,024.",
    ),
    "a body shorter than the chunk": (
        "alice",
        {"data": b"B" * 100},
        400,
        "Chunk 1 of plan.bin is 100 bytes; it must be 1,024.",
    ),
    "a declared length over the file limit": (
        "alice",
        {"length": 2 * 1024**3},
        413,
        "Chunk 1 of plan.bin is 2,147,483,648 bytes; it must be 1,024.",
    ),
    "no Content-Length": ("alice", {"length": -1}, 411, "A chunk needs a Content-Length."),
    "a POST instead of a PUT": ("alice", {"method": "POST"}, 405, ""),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_a_refused_chunk_is_not_read_and_harms_nothing(case, room, alice, bob, mallory):
    who, change, status, reason = REFUSALS[case]
    upload = started_upload(alice, room, 2 * CHUNK + 10)
    before = partial_bytes()
    sender = Person({"alice": alice, "bob": bob, "mallory": mallory}.get(who))
    change = dict(change)
    url = chunk_url(upload, change.pop("index", 1))

    sent = sender.put(url, change.pop("data", b"B" * CHUNK), **change)

    assert sent.status == status
    assert reason in sent.text
    if status == 302:
        assert sent.headers["location"].startswith(reverse("login"))
    elif status == 405:
        assert sent.headers["allow"] == "PUT"
    else:
        assert sent.headers["content-type"].startswith("text/")
    assert sent.taken == 0
    assert list(UploadChunk.objects.filter(upload=upload).values_list("index", flat=True)) == [0]
    assert partial_bytes() == before


def test_a_cancelled_upload_takes_no_more_chunks(room, alice):
    upload = started_upload(alice, room, 2 * CHUNK)
    actions.do_cancel_upload(alice, upload=upload)

    sent = Person(alice).put(chunk_url(upload, 1), b"B" * CHUNK)

    assert (sent.status, sent.taken) == (404, 0)
    assert "No such upload." in sent.text
    assert not list(Path(django_settings.MEDIA_ROOT).rglob("*.part"))


def test_chunks_are_rate_limited_before_they_are_read(room, alice, settings):
    ratelimit.forget_all()
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "upload_chunk": (2, 600)}
    upload = actions.do_create_upload(alice, room=room, name="many.bin", size=4 * CHUNK)
    browser = Person(alice)

    answers = [browser.put(chunk_url(upload, index), b"C" * CHUNK) for index in range(3)]

    assert [a.status for a in answers] == [200, 200, 429]
    assert answers[2].text.startswith("Slow down")
    assert int(answers[2].headers["retry-after"]) > 0
    assert answers[2].taken == 0
    assert UploadChunk.objects.filter(upload=upload).count() == 2


def test_a_client_gone_mid_chunk_leaves_it_unstored_and_it_can_be_sent_again(room, alice):
    upload = started_upload(alice, room, 2 * CHUNK + 10)
    browser = Person(alice)

    cut = browser.put(chunk_url(upload, 1), b"B" * CHUNK, parts=4, disconnect_after=2)

    assert cut.status == 400
    assert cut.text == "The chunk was cut short: 512 of 1,024 bytes arrived."
    assert list(UploadChunk.objects.filter(upload=upload).values_list("index", flat=True)) == [0]
    resent = browser.put(chunk_url(upload, 1), b"B" * CHUNK)
    assert resent.status == 200
    assert partial_bytes()[: 2 * CHUNK] == b"A" * CHUNK + b"B" * CHUNK
