"""Encoding results to files: every path that writes an image goes through here.

Results are large (24-50 MP photos, 4x upscales), and Pillow's PNG writer spends most of its time on
one core: it tries all five PNG filters on every row, then deflates the whole image in one stream.
8-bit RGB and RGBA images therefore take a faster path that gives the same pixels: every row uses
the "Up" filter (a byte-wise difference with the row above, one vectorised subtraction), and bands
of rows are deflated on every core (zlib releases the GIL) into one zlib stream, each band ending on
a byte boundary with a sync flush (as pigz does). Every other chunk (the ICC profile, transparency,
any other metadata Pillow writes for ``image.info`` and the options) comes from Pillow itself: it
writes a 1x1 image carrying the same info and options, and its chunks other than IHDR, IDAT and IEND
are copied around the pixel data in the order Pillow put them. Other modes are saved by Pillow.
"""
from __future__ import annotations

import io
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

import numpy as np
from PIL import Image

CONTENT_TYPE = "image/png"

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {"RGB": 3, "RGBA": 4}
_COLOUR_TYPE = {"RGB": 2, "RGBA": 6}
_UP = 2  # PNG filter type
#: Uncompressed bytes per deflated band: large enough that splitting costs no ratio to speak of.
_BAND_BYTES = 4 << 20
_ADLER_BASE = 65521


def encode_png(image: Image.Image, *, compress_level: int = 1) -> bytes:
    """Lossless PNG bytes of ``image`` (alpha kept), with the metadata in ``image.info``: its ICC
    profile (iCCP chunk) and EXIF block (eXIf chunk). Level 1 compression: CPU time matters more than
    a few percent of file size for multi-megapixel results."""
    buffer = io.BytesIO()
    write_png(image, buffer, compress_level=compress_level)
    return buffer.getvalue()


def write_png(image: Image.Image, file: BinaryIO, *, compress_level: int = 1) -> None:
    """Write ``image`` as a PNG to the binary ``file`` (see :func:`encode_png` and the module
    docstring), chunk by chunk: the encoded image is never held whole in memory."""
    if image.mode not in _CHANNELS:
        _pillow_png(image, file, compress_level)
        return
    before, after = _metadata_chunks(image, compress_level)
    width, height = image.size
    file.write(_SIGNATURE)
    file.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPE[image.mode],
                                           0, 0, 0)))
    for chunk in before:
        file.write(chunk)
    for idat in _idat_chunks(image, compress_level):
        file.write(idat)
    for chunk in after:
        file.write(chunk)
    file.write(_chunk(b"IEND", b""))


def _pillow_png(image: Image.Image, file: BinaryIO, compress_level: int) -> None:
    """Pillow's own PNG writer, with the options every PNG here is written with."""
    # Pillow writes info["icc_profile"] by itself, EXIF only when asked.
    image.save(file, format="PNG", compress_level=compress_level, exif=image.info.get("exif"))


def _metadata_chunks(image: Image.Image, compress_level: int) -> tuple[list[bytes], list[bytes]]:
    """The chunks Pillow writes for ``image``'s info and options, before and after its pixels."""
    carrier = Image.new(image.mode, (1, 1))
    carrier.info = dict(image.info)
    buffer = io.BytesIO()
    _pillow_png(carrier, buffer, compress_level)
    data = buffer.getvalue()
    before: list[bytes] = []
    after: list[bytes] = []
    position, seen_pixels = len(_SIGNATURE), False
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        end = position + 12 + length
        if kind == b"IDAT":
            seen_pixels = True
        elif kind not in (b"IHDR", b"IEND"):
            (after if seen_pixels else before).append(data[position:end])
        position = end
    return before, after


def _idat_chunks(image: Image.Image, compress_level: int):
    """IDAT chunks of one zlib stream of Up-filtered rows, bands deflated in parallel, in order."""
    width, height = image.size
    row_bytes = width * _CHANNELS[image.mode]
    rows = max(1, _BAND_BYTES // (row_bytes + 1))
    bands = [(top, min(height, top + rows)) for top in range(0, height, rows)]

    def deflate(band: tuple[int, int]) -> tuple[bytes, int, int]:
        top, bottom = band
        # The band and the row above it (zeros above the first row, as PNG defines).
        pixels = np.asarray(image.crop((0, max(0, top - 1), width, bottom))).reshape(-1, row_bytes)
        above = pixels[:-1] if top > 0 else np.vstack([np.zeros((1, row_bytes), np.uint8), pixels[:-1]])
        filtered = np.empty((bottom - top, row_bytes + 1), np.uint8)
        filtered[:, 0] = _UP
        np.subtract(pixels[-(bottom - top):], above, out=filtered[:, 1:])  # modulo 256
        compressor = zlib.compressobj(compress_level, zlib.DEFLATED, -15)
        flush = zlib.Z_FINISH if bottom == height else zlib.Z_SYNC_FLUSH
        data = compressor.compress(filtered) + compressor.flush(flush)
        return data, zlib.adler32(filtered), filtered.size

    # zlib header: deflate, 32 KiB window, no dictionary (check bits make it a multiple of 31).
    checksum, header = 1, b"\x78\x01"
    with ThreadPoolExecutor(min(len(bands), os.cpu_count() or 1)) as pool:
        for data, adler, size in pool.map(deflate, bands):
            checksum = _adler32_combine(checksum, adler, size)
            yield _chunk(b"IDAT", header + data)
            header = b""
    yield _chunk(b"IDAT", struct.pack(">I", checksum))


def _adler32_combine(first: int, second: int, second_length: int) -> int:
    """Adler-32 of two byte strings joined, from their checksums (zlib's ``adler32_combine``):
    ``A = A1 + A2 - 1`` and ``B = B1 + B2 + n2 (A1 - 1)``, modulo 65521."""
    a1, b1, a2, b2 = first & 0xFFFF, first >> 16, second & 0xFFFF, second >> 16
    a = (a1 + a2 - 1) % _ADLER_BASE
    b = (b1 + b2 + second_length * (a1 - 1)) % _ADLER_BASE
    return b << 16 | a


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
