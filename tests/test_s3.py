"""The S3 path end to end, against moto's standalone S3 server on a loopback port.

Chunks are parts of one multipart upload (5 MiB each, S3's minimum, the last one shorter);
downloads redirect to a presigned URL after the permission check, and that URL is fetched
over HTTP here as a browser would.
"""

from __future__ import annotations

import io
import os
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from email.message import Message
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

from conftest import client_for
from rooms.models import Attachment
from rooms.tests.test_files import eager_celery  # noqa: F401
from tests.live import free_port, wait_until_listening

pytestmark = pytest.mark.django_db(transaction=True)

PART = 5 * 1024 * 1024
KEYS = {"access_key": "testing", "secret_key": "testing"}


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory) -> Iterator[str]:
    pytest.importorskip("moto.server", reason="moto[server] is in requirements-test.txt")
    pytest.importorskip("flask", reason="moto[server] is in requirements-test.txt")
    port = free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    log = log_path.open("wb")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_listening(port, server, "moto_server", log=lambda: log_path.read_text()[-2000:])
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


@pytest.fixture
def s3(moto_url, settings, tmp_path):
    """S3 storage on a fresh bucket: the boto3 client to look inside it."""
    import boto3

    bucket = f"parley-{secrets.token_hex(4)}"
    client = boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "location": "parley",
                "endpoint_url": moto_url,
                "region_name": "us-east-1",
                "file_overwrite": False,
                "querystring_expire": 60,
                "signature_version": "s3v4",
                **KEYS,
            },
        },
    }
    settings.UPLOAD_CHUNK_BYTES = PART
    settings.MEDIA_ROOT = tmp_path / "not-used"
    client.bucket = bucket
    return client


def keys(s3) -> list[str]:
    listed = s3.list_objects_v2(Bucket=s3.bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def fetch(url: str) -> tuple[bytes, Message]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback moto)
        return response.read(), response.headers


def start(client, room, name: str, size: int):
    return client.post(f"/rooms/{room.pk}/uploads/", {"name": name, "size": size})


def put(client, upload_id: int, index: int, data: bytes):
    return client.put(
        f"/uploads/{upload_id}/chunks/{index}/", data, content_type="application/octet-stream"
    )


def upload(client, room, name: str, data: bytes) -> int:
    state = start(client, room, name, len(data)).json()
    for index in range(state["chunk_count"]):
        assert (
            put(client, state["id"], index, data[index * PART : (index + 1) * PART]).status_code
            == 200
        )
    return client.post(f"/uploads/{state['id']}/finish/").json()["attachment"]


def send(client, room, attachments: list[int], body: str = ""):
    response = client.post(
        f"/rooms/{room.pk}/messages/", {"body": body, "attachments": attachments}
    )
    assert response.status_code == 201, response.content
    return response


def test_a_big_file_goes_up_as_multipart_parts_and_comes_down_presigned(
    s3, room, alice, bob, mallory
):
    data = os.urandom(2 * PART + 12_345)
    client = client_for(alice)
    state = start(client, room, "Quarterly report ✓.bin", len(data)).json()
    assert state["chunk_count"] == 3
    parts = [data[i * PART : (i + 1) * PART] for i in range(3)]

    # Out of order and one twice: S3 holds three parts of one multipart upload.
    for index in (2, 0, 2, 1):
        assert put(client, state["id"], index, parts[index]).status_code == 200
    (pending,) = s3.list_multipart_uploads(Bucket=s3.bucket)["Uploads"]
    listed = s3.list_parts(Bucket=s3.bucket, Key=pending["Key"], UploadId=pending["UploadId"])
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2, 3]
    assert keys(s3) == []

    file_id = client.post(f"/uploads/{state['id']}/finish/").json()["attachment"]
    send(client, room, [file_id])

    stored = Attachment.objects.get(pk=file_id).file.name
    assert keys(s3) == [f"parley/{stored}"]
    assert "uploads" not in s3.list_multipart_uploads(Bucket=s3.bucket)
    response = client_for(bob).get(f"/files/{file_id}/download/")
    assert response.status_code == 302
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"].startswith("sandbox;")
    location = response["Location"]
    assert parse_qs(urlsplit(location).query)["X-Amz-Expires"] == ["60"]
    body, headers = fetch(location)
    assert body == data
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"] == (
        "attachment; filename*=utf-8''Quarterly%20report%20%E2%9C%93.bin"
    )
    # An outsider gets no URL at all.
    refused = client_for(mallory).get(f"/files/{file_id}/download/")
    assert refused.status_code == 404
    assert "Location" not in refused


def test_an_image_on_s3_gets_a_thumbnail_and_previews_inline(s3, room, alice, bob):
    image = io.BytesIO()
    Image.new("RGB", (640, 480), "green").save(image, "PNG")
    client = client_for(alice)
    file_id = upload(client, room, "green.png", image.getvalue())
    send(client, room, [file_id])

    attachment = Attachment.objects.get(pk=file_id)
    assert attachment.thumbnail.name.startswith("thumbnails/")
    assert f"parley/{attachment.thumbnail.name}" in keys(s3)
    view = client_for(bob).get(f"/files/{file_id}/view/")
    body, headers = fetch(view["Location"])
    assert body == image.getvalue()
    assert headers["Content-Type"] == "image/png"
    assert headers["Content-Disposition"] == 'inline; filename="green.png"'
    thumbnail, _ = fetch(client_for(bob).get(f"/files/{file_id}/thumbnail/")["Location"])
    with Image.open(io.BytesIO(thumbnail)) as small:
        assert small.size == (320, 240)


def test_html_on_s3_is_still_a_plain_attachment(s3, room, alice, bob):
    client = client_for(alice)
    file_id = upload(client, room, "page.html", b"<html><script>alert(1)</script></html>")
    send(client, room, [file_id])

    _, headers = fetch(client_for(bob).get(f"/files/{file_id}/view/")["Location"])

    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"].startswith("attachment;")


def test_cancelling_aborts_the_multipart_upload(s3, room, alice):
    client = client_for(alice)
    state = start(client, room, "never.bin", PART + 1).json()
    put(client, state["id"], 0, b"x" * PART)
    assert len(s3.list_multipart_uploads(Bucket=s3.bucket)["Uploads"]) == 1

    assert client.delete(f"/uploads/{state['id']}/").status_code == 204

    assert "Uploads" not in s3.list_multipart_uploads(Bucket=s3.bucket)
    assert keys(s3) == []
    assert put(client, state["id"], 1, b"x").status_code == 404


def test_deleting_a_file_removes_its_objects_from_the_bucket(s3, room, alice, bob):
    image = io.BytesIO()
    Image.new("RGB", (64, 64), "blue").save(image, "PNG")
    client = client_for(alice)
    file_id = upload(client, room, "blue.png", image.getvalue())
    send(client, room, [file_id])
    assert len(keys(s3)) == 2  # the file and its thumbnail

    assert client.post(f"/files/{file_id}/delete/").status_code == 200

    assert keys(s3) == []
    assert client_for(bob).get(f"/files/{file_id}/download/").status_code == 404


def test_a_zero_byte_file_on_s3(s3, room, alice, bob):
    client = client_for(alice)
    state = start(client, room, "empty.txt", 0).json()
    file_id = client.post(f"/uploads/{state['id']}/finish/").json()["attachment"]
    send(client, room, [file_id])

    body, _ = fetch(client_for(bob).get(f"/files/{file_id}/download/")["Location"])

    assert body == b""
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=s3.bucket)
