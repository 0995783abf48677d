"""Files shared in rooms: names, types, chunked storage, downloads and thumbnails.

An upload arrives in chunks of `UPLOAD_CHUNK_BYTES` (the last one shorter), in any order and
possibly twice. Where the chunks go depends on the storage behind Django's storage API:

- local disk (`FileSystemStorage`): each chunk is written into its place in one partial file,
  which finishing renames into place: no second copy of the file;
- S3 (`django-storages`): each chunk is a part of one multipart upload, which finishing
  completes; downloads redirect to a short-lived presigned URL;
- any other storage: each chunk is a storage object, concatenated by streaming at finish.

Nothing here holds a whole file in memory: request bodies and files are copied in blocks of
`BLOCK_SIZE`. The reads and access checks of files live here too (`access_upload`,
`access_attachment`, the panel's pages), the writes in `actions.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import sys
import tempfile
import unicodedata
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Protocol

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, default_storage
from django.core.handlers.asgi import ASGIRequest
from django.db.models import Q, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.http import content_disposition_header

from accounts.models import User

from .direct_writes import PositionalWriter
from .models import Attachment, Link, Membership, Role, Upload
from .queries import access_membership

BLOCK_SIZE = 1024 * 1024
HEAD_BYTES = 4096
MAX_NAME_LENGTH = 255
MAX_ATTACHMENTS_PER_MESSAGE = 20
PANEL_PAGE_SIZE = 20
THUMBNAIL_SIZE = 320
# Bigger "images" are left as file cards rather than read whole by the thumbnail task.
THUMBNAIL_MAX_FILE_BYTES = 64 * 1024 * 1024
# S3 refuses parts smaller than this, except the last one.
S3_MIN_PART_BYTES = 5 * 1024 * 1024


class FileTooLarge(ValidationError):
    """A file over MAX_UPLOAD_BYTES, refused from its declared size (HTTP 413)."""


class ChunkCutShort(ValidationError):
    pass


# Names ---------------------------------------------------------------------------------------

# Control and format characters (RTL overrides, zero-width marks), lone surrogates, private use
# and unassigned code points: none belongs in a file name shown to other people.
_DROPPED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def clean_filename(raw: str) -> str:
    """The name to show and to offer on download: the last path part, printable, bounded.

    The name is never used to build a storage path, so this is about what people see.
    """
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _DROPPED_CATEGORIES)
    name = " ".join(name.split()).rstrip(". ")
    if not name.strip("."):
        raise ValidationError("This file has no usable name; rename it and try again.")
    if len(name) > MAX_NAME_LENGTH:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and 0 < len(extension) <= 16:
            name = stem[: MAX_NAME_LENGTH - len(extension) - 1].rstrip() + "." + extension
        else:
            name = name[:MAX_NAME_LENGTH]
    return name


def human_size(size: int) -> str:
    return str(filesizeformat(size)).replace("\xa0", " ")


def check_size(name: str, size: int) -> int:
    limit = settings.MAX_UPLOAD_BYTES
    if size < 0:
        raise ValidationError("A file cannot have a negative size.")
    if size > limit:
        raise FileTooLarge(
            f"{name} is {human_size(size)}; files can be at most {human_size(limit)}."
        )
    return size


# Types ---------------------------------------------------------------------------------------

_MARKUP_STARTS = (
    "<!doctype html",
    "<html",
    "<head",
    "<body",
    "<script",
    "<iframe",
    "<h1",
    "<div",
    "<font",
    "<table",
    "<a",
    "<style",
    "<title",
    "<b",
    "<br",
    "<p",
    "<img",
    "<!--",
)
_ACTIVE_MARKERS = ("<script", "<html", "<svg", "<iframe", "javascript:", "<object", "<embed")


def _sniff_text(head: bytes) -> str | None:
    text = head.removeprefix(b"\xef\xbb\xbf")
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut by the end of the head is still text.
        if error.reason != "unexpected end of data":
            return None
        decoded = text[: error.start].decode("utf-8")
    if any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f" for ch in decoded):
        return None
    start = decoded.lstrip().lower()
    if start.startswith("<?xml") or start.startswith("<svg"):
        return "image/svg+xml" if "<svg" in start else "application/xml"
    if start.startswith(_MARKUP_STARTS) or any(marker in start for marker in _ACTIVE_MARKERS):
        return "text/html"
    return "text/plain"


def sniff(head: bytes) -> str:
    """The type of a file from its first bytes; what the uploader declared is never trusted."""
    h = head
    if not h:
        return "application/octet-stream"
    if h.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if h.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if h[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if h[:4] == b"RIFF":
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}.get(
            h[8:12], "application/octet-stream"
        )
    if h[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if h[4:8] == b"ftyp":
        brand = h[8:12]
        if brand in (b"heic", b"heix", b"mif1", b"msf1"):
            return "image/heic"
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        return "video/mp4"
    if h[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm" if b"webm" in h[:64] else "video/x-matroska"
    if h[:4] == b"OggS":
        return "video/ogg" if b"theora" in h[:128] else "audio/ogg"
    if h[:4] == b"fLaC":
        return "audio/flac"
    if h[:3] == b"ID3" or (len(h) > 1 and h[0] == 0xFF and h[1] & 0xE6 in (0xE2, 0xE4, 0xE6)):
        return "audio/mpeg"
    if h.startswith(b"%PDF-"):
        return "application/pdf"
    if h[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "application/zip"
    if h[:2] == b"\x1f\x8b":
        return "application/gzip"
    if h[:6] == b"7z\xbc\xaf\x27\x1c":
        return "application/x-7z-compressed"
    if h[:6] == b"Rar!\x1a\x07":
        return "application/vnd.rar"
    if h[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        return "application/x-ole-storage"
    return _sniff_text(h) or "application/octet-stream"


# Types a browser may show inline from a download URL; everything else is an attachment.
INLINE_TYPES = {
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "video/mp4",
    "video/webm",
    "video/ogg",
    "audio/mpeg",
    "audio/ogg",
    "audio/wav",
    "audio/mp4",
    "audio/flac",
    "application/pdf",
}
# Sent with their own type (still as attachments); HTML, SVG, XML and anything unknown go out
# as application/octet-stream.
_ATTACHMENT_TYPES = {
    "application/zip",
    "application/gzip",
    "application/x-7z-compressed",
    "application/vnd.rar",
    "image/tiff",
    "image/heic",
    "image/avif",
    "video/quicktime",
    "video/x-msvideo",
    "video/x-matroska",
}
THUMBNAIL_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}


def is_inline(content_type: str) -> bool:
    return content_type in INLINE_TYPES


def served_type(content_type: str) -> str:
    if content_type in INLINE_TYPES or content_type in _ATTACHMENT_TYPES:
        return content_type
    if content_type == "text/plain":
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def kind_of(content_type: str) -> str:
    """The family shown by icon and preview: image, pdf, video, audio, archive, text or file."""
    if content_type in THUMBNAIL_TYPES:
        return "image"
    if content_type == "application/pdf":
        return "pdf"
    if content_type in INLINE_TYPES:
        return content_type.split("/")[0]
    if content_type in ("application/zip", "application/gzip", "application/x-7z-compressed"):
        return "archive"
    if content_type == "application/vnd.rar":
        return "archive"
    if content_type == "text/plain":
        return "text"
    return "file"


# Storage -------------------------------------------------------------------------------------


def new_storage_name(folder: str) -> str:
    """A fresh storage name; the uploader's file name plays no part in it."""
    now = timezone.now()
    return f"{folder}/{now:%Y/%m}/{uuid.uuid4().hex}"


