"""Decoding untrusted image bytes or uploads into a PIL image, refusing anything hostile with a clear error.

Order of checks in :func:`decode_image`, cheapest first: empty input (400), magic bytes of an allowed
format (415 otherwise), Pillow header parse (400 if the header is corrupt), pixel count from the header
against the cap (413, before any pixel data is decompressed, so a "decompression bomb" costs nothing),
full decode (400 if truncated or corrupt), first frame of animations, EXIF orientation.
Messages name the field and never contain Pillow internals or local paths. The caps are for untrusted
input: the server's own intermediates (``trusted=True``) may be larger.
"""
from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pillow_heif
from PIL import Image

from common.env import env_number
from common.errors import InputError

from .metadata import exif_bytes, exif_damaged, orientation, upright

pillow_heif.register_heif_opener()  # HEIC/HEIF (phone photos); Pillow itself decodes AVIF

DEFAULT_MAX_PIXELS = 50_000_000

#: Formats accepted, by Pillow name, with the magic bytes that identify them. Everything else is
#: refused before Pillow sees it: no EPS (Ghostscript), no exotic plugin parsers on untrusted input.
_MAGIC: dict[str, tuple[bytes, ...]] = {
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "JPEG": (b"\xff\xd8\xff",),
    "GIF": (b"GIF87a", b"GIF89a"),
    "WEBP": (b"RIFF",),  # plus b"WEBP" at offset 8, see sniff_format
    "BMP": (b"BM",),
    "TIFF": (b"II*\x00", b"MM\x00*"),
}
#: ISO base media files (HEIF, AVIF) start with an ``ftyp`` box at offset 4: its major brand (offset
#: 8) says what the file is. ``mif1``/``msf1`` are the generic image brands both formats use.
_FTYP_BRANDS = {b"heic": "HEIF", b"heix": "HEIF", b"heim": "HEIF", b"heis": "HEIF", b"hevc": "HEIF",
                b"hevx": "HEIF", b"avif": "AVIF", b"avis": "AVIF", b"mif1": "HEIF", b"msf1": "HEIF"}
#: Pillow's JPEG opener also opens multi-picture JPEGs (phone cameras, as MPO). A ``mif1`` file may be
#: AVIF inside, so both ISO formats are offered to Pillow.
_PILLOW_FORMATS = (*_MAGIC, "HEIF", "AVIF")
ALLOWED = "PNG, JPEG, GIF, WebP, BMP, TIFF, HEIC/HEIF or AVIF"
#: Image.MAX_IMAGE_PIXELS is process-wide: trusted opens lift it under this lock, which every open
#: here takes, so an untrusted open never sees it lifted.
_OPEN_LOCK = threading.Lock()

#: Modes effects.process and the upscaler take as they are; the rare rest is normalised.
_KEPT_MODES = {"RGB", "RGBA", "L", "LA", "P", "I;16", "I", "CMYK", "F"}


def max_pixels_default() -> int:
    """The pixel cap for effects: env ``STUDIO_MAX_PIXELS`` or 50 MP."""
    return env_number("STUDIO_MAX_PIXELS", DEFAULT_MAX_PIXELS)


