"""Encoding results to files: every path that writes an image goes through here."""
from __future__ import annotations

import io

from PIL import Image

CONTENT_TYPE = "image/png"


def encode_png(image: Image.Image, *, compress_level: int = 1) -> bytes:
    """Lossless PNG bytes of ``image`` (alpha kept), with the metadata in ``image.info``: its ICC
    profile (iCCP chunk) and EXIF block (eXIf chunk). Level 1 compression: CPU time matters more than
    a few percent of file size for multi-megapixel results."""
    buffer = io.BytesIO()
    # Pillow writes info["icc_profile"] by itself, EXIF only when asked.
    image.save(buffer, format="PNG", compress_level=compress_level, exif=image.info.get("exif"))
    return buffer.getvalue()
