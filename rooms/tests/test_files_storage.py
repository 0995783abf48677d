"""Storage details: types sniffed from bytes, chunk stores, STORAGE_URL, ASGI streaming."""

from __future__ import annotations

import asyncio
import io

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import InMemoryStorage, default_storage

from messages_site.settings import parse_storage_url
from rooms import files
from rooms.models import Attachment
from rooms.tests.test_files import eager_celery, png, share_file  # noqa: F401


@pytest.mark.parametrize(
    ("head", "sniffed"),
    [
        (b"", "application/octet-stream"),
        (png(), "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio/wav"),
        (b"\x00\x00\x00\x18ftypmp42", "video/mp4"),
        (b"\x00\x00\x00\x18ftypqt  ", "video/quicktime"),
        (b"\x00\x00\x00\x18ftypM4A ", "audio/mp4"),
        (b"\x1a\x45\xdf\xa3\x9fB\x86\x81\x01webm", "video/webm"),
        (b"OggS\x00\x02", "audio/ogg"),
        (b"ID3\x03\x00", "audio/mpeg"),
        (b"%PDF-1.7\n", "application/pdf"),
        (b"PK\x03\x04\x14\x00", "application/zip"),
        (b"\x1f\x8b\x08\x00", "application/gzip"),
        (b"hello, plain words\n", "text/plain"),
        ("naïve café ✓".encode(), "text/plain"),
        (("x" * 4094 + "é").encode()[:4095], "text/plain"),
        (b"\xef\xbb\xbf  <!DOCTYPE html><p>hi", "text/html"),
        (b"notes <script>alert(1)</script>", "text/html"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"),
        (b"<?xml version='1.0'?><svg/>", "image/svg+xml"),
        (b"<?xml version='1.0'?><feed/>", "application/xml"),
        (b"\x00\x01\x02binary\x03", "application/octet-stream"),
        (b"MZ\x90\x00", "application/octet-stream"),
    ],
)
def test_the_type_is_sniffed_from_the_first_bytes(head, sniffed):
    assert files.sniff(head) == sniffed


def test_only_media_and_pdf_are_inline_and_markup_is_served_as_bytes():
    assert files.is_inline("image/png") and files.is_inline("application/pdf")
    for risky in ("text/html", "image/svg+xml", "application/xml", "application/octet-stream"):
        assert not files.is_inline(risky)
        assert files.served_type(risky) == "application/octet-stream"
    assert files.served_type("text/plain") == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    ("url", "entry"),
    [
        (
            "file:///srv/parley/files",
            {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": "/srv/parley/files"},
            },
        ),
        (
            "s3://parley-files/prod?endpoint_url=http://127.0.0.1:9000&region=eu-west-1",
            {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {
                    "bucket_name": "parley-files",
                    "location": "prod",
                    "file_overwrite": False,
                    "default_acl": None,
                    "querystring_auth": True,
                    "querystring_expire": 60,
                    "signature_version": "s3v4",
                    "endpoint_url": "http://127.0.0.1:9000",
                    "region_name": "eu-west-1",
                },
            },
        ),
    ],
)
def test_storage_url_picks_the_storage(url, entry):
    assert parse_storage_url(url) == entry


def test_storage_url_may_carry_keys_and_refuses_nonsense():
    options = parse_storage_url("s3://AKIA%2F1:se%2Fcret@bucket")["OPTIONS"]
    assert (options["access_key"], options["secret_key"]) == ("AKIA/1", "se/cret")
    with pytest.raises(ImproperlyConfigured, match="STORAGE_URL must look like"):
        parse_storage_url("ftp://host/files")
    with pytest.raises(ImproperlyConfigured, match="unknown option 'colour'"):
        parse_storage_url("s3://bucket?colour=blue")


@pytest.mark.django_db(transaction=True)
def test_any_other_storage_keeps_chunks_as_objects_and_joins_them(settings, room, alice, bob):
    settings.UPLOAD_CHUNK_BYTES = 1024
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    assert isinstance(files.chunk_store(), files.ChunkObjects)
    data = bytes(range(256)) * 9  # three chunks, the last one short

    attachment = share_file(alice, room, "mem.bin", data)

    assert isinstance(default_storage._wrapped, InMemoryStorage)
    assert default_storage.open(attachment.file.name).read() == data
    # The chunk objects are gone once joined.
    assert default_storage.listdir(f"{attachment.file.name}.chunks") == ([], [])
    assert Attachment.objects.get(pk=attachment.pk).size == len(data)


def test_a_download_under_asgi_streams_in_blocks_and_waits_for_the_socket(settings, tmp_path):
    """Django would read a synchronous file whole into memory under ASGI; ours is async."""
    settings.DOWNLOAD_BACKLOG_BYTES = 1
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * (3 * files.BLOCK_SIZE + 5))
    backlog = iter([5, 5, 0] + [0] * 10)
    original = files._drain_backlog
    files._drain_backlog = lambda: next(backlog)
    try:

        async def read_all() -> list[int]:
            with path.open("rb") as handle:
                return [len(block) async for block in files.stream_file(handle)]

        sizes = asyncio.run(read_all())
    finally:
        files._drain_backlog = original
    assert sizes == [files.BLOCK_SIZE] * 3 + [5]
    assert next(backlog) == 0  # the first block waited for the backlog to clear


def test_the_backlog_is_zero_outside_daphne():
    assert files._drain_backlog() == 0


def test_copy_exact_stops_at_the_length_and_reports_a_short_source():
    written = io.BytesIO()
    assert files.copy_exact(io.BytesIO(b"abcdef"), written.write, 4) == 4
    assert written.getvalue() == b"abcd"
    assert files.copy_exact(io.BytesIO(b"ab"), written.write, 4) == 2
