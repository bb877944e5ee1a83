"""Colour management where two images meet: the second image of dissolve is converted into the
main image's colour space before their pixels are mixed (docs/decisions.md, "Colour and metadata")."""
from __future__ import annotations

import io

from PIL import Image, ImageCms

from .metadata import rgb_profile, upright

#: What an untagged image is taken to be, as browsers and most viewers do.
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def in_colour_space_of(image: Image.Image, like: Image.Image) -> Image.Image:
    """``image``, upright and RGB, its colours converted (LittleCMS, perceptual intent) from its own
    RGB profile into ``like``'s, an untagged side counting as sRGB; ``image`` itself when both have
    the same profile. A profile LittleCMS cannot read leaves the values as they are."""
    source, target = rgb_profile(image), rgb_profile(like)
    if source == target:
        return image
    rgb = upright(image).convert("RGB")
    try:
        return ImageCms.profileToProfile(rgb, _profile(source), _profile(target), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError):
        return rgb


def _profile(icc: bytes | None) -> ImageCms.ImageCmsProfile:
    return SRGB if icc is None else ImageCms.ImageCmsProfile(io.BytesIO(icc))