def copy_exact(source: IO[bytes], write: Callable[[bytes], object], length: int) -> int:
    """Copy up to `length` bytes from `source` in blocks; returns how many there were."""
    copied = 0
    while copied < length:
        block = source.read(min(BLOCK_SIZE, length - copied))
        if not block:
            break
        write(block)
        copied += len(block)
    return copied


def _cut_short(expected: int, got: int) -> ChunkCutShort:
    return ChunkCutShort(f"The chunk was cut short: {got:,} of {expected:,} bytes arrived.")


class ChunkStore(Protocol):
    """Where an upload's chunks wait. `key` (Upload.store_key) is the finished file's name."""

    def begin(self, key: str, size: int) -> str: ...
    def write(self, upload: Upload, index: int, source: IO[bytes], length: int) -> str: ...
    def assemble(self, upload: Upload, etags: dict[int, str]) -> str: ...
    def abort(self, upload: Upload) -> None: ...


class LocalChunks:
    """Local disk: every chunk lands at its offset in one partial file, renamed at finish."""

    def __init__(self, storage: FileSystemStorage) -> None:
        self.storage = storage

    def _partial(self, key: str) -> str:
        return self.storage.path(f"{key}.part")

    def begin(self, key: str, size: int) -> str:
        path = Path(self._partial(key))
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("xb") as partial:
            partial.truncate(size)  # sparse: takes no disk until written
        return ""

    def write(self, upload: Upload, index: int, source: IO[bytes], length: int) -> str:
        try:
            partial = PositionalWriter(self._partial(upload.store_key), index * upload.chunk_size)
        except FileNotFoundError:
            raise ValidationError("This upload has expired; attach the file again.") from None
        try:
            copied = copy_exact(source, partial.write, length)
        finally:
            partial.close()
        if copied != length:
            raise _cut_short(length, copied)
        return ""

    def assemble(self, upload: Upload, etags: dict[int, str]) -> str:
        target = self.storage.path(upload.store_key)
        os.replace(self._partial(upload.store_key), target)
        if self.storage.file_permissions_mode is not None:
            os.chmod(target, self.storage.file_permissions_mode)
        return upload.store_key

    def abort(self, upload: Upload) -> None:
        Path(self._partial(upload.store_key)).unlink(missing_ok=True)


