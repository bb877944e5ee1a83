"""Encoding results the way fal answers them: a lossless PNG plus an ``Image`` record.

fal's ``Image`` type is ``{url, content_type, file_name, file_size, width, height}``; both the Gradio
endpoints and the JSON endpoints build it here, from the PNG bytes actually served.
"""
from __future__ import annotations

import base64
import uuid
from pathlib import Path

from gradio.utils import get_upload_folder
from PIL import Image

from imaging import CONTENT_TYPE
from imaging.encode import write_png



def new_file_name() -> str:
    """A random file name like fal's (``z9RV14K95DvU.png``)."""
    return f"{uuid.uuid4().hex[:12]}.png"


def image_record(png: bytes | int, size: tuple[int, int], *, url: str, file_name: str) -> dict:
    """fal's ``Image`` record for PNG bytes (or their length) of an image of ``size`` (width, height)."""
    file_size = png if isinstance(png, int) else len(png)
    return {"url": url, "content_type": CONTENT_TYPE, "file_name": file_name,
            "file_size": file_size, "width": size[0], "height": size[1]}


def data_uri(png: bytes) -> str:
    """The PNG as a ``data:`` URI, how the JSON endpoints hand images back."""
    return f"data:{CONTENT_TYPE};base64,{base64.b64encode(png).decode('ascii')}"


def cache_folder() -> Path:
    """Where the studio writes files it hands to Gradio: inside Gradio's own cache folder."""
    return Path(get_upload_folder()) / "studio"


def save_png(image: Image.Image) -> tuple[Path, dict]:
    """Write ``image`` as a PNG (with the ICC profile and EXIF in its ``info``, see
    :func:`imaging.encode_png`) into Gradio's cache folder and return the path and its fal record.

    Writing straight into the cache means Gradio serves the file as is (no second copy) and the
    Blocks' ``delete_cache`` removes it later. The record's ``url`` is the server-relative address
    Gradio serves the file at.
    """
    name = new_file_name()
    path = cache_folder() / uuid.uuid4().hex / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:  # encoded straight into the file, never held whole in memory
        write_png(image, file)
    return path, image_record(path.stat().st_size, image.size, url=f"/gradio_api/file={path}",
                              file_name=name)