def sniff_format(head: bytes) -> str | None:
    """The allowed format whose magic bytes start ``head`` (at least 12 bytes for WebP, HEIF and
    AVIF), or None."""
    if head[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(head[8:12])
    for name, magics in _MAGIC.items():
        if head.startswith(magics):
            if name == "WEBP" and head[8:12] != b"WEBP":
                continue
            return name
    return None


def decode_image(data: bytes | str | os.PathLike, *, field: str, max_pixels: int | None = None,
                 trusted: bool = False) -> tuple[Image.Image, list[str]]:
    """Decode image bytes (or a file path, e.g. a Gradio upload) into a fully loaded PIL image.

    Returns the image and a list of user-facing warnings (e.g. an animated image of which only the
    first frame is used, or damaged EXIF left out). The EXIF orientation is applied to the pixels and
    ``info["exif"]`` is the source's block with the tag reset to 1 (absent when damaged);
    ``info["icc_profile"]`` is the source's profile. ``max_pixels`` defaults to
    :func:`max_pixels_default`; Pillow's own decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``)
    also applies when lower. ``trusted=True`` (files the server wrote itself, e.g. a 4x upscale of a
    large photo) lifts both caps. The mode is one :func:`effects.process` takes as is: RGB, RGBA, L,
    LA, P, I;16, I, CMYK or F (1-bit becomes L, byte-swapped 16-bit becomes I, other rare modes
    RGB/RGBA).

    Raises :class:`InputError`: 400 empty, unreadable, corrupt or truncated; 413 too many pixels;
    415 not an image in an allowed format.
    """
    if isinstance(data, (str, os.PathLike)):
        try:
            data = Path(data).read_bytes()
        except OSError:
            raise InputError(field, "the uploaded file could not be read") from None
    if not data:
        raise InputError(field, "the image is empty (0 bytes)", 400)
    fmt = sniff_format(data[:16])
    if fmt is None:
        raise InputError(field, f"the data is not an image in a supported format; use {ALLOWED}", 415)

    try:
        image = _open(data, trusted)
    except Image.DecompressionBombError:
        # Pillow refuses far-too-large headers itself (above 2 × MAX_IMAGE_PIXELS) before we see them.
        raise _too_large(field, _limit(max_pixels)) from None
    except Exception:
        # Unidentified despite the right magic bytes, or a plugin raising SyntaxError, struct.error,
        # ValueError... on a hostile header.
        raise InputError(field, f"the {fmt} header is corrupt or truncated", 400) from None

    # Pillow itself refuses zero width or height as a corrupt header, above.
    width, height = image.size
    limit = _limit(max_pixels)
    if not trusted and width * height > limit:
        raise _too_large(field, limit, (width, height))

    warnings = []
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        warnings.append(f"{field}: animated or multi-frame image ({frames} frames); only the first "
                        "frame is used")
    try:
        image.load()
    except MemoryError:
        raise InputError(field, "the image is too large to decode on this server", 413) from None
    except Exception:
        # Truncated or corrupt pixel data surfaces as OSError, SyntaxError, ValueError, EOFError...
        raise InputError(field, f"the {fmt} data is corrupt or truncated", 400) from None

    exif = exif_bytes(image)
    if exif is None and exif_damaged(image):
        warnings.append(f"{field}: the EXIF metadata is damaged; it is left out of the result")
    if orientation(image) != 1:
        image = upright(image)
    image.info.pop("exif", None)
    if exif is not None:
        image.info["exif"] = exif
    return _normalise_mode(image), warnings


def _open(data: bytes, trusted: bool) -> Image.Image:
    with _OPEN_LOCK:
        if not trusted:
            return Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS)
        cap, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS)
        finally:
            Image.MAX_IMAGE_PIXELS = cap


def _limit(max_pixels: int | None) -> int:
    limit = max_pixels if max_pixels is not None else max_pixels_default()
    if Image.MAX_IMAGE_PIXELS:
        limit = min(limit, Image.MAX_IMAGE_PIXELS)
    return limit


def _too_large(field: str, limit: int, size: tuple[int, int] | None = None) -> InputError:
    what = f"{size[0]}×{size[1]} ({_megapixels(size[0] * size[1])})" if size else "larger than allowed"
    return InputError(field, f"the image is {what}; the limit is {_megapixels(limit)} "
                             "(width × height)", 413)


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} MP" if pixels >= 100_000 else f"{pixels} pixels"


def _normalise_mode(image: Image.Image) -> Image.Image:
    if image.mode in _KEPT_MODES:
        return image
    if image.mode == "1":
        return image.convert("L")
    if image.mode.startswith("I;16"):
        return image.convert("I")
    return image.convert("RGBA" if "A" in image.getbands() else "RGB")