class S3Chunks:
    """S3: every chunk is a part of one multipart upload, completed at finish."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.client = storage.connection.meta.client
        self.bucket = storage.bucket_name

    def _key(self, name: str) -> str:
        from storages.utils import clean_name

        return self.storage._normalize_name(clean_name(name))

    def begin(self, key: str, size: int) -> str:
        created = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=self._key(key), ContentType="application/octet-stream"
        )
        return created["UploadId"]

    def write(self, upload: Upload, index: int, source: IO[bytes], length: int) -> str:
        from botocore.exceptions import ClientError

        # botocore needs a seekable body; a temporary file keeps the part out of memory.
        with tempfile.TemporaryFile() as spool:
            copied = copy_exact(source, spool.write, length)
            if copied != length:
                raise _cut_short(length, copied)
            spool.seek(0)
            try:
                part = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=self._key(upload.store_key),
                    UploadId=upload.multipart_id,
                    PartNumber=index + 1,
                    Body=spool,
                    ContentLength=length,
                )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "NoSuchUpload":
                    raise ValidationError("This upload was cancelled or has expired.") from None
                raise
        return part["ETag"]

    def assemble(self, upload: Upload, etags: dict[int, str]) -> str:
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self._key(upload.store_key),
            UploadId=upload.multipart_id,
            MultipartUpload={
                "Parts": [{"PartNumber": i + 1, "ETag": etag} for i, etag in sorted(etags.items())]
            },
        )
        return upload.store_key

    def abort(self, upload: Upload) -> None:
        from botocore.exceptions import ClientError

        if not upload.multipart_id:
            return
        with contextlib.suppress(ClientError):  # completed or aborted already
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self._key(upload.store_key), UploadId=upload.multipart_id
            )


class _Concatenation(io.RawIOBase):
    """The chunk objects of an upload read one after another as one file, a block at a time."""

    def __init__(self, storage: Storage, names: list[str], size: int) -> None:
        self.storage = storage
        self.names = iter(names)
        self.current: IO[bytes] | None = None
        self.size = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while True:
            if self.current is None:
                name = next(self.names, None)
                if name is None:
                    return 0
                self.current = self.storage.open(name, "rb")
            data = self.current.read(len(buffer))
            if data:
                buffer[: len(data)] = data
                return len(data)
            self.current.close()
            self.current = None


class ChunkObjects:
    """Any other storage: every chunk is an object of its own, concatenated at finish."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def _chunk_name(self, upload: Upload, index: int) -> str:
        return f"{upload.store_key}.chunks/{index:06d}"

    def begin(self, key: str, size: int) -> str:
        return ""

    def write(self, upload: Upload, index: int, source: IO[bytes], length: int) -> str:
        name = self._chunk_name(upload, index)
        with tempfile.SpooledTemporaryFile(max_size=BLOCK_SIZE) as spool:
            copied = copy_exact(source, spool.write, length)
            if copied != length:
                raise _cut_short(length, copied)
            spool.seek(0)
            if self.storage.exists(name):
                self.storage.delete(name)
            self.storage.save(name, File(spool, name=name))
        return ""

    def assemble(self, upload: Upload, etags: dict[int, str]) -> str:
        names = [self._chunk_name(upload, index) for index in sorted(etags)]
        whole = io.BufferedReader(_Concatenation(self.storage, names, upload.size), BLOCK_SIZE)
        content = File(whole, name=upload.store_key)
        content.size = upload.size
        stored = self.storage.save(upload.store_key, content)
        self.abort(upload)
        return stored

    def abort(self, upload: Upload) -> None:
        for index in range(upload.chunk_count):
            self.storage.delete(self._chunk_name(upload, index))


