"""Whether a PNG holds its whole image: Pillow's decoder stops where the image data stops, and
a file cut short or holding fewer rows than its header declares still loads (the rest blank).

A PNG (ISO/IEC 15948, RFC 2083) is its signature, then chunks of length, type, data and a
CRC-32 of type and data, ending with IEND. The IDAT chunks together are one zlib stream of the
filtered rows: each row is a filter byte and its pixels' bytes, for every pass of Adam7 when
the image is interlaced. So the image is whole when every chunk's CRC holds, IEND ends the
file, and the stream ends (its checksum read) after exactly the rows the header declares."""

import struct
import zlib
from collections.abc import Iterator

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Samples per pixel by colour type: grey, RGB, palette, grey + alpha, RGBA.
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7: each pass's first column and row, and the steps between them.
ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)
_STEP = 1 << 20  # inflated a megabyte at a time, counted and dropped


def _chunks(content: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Each chunk's type and data, refusing (ValueError) one cut short or failing its CRC."""
    at = len(SIGNATURE)
    while at < len(content):
        if at + 12 > len(content):
            raise ValueError("a chunk is cut short")
        (length,) = struct.unpack_from(">I", content, at)
        end = at + 8 + length
        if end + 4 > len(content):
            raise ValueError("a chunk is cut short")
        kind_and_data = content[at + 4 : end]
        if struct.unpack_from(">I", content, end)[0] != zlib.crc32(kind_and_data):
            raise ValueError("a chunk fails its CRC")
        yield kind_and_data[:4], kind_and_data[4:]
        at = end + 4


def _filtered_size(width: int, height: int, bits_per_pixel: int, interlaced: bool) -> int:
    """The bytes of the filtered rows: a filter byte and the row's pixels, per pass."""
    passes = ADAM7 if interlaced else ((0, 0, 1, 1),)
    total = 0
    for column, row, column_step, row_step in passes:
        columns = (width - column + column_step - 1) // column_step
        rows = (height - row + row_step - 1) // row_step
        if columns > 0 and rows > 0:
            total += rows * (1 + (columns * bits_per_pixel + 7) // 8)
    return total


def is_whole(content: bytes) -> bool:
    """Whether this PNG's chunks are all there, intact, and its image data is every row."""
    if not content.startswith(SIGNATURE):
        return False
    try:
        chunks = list(_chunks(content))
    except ValueError:
        return False
    if not chunks or chunks[0][0] != b"IHDR" or chunks[-1][0] != b"IEND":
        return False
    header = chunks[0][1]
    if len(header) != 13:
        return False
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if colour not in CHANNELS:
        return False
    expected = _filtered_size(width, height, CHANNELS[colour] * depth, interlace == 1)
    inflater, inflated = zlib.decompressobj(), 0
    try:
        for kind, data in chunks:
            if kind != b"IDAT":
                continue
            pending = data
            while pending and not inflater.eof:
                inflated += len(inflater.decompress(pending, _STEP))
                pending = inflater.unconsumed_tail
                if inflated > expected:
                    return False
            if pending or inflater.unused_data:
                return False  # data after the stream's end
        while not inflater.eof:
            out = inflater.decompress(inflater.unconsumed_tail, _STEP)
            if not out:
                break
            inflated += len(out)
            if inflated > expected:
                return False
    except zlib.error:
        return False
    return inflater.eof and inflated == expected
