"""Input components that hand values on unchecked, so the studio's own checks give every message.

Gradio checks slider ranges and dropdown choices itself, with messages that do not name the field
("Value 500 is greater than maximum value 100"), rounds integer sliders silently (2.5 becomes 2) and
fails with no message at all on a string. :class:`FieldSlider`, :class:`FieldNumber`,
:class:`FieldRadio` and :class:`FieldDropdown`, used for the schema's fields, pass the value through
untouched; the handlers give it to :func:`effects.validate` / :func:`upscaler.validate`, so the Gradio API refuses exactly what the JSON API refuses, with
the same field-named message. In the page nothing changes: its controls only produce allowed values.

Images: ``gr.Image(type="filepath")`` opens every upload with Pillow before the handler runs: a file that is
not an image, or a decompression bomb, then fails inside Gradio with a generic "error" and no message,
and any Pillow format (EPS included) is parsed. :class:`ImageUpload` looks and behaves like
``gr.Image`` in the page and the API, but passes the uploaded file's path straight on; the handler's
``decode_image`` then refuses bad files with a readable message naming the field.

URLs given to the Gradio API instead of an upload (``handle_file("https://...")`` sends the URL, and the
server downloads it) go through :func:`studio.fetch.fetch_url` like the JSON API's, with its address
checks, timeouts and byte cap, rather than through Gradio's own downloader, which has no size limit.
A ``data:`` URL is decoded by the same function.
"""
from __future__ import annotations

import functools

import anyio
import gradio as gr
from gradio import processing_utils
from gradio_client.utils import is_http_url_like

from common.errors import InputError
from .fetch import fetch_url


class FieldSlider(gr.Slider):
    """``gr.Slider`` whose value reaches the handler as sent; validation names the field."""

    is_template = True  # use gr.Slider's front-end component

    def preprocess(self, payload):
        return payload


class FieldNumber(gr.Number):
    """``gr.Number`` whose value reaches the handler as sent (Gradio's own range check names no
    field); validation names the field."""

    is_template = True

    def preprocess(self, payload):
        return payload


class FieldRadio(gr.Radio):
    """``gr.Radio`` whose value reaches the handler as sent; validation names the field."""

    is_template = True

    def preprocess(self, payload):
        return payload


class FieldDropdown(gr.Dropdown):
    """``gr.Dropdown`` whose value reaches the handler as sent; validation names the field."""

    is_template = True

    def preprocess(self, payload):
        return payload


class ImageUpload(gr.Image):
    """``gr.Image`` for inputs with ``type="filepath"`` and ``image_mode=None`` whose upload is not
    opened by Gradio. ``field`` names the request field in error messages."""

    is_template = True  # use gr.Image's front-end component

    def __init__(self, *args, field: str = "image_url", **kwargs):
        super().__init__(*args, type="filepath", image_mode=None, **kwargs)
        self._field = field

    def get_config(self, cls=None):
        # Block.get_config reads the props named in cls.__init__'s signature; ours is (*args, field,
        # **kwargs), which would send the page an Image without label, sources or elem_id (it then
        # fails to render). gr.Image's signature lists them all.
        return super().get_config(cls or gr.Image)

    def preprocess(self, payload):
        if payload is None:
            return None
        if payload.url and payload.url.startswith("data:"):
            return self._fetch_to_cache(payload.url)
        if payload.path is None:
            raise gr.Error(f"{self._field}: no image file was given")
        return str(payload.path)

    async def async_move_resource_to_block_cache(self, url_or_file_path):
        """Gradio's hook for bringing an input file into the cache; URLs are fetched by fetch_url."""
        if isinstance(url_or_file_path, str) and is_http_url_like(url_or_file_path):
            return await anyio.to_thread.run_sync(functools.partial(self._fetch_to_cache, url_or_file_path))
        return await super().async_move_resource_to_block_cache(url_or_file_path)

    def _fetch_to_cache(self, url: str) -> str:
        try:
            data = fetch_url(url, field=self._field)
        except InputError as err:
            raise gr.Error(str(err)) from None
        path = processing_utils.save_bytes_to_cache(data, "image", self.GRADIO_CACHE)
        self.temp_files.add(path)  # removed by the Blocks' delete_cache like other cached files
        return path