def is_s3(storage: Storage) -> bool:
    # Only imported once S3 storage is in use, so the default setup never loads boto3.
    if "storages.backends.s3" not in sys.modules:
        return False
    from storages.backends.s3 import S3Storage

    return isinstance(storage, S3Storage)


def chunk_store(storage: Storage | None = None) -> ChunkStore:
    storage = storage if storage is not None else default_storage
    if isinstance(storage, FileSystemStorage):
        return LocalChunks(storage)
    if is_s3(storage):
        return S3Chunks(storage)
    return ChunkObjects(storage)


def chunk_size() -> int:
    return settings.UPLOAD_CHUNK_BYTES


def expiry_cutoff() -> datetime:
    return timezone.now() - timedelta(hours=settings.UPLOAD_EXPIRY_HOURS)


def assemble(upload: Upload, etags: dict[int, str]) -> str:
    """Make the finished file from the stored chunks; returns its storage name."""
    store = chunk_store()
    if upload.size == 0:
        # No chunks at all (and S3 cannot complete a multipart upload without a part).
        store.abort(upload)
        return default_storage.save(upload.store_key, ContentFile(b""))
    return store.assemble(upload, etags)


def delete_stored(names: Iterable[str]) -> None:
    for name in names:
        if name:
            default_storage.delete(name)


# Thumbnails ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thumbnail:
    data: bytes
    extension: str
    width: int
    height: int


