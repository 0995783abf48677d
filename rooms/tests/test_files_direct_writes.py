"""Chunks written around the page cache land byte for byte where they belong, whatever their
alignment: aligned stretches with O_DIRECT, an unaligned start or tail through the page cache."""

from __future__ import annotations

import os

import pytest

from rooms.direct_writes import ALIGN, STAGING_BYTES, PositionalWriter


@pytest.mark.parametrize(
    ("offset", "blocks"),
    [
        (0, [3 * ALIGN + 100]),  # an aligned stretch, then a tail
        (ALIGN, [STAGING_BYTES, 2 * STAGING_BYTES + 4097]),  # more than one staging buffer
        (100, [5000, ALIGN]),  # an unaligned start: every byte through the page cache
        (0, [10, ALIGN, ALIGN]),  # a short block leaves the rest unaligned
        (2 * ALIGN, [ALIGN, 0, ALIGN]),
    ],
)
def test_blocks_land_at_their_offset_and_nothing_else_changes(tmp_path, offset, blocks):
    total = sum(blocks)
    path = tmp_path / "upload.part"
    path.write_bytes(b"\xee" * (offset + total + 3 * ALIGN))
    data = os.urandom(total)

    writer = PositionalWriter(str(path), offset)
    at = 0
    for size in blocks:
        writer.write(data[at : at + size])
        at += size
    writer.close()

    stored = path.read_bytes()
    assert stored[:offset] == b"\xee" * offset
    assert stored[offset : offset + total] == data
    assert stored[offset + total :] == b"\xee" * (3 * ALIGN)
    assert writer.offset == offset + total


def test_a_missing_file_is_not_created(tmp_path):
    with pytest.raises(FileNotFoundError):
        PositionalWriter(str(tmp_path / "gone.part"), 0)
    assert not (tmp_path / "gone.part").exists()
