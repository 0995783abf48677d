"""Upload chunks written to local disk around the page cache (O_DIRECT), where the system allows.

A chunk copied through the page cache costs the kernel a fresh page and a copy for every 4 KiB,
for a file nobody reads again soon. On the development machine 1 GiB in 1 MiB blocks took
1–3.6 s of system time that way, and 0.15 s with O_DIRECT (docs/BENCHMARKS.md). O_DIRECT needs
the file offset, length and memory of each write aligned to the disk's blocks: the aligned
stretches go direct from a page-aligned staging buffer, an unaligned start or tail (the last
chunk of a file, odd chunk sizes) through the page cache, and a file system without O_DIRECT
(tmpfs, other systems) gets every byte through the page cache.
"""

from __future__ import annotations

import mmap
import os

# Logical block sizes are 512 B or 4 KiB; aligning to 4 KiB suits both.
ALIGN = 4096
STAGING_BYTES = 1024 * 1024


def _pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    while view:
        written = os.pwrite(fd, view, offset)
        offset += written
        view = view[written:]


def _open_direct(path: str) -> int:
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return -1
    try:
        return os.open(path, os.O_WRONLY | flag)
    except OSError:  # the file system does not do direct I/O
        return -1


class PositionalWriter:
    """Writes blocks one after another into an existing file, from `offset` on."""

    def __init__(self, path: str, offset: int) -> None:
        self.fd = os.open(path, os.O_WRONLY)
        self.direct_fd = _open_direct(path)
        self.offset = offset
        self.staging: mmap.mmap | None = None

    def write(self, block: bytes) -> None:
        view = memoryview(block)
        if self.direct_fd >= 0 and self.offset % ALIGN == 0:
            view = view[self._write_direct(view[: len(view) - len(view) % ALIGN]) :]
        _pwrite_all(self.fd, view, self.offset)
        self.offset += len(view)

    def _write_direct(self, view: memoryview) -> int:
        """Write what O_DIRECT takes of `view` (aligned); returns how many bytes that was."""
        if self.staging is None:
            self.staging = mmap.mmap(-1, STAGING_BYTES)  # page-aligned memory
        done = 0
        with memoryview(self.staging) as staging:
            while done < len(view):
                part = min(STAGING_BYTES, len(view) - done)
                staging[:part] = view[done : done + part]
                try:
                    written = os.pwrite(self.direct_fd, staging[:part], self.offset)
                except OSError:  # refused for this file: the rest goes through the page cache
                    os.close(self.direct_fd)
                    self.direct_fd = -1
                    break
                self.offset += written
                done += written
                if written != part:
                    break  # a short write leaves the offset unaligned
        return done

    def close(self) -> None:
        os.close(self.fd)
        if self.direct_fd >= 0:
            os.close(self.direct_fd)
        if self.staging is not None:
            self.staging.close()