def render_thumbnail(source: IO[bytes]) -> Thumbnail | None:
    """A small JPEG (or PNG, when the image has transparency) of an image, or None.

    Huge, broken or hostile images get None, never an exception: the file stays a file card.
    Decompression-bomb checks stay on (a warning is an error here) and the pixel count is
    checked from the header, before any pixel is decoded.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    limit = settings.THUMBNAIL_MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                width, height = image.size
                if width * height > limit * 64:
                    return None
                image.draft("RGB", (THUMBNAIL_SIZE * 2, THUMBNAIL_SIZE * 2))  # JPEG: decode small
                if image.size[0] * image.size[1] > limit:
                    return None
                image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
                small = ImageOps.exif_transpose(image)
                has_alpha = small.mode in ("RGBA", "LA", "PA") or "transparency" in small.info
                out = io.BytesIO()
                if has_alpha:
                    small.convert("RGBA").save(out, "PNG", optimize=True)
                    extension = "png"
                else:
                    small.convert("RGB").save(out, "JPEG", quality=82)
                    extension = "jpg"
                return Thumbnail(out.getvalue(), extension, width, height)
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        ValueError,
        SyntaxError,
        EOFError,
        MemoryError,
    ):
        return None


def save_thumbnail(thumbnail: Thumbnail) -> str:
    name = f"{new_storage_name('thumbnails')}.{thumbnail.extension}"
    return default_storage.save(name, ContentFile(thumbnail.data))


# Downloads -----------------------------------------------------------------------------------

# Shown inline or not, a file never runs script or loads anything with the site's privileges.
DOWNLOAD_CSP = (
    "sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'; "
    "style-src 'unsafe-inline'; frame-ancestors 'self'"
)


def protect(response: HttpResponse, *, framed: bool = False) -> HttpResponse:
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = DOWNLOAD_CSP
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Referrer-Policy"] = "no-referrer"
    # Members only, and a deleted file must not linger in shared caches.
    response["Cache-Control"] = "private, no-cache"
    # The preview shows PDFs in a frame of the room page; nothing else may be framed.
    response["X-Frame-Options"] = "SAMEORIGIN" if framed else "DENY"
    return response


def _drain_backlog() -> int:
    """Bytes written to sockets by this process and not yet sent (Daphne/Twisted only).

    Daphne (runserver's server) hands every body block to Twisted, which buffers without limit:
    a file read faster than the client takes it would pile up in memory. Elsewhere this reports
    0: Uvicorn's `send` itself waits while a socket's buffer is full.
    """
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or not hasattr(reactor, "getWriters"):
        return 0
    total = 0
    for writer in reactor.getWriters():
        total += len(getattr(writer, "dataBuffer", b"")) - getattr(writer, "offset", 0)
        total += getattr(writer, "_tempDataLen", 0)
    return total


async def stream_file(
    file: IO[bytes], length: int | None = None, block_size: int = BLOCK_SIZE
) -> AsyncIterator[bytes]:
    """Read a file (`length` bytes of it from where it stands, or the rest) in blocks off the
    event loop, waiting while the sockets' backlog is full."""
    read = sync_to_async(file.read, thread_sensitive=False)
    limit = settings.DOWNLOAD_BACKLOG_BYTES
    remaining = -1 if length is None else length
    while remaining:
        while _drain_backlog() > limit:
            await asyncio.sleep(0.002)
        block = await read(block_size if remaining < 0 else min(block_size, remaining))
        if not block:
            return
        if remaining > 0:
            remaining -= len(block)
        yield block


def read_blocks(file: IO[bytes], length: int) -> Iterator[bytes]:
    """`length` bytes of a file from where it stands, in blocks (for a WSGI server)."""
    while length > 0:
        block = file.read(min(BLOCK_SIZE, length))
        if not block:
            return
        length -= len(block)
        yield block


class RangeNotSatisfiable(Exception):
    pass


_BYTE_RANGE = re.compile(r"bytes\s*=\s*(\d{0,19})\s*-\s*(\d{0,19})", re.IGNORECASE)


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The one byte range (first, last; both inclusive) a Range header asks of `size` bytes.

    None means "send the whole file": no header, another unit, a malformed header, or several
    ranges (RFC 9110 lets a server ignore Range; players and resumed downloads ask for one).
    RangeNotSatisfiable: the range starts at or beyond the end (or asks for the last 0 bytes).
    """
    match = _BYTE_RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if first:
        start = int(first)
        if last and int(last) < start:
            return None  # malformed: ignored
        if start >= size:
            raise RangeNotSatisfiable
        return start, min(int(last), size - 1) if last else size - 1
    if not last:
        return None
    suffix = int(last)
    if suffix == 0 or size == 0:
        raise RangeNotSatisfiable
    return max(0, size - suffix), size - 1


def file_response(
    storage: Storage,
    name: str,
    *,
    filename: str,
    content_type: str,
    inline: bool,
    asgi: bool = True,
    range_header: str = "",
    if_range: str = "",
) -> HttpResponse:
    """A protected response with a stored file's bytes: streamed, or a redirect on S3.

    `asgi`: the response is served by an ASGI server (Uvicorn; Daphne under runserver), so it
    streams asynchronously.
    `range_header`: a single byte range gets 206 with that part alone (players seek, downloads
    resume), one outside the file 416; S3 answers ranges on the redirected request itself.
    """
    inline = inline and is_inline(content_type)
    sent_type = served_type(content_type)
    if is_s3(storage):
        disposition = content_disposition_header(not inline, filename)
        url = storage.url(
            name,
            parameters={
                "ResponseContentDisposition": disposition,
                "ResponseContentType": sent_type,
                "ResponseCacheControl": "private, no-cache",
            },
            expire=settings.FILE_URL_EXPIRES,
        )
        response: HttpResponse = HttpResponseRedirect(url)
        response["Content-Disposition"] = disposition
        return protect(response)
    try:
        file = storage.open(name, "rb")
    except FileNotFoundError:
        raise Http404("No such file.") from None
    size = file.size
    # A validator in If-Range is one this response never gave out: send the whole file.
    asked = "" if if_range else range_header
    try:
        span = byte_range(asked, size) if asked else None
    except RangeNotSatisfiable:
        file.close()
        response = HttpResponse(
            f"This file is {size:,} bytes; the range asked for starts beyond its end.",
            status=416,
            content_type="text/plain; charset=utf-8",
        )
        response["Content-Range"] = f"bytes */{size}"
        return protect(response)
    start, end = span if span else (0, size - 1)
    file.seek(start)
    response = FileResponse(
        file, as_attachment=not inline, filename=filename, content_type=sent_type
    )
    response["Accept-Ranges"] = "bytes"
    length = end - start + 1
    if span:
        response.status_code = 206
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(length)
    if asgi:
        # Under ASGI, Django would read a synchronous file whole into memory before sending.
        response.streaming_content = stream_file(file, length)
    elif span:
        response.streaming_content = read_blocks(file, length)
    return protect(response, framed=inline)


def download_response(
    request: HttpRequest, attachment: Attachment, *, inline: bool
) -> HttpResponse:
    return file_response(
        attachment.file.storage,
        attachment.file.name,
        filename=attachment.name,
        content_type=attachment.content_type,
        inline=inline,
        asgi=isinstance(request, ASGIRequest),
        range_header=request.headers.get("Range", ""),
        if_range=request.headers.get("If-Range", ""),
    )


def thumbnail_response(request: HttpRequest, attachment: Attachment) -> HttpResponse:
    if not attachment.thumbnail:
        raise Http404("No thumbnail.")
    extension = attachment.thumbnail.name.rsplit(".", 1)[-1]
    return file_response(
        attachment.thumbnail.storage,
        attachment.thumbnail.name,
        filename=f"thumbnail.{extension}",
        content_type="image/png" if extension == "png" else "image/jpeg",
        inline=True,
        asgi=isinstance(request, ASGIRequest),
    )


# Reads and access checks -----------------------------------------------------------------


def access_upload(user: User, upload_id: int, *, lock: bool = False) -> Upload:
    """The user's own upload, in a room they are still in; Http404 for anything else."""
    uploads = Upload.objects.select_related("room")
    if lock:
        uploads = uploads.select_for_update(of=("self",))
    upload = uploads.filter(
        pk=upload_id, uploader_id=user.pk, room__memberships__user_id=user.pk
    ).first()
    if upload is None:
        raise Http404("No such upload.")
    return upload


def access_attachment(user: User, attachment_id: int) -> tuple[Attachment, Membership]:
    """A file the user may see, with their membership; Http404 for anything else.

    That is a file shared in a message of a room the user is in (message not deleted), or the
    user's own file not sent yet. A deleted file is gone for everyone.
    """
    attachment = (
        Attachment.objects.select_related("message", "uploader", "room")
        .filter(pk=attachment_id, deleted__isnull=True)
        .filter(
            Q(message__isnull=False, message__deleted__isnull=True)
            | Q(message__isnull=True, uploader_id=user.pk)
        )
        .first()
    )
    if attachment is None:
        raise Http404("No such file.")
    try:
        membership = access_membership(user, attachment.room_id)
    except Http404:
        raise Http404("No such file.") from None
    return attachment, membership


def can_delete(user: User, attachment: Attachment, membership: Membership) -> bool:
    return attachment.uploader_id == user.pk or membership.role >= Role.ADMIN


def shared_files(room_id: int) -> QuerySet[Attachment]:
    return Attachment.objects.filter(
        room_id=room_id,
        message__isnull=False,
        message__deleted__isnull=True,
        deleted__isnull=True,
    )


def files_page(room_id: int, *, q: str = "", page: int = 1) -> tuple[list[Attachment], bool]:
    """One page of a room's files, newest first, filtered by name; and whether more follow."""
    files = shared_files(room_id).select_related("uploader", "message")
    if q:
        files = files.filter(name__icontains=q)
    start = (page - 1) * PANEL_PAGE_SIZE
    rows = list(files.order_by("-message_id", "-id")[start : start + PANEL_PAGE_SIZE + 1])
    return rows[:PANEL_PAGE_SIZE], len(rows) > PANEL_PAGE_SIZE


def links_page(room_id: int, *, page: int = 1) -> tuple[list[Link], bool]:
    """One page of the URLs shared in a room's messages, newest first; and whether more follow."""
    links = Link.objects.filter(room_id=room_id, message__deleted__isnull=True)
    start = (page - 1) * PANEL_PAGE_SIZE
    rows = list(
        links.select_related("sender", "message").order_by("-id")[
            start : start + PANEL_PAGE_SIZE + 1
        ]
    )
    return rows[:PANEL_PAGE_SIZE], len(rows) > PANEL_PAGE_SIZE
