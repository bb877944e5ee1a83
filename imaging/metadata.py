"""What a result carries over from its source: the ICC profile and the EXIF block (docs/decisions.md,
"Colour and metadata").

Pixels are processed in the source's own colour space, so its RGB profile is copied to the result
as it is; EXIF is copied with the orientation applied to the pixels and its tag reset to 1. A damaged
EXIF block (one Pillow reads but cannot write back) is left out rather than failing the file.
"""
from __future__ import annotations

from PIL import Image

ORIENTATION = 0x0112
_EXIF_IFD, _GPS_IFD, _INTEROP_IFD = 0x8769, 0x8825, 0xA005
_SUB_IFDS = (_EXIF_IFD, _GPS_IFD)
#: Base-IFD tags not copied: the sub-IFD pointers (rebuilt), a TIFF's layout tags (size, strips,
#: tiles, samples, compression...), and blocks carried otherwise or not at all (ICC, XMP, IPTC,
#: Photoshop).
_NOT_CARRIED = {*_SUB_IFDS, 254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281,
                284, 290, 291, 292, 293, 317, 318, 319, 320, 322, 323, 324, 325, 338, 339, 340, 341,
                347, 530, 531, 532, 700, 33723, 34377, 34675, 37724}

#: EXIF orientation → the transposition that makes the pixels upright (EXIF 2.32, tag 0x0112).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def orientation(image: Image.Image) -> int:
    """The EXIF orientation (1–8) of ``image``; 1 when absent, unreadable or out of range."""
    try:
        value = image.getexif().get(ORIENTATION, 1)
    except Exception:  # a block Pillow cannot even parse
        return 1
    return value if value in _UPRIGHT else 1


def upright(image: Image.Image) -> Image.Image:
    """A new image with the EXIF orientation applied to the pixels (a copy when already upright).

    Unlike ``ImageOps.exif_transpose`` it never rewrites the EXIF block, so a damaged block cannot
    make it fail; :func:`metadata` gives the block to write with the result.
    """
    method = _UPRIGHT.get(orientation(image))
    return image.copy() if method is None else image.transpose(method)


def exif_bytes(image: Image.Image) -> bytes | None:
    """``image``'s EXIF (camera, lens, date, copyright, GPS…) with the orientation tag reset to 1, as
    bytes for an encoder; None when it has none or the block is damaged (:func:`exif_damaged`)."""
    try:
        exif = _carried_exif(image)
        return exif.tobytes() if exif else None
    except Exception:  # damaged tags Pillow read but cannot write back (wrong types, bad offsets)
        return None


def exif_damaged(image: Image.Image) -> bool:
    """Whether ``image`` has EXIF worth carrying that cannot be written back (so it is left out)."""
    try:
        exif = _carried_exif(image)
        if exif:
            exif.tobytes()
        return False
    except Exception:
        return True


def _carried_exif(image: Image.Image) -> Image.Exif:
    """A new block, the source's left as it is: the base tags except those describing a TIFF file's
    own layout (a TIFF's tags are its EXIF in Pillow), plus the Exif and GPS sub-IFDs; orientation 1.
    Raises whatever Pillow raises on a block it cannot parse."""
    source = image.getexif()
    exif = Image.Exif()
    exif.update({tag: value for tag, value in source.items() if tag not in _NOT_CARRIED})
    if ORIENTATION in exif:
        exif[ORIENTATION] = 1
    for pointer in _SUB_IFDS:
        tags = {tag: value for tag, value in source.get_ifd(pointer).items() if tag != _INTEROP_IFD}
        if tags:
            exif.get_ifd(pointer).update(tags)
    return exif


def rgb_profile(image: Image.Image) -> bytes | None:
    """``image``'s ICC profile when it describes an RGB space (the space of every result), else None:
    a grey or CMYK profile does not fit an RGB file."""
    icc = image.info.get("icc_profile")
    return icc if isinstance(icc, bytes) and icc[16:20] == b"RGB " else None


def metadata(image: Image.Image) -> dict[str, bytes]:
    """The ``info`` entries a result of ``image`` carries: ``icc_profile`` and ``exif`` where present
    (see :func:`rgb_profile`, :func:`exif_bytes`). ``encode_png`` writes both."""
    found = {"icc_profile": rgb_profile(image), "exif": exif_bytes(image)}
    return {key: value for key, value in found.items() if value is not None}
