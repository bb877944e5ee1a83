"""The one imaging layer: hardened decoding of untrusted files, PIL ↔ float32 conversions, thumbnails
and encoding. Used by ``effects``, ``upscaler``, ``studio`` and the CLI alike; knows nothing of Gradio.
"""
from common.errors import InputError

from .colour import in_colour_space_of
from .convert import quantize_half_up, thumbnail, to_float_rgb, to_pil
from .decode import ALLOWED, decode_image, sniff_format
from .encode import CONTENT_TYPE, encode_png, write_png
from .metadata import metadata, upright

__all__ = ["ALLOWED", "CONTENT_TYPE", "InputError", "decode_image", "encode_png", "in_colour_space_of",
           "metadata", "quantize_half_up", "sniff_format", "thumbnail", "to_float_rgb", "to_pil",
           "upright", "write_png"]
