"""Test helpers for the batch command line: a folder tree of images, non-images and broken files,
and an offline Hugging Face cache holding the tiny AuraSR checkpoint as fal/AuraSR and fal/AuraSR-v2."""
import io
import os
from pathlib import Path

import numpy as np
from hf_cache import write_hf_cache
from PIL import Image
from tiny_aurasr import random_weights, tiny_config, write_checkpoint

from upscaler.config import AuraConfig
from upscaler.weights import CONFIG_FILE, REPOS, WEIGHTS_FILE

# Relative input path -> relative output path, for the images of tree() (with --recursive).
TREE_OUTPUTS = {
    "a.png": "a.png",
    "photo": "photo.png",  # JPEG bytes without an extension: recognised by its magic number
    "badexif.jpg": "badexif.png",
    "sub/x.jpg": "sub/x.jpg.png",  # x.jpg and x.png in one folder: both keep their extension
    "sub/x.png": "sub/x.png.png",
    "sub/deep/y.webp": "sub/deep/y.png",
}
# Relative input path -> the reason printed for it.
TREE_FAILURES = {
    "broken.jpg": "the JPEG header is corrupt or truncated",
    "truncated.png": "the PNG data is corrupt or truncated",
    "dead.jpg": "No such file or directory",
}
TOP_LEVEL = {k: v for k, v in TREE_OUTPUTS.items() if "/" not in k}


def picture(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def damaged_exif_jpeg(image: Image.Image) -> bytes:
    """A JPEG whose EXIF block claims five IFD entries and holds one, with an out-of-range orientation."""
    jpeg = encoded(image, "JPEG", quality=95)
    exif = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x12\x00\x03\xff\xff\xff\xff" + b"\x00" * 7
    return jpeg[:2] + b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif + jpeg[2:]


def tree(root: Path) -> Path:
    """Write the input tree of TREE_OUTPUTS and TREE_FAILURES, plus non-images, under ``root``."""
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "a.png").write_bytes(encoded(picture(12, 10, 1), "PNG"))
    (root / "photo").write_bytes(encoded(picture(9, 7, 2), "JPEG", quality=95))
    (root / "badexif.jpg").write_bytes(damaged_exif_jpeg(picture(8, 6, 3)))
    (root / "sub" / "x.jpg").write_bytes(encoded(picture(6, 6, 4), "JPEG", quality=95))
    (root / "sub" / "x.png").write_bytes(encoded(picture(7, 5, 5), "PNG"))
    (root / "sub" / "deep" / "y.webp").write_bytes(encoded(picture(10, 4, 6), "WEBP", lossless=True))
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "truncated.png").write_bytes(encoded(picture(40, 40, 7), "PNG")[:300])
    os.symlink(root / "missing.jpg", root / "dead.jpg")
    (root / "notes.txt").write_text("not an image")
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "sub" / "README").write_text("skipped quietly too")
    return root


def tiny_hub(cache: Path) -> Path:
    """Write both checkpoints (tiny config, weight seeds 0 and 1) into an HF cache at ``cache``."""
    config = tiny_config()
    for seed, checkpoint in enumerate(sorted(REPOS)):
        directory = cache.parent / f"tiny-{checkpoint}"
        write_checkpoint(directory, config, random_weights(AuraConfig.from_dict(config), seed))
        write_hf_cache(cache, REPOS[checkpoint],
                       {name: (directory / name).read_bytes() for name in (CONFIG_FILE, WEIGHTS_FILE)})
    return cache
