"""One file of a batch: decode, effects, optional AuraSR 4x, atomic PNG write.

The same :class:`Worker` runs in-process and inside each Ray actor, so both give the same bytes.

Seeds: the request's ``seed`` applies to every file, exactly as the API would apply it to that file
alone, and also seeds the upscaler. With a seed the output of a file depends only on the file and the
settings (not on the order, the worker or the number of workers); without one, grain, dissolve and
the upscaler's noise are drawn fresh for every file, in every run.
"""
from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from PIL import Image

from common.env import ConfigError
from effects import keep_freed_buffers, process, validate
from imaging import decode_image, write_png

#: Field name of the second image in messages (the command line's option).
DISSOLVE_FIELD = "--dissolve-image"


@dataclass(frozen=True)
class Settings:
    """What every file of a batch gets: the fal request body ``params``, the second image's bytes
    for dissolve, and the upscaler options (``upscale`` is the checkpoint, None for no upscaling)."""

    params: dict = field(default_factory=dict)
    dissolve_image: bytes | None = None
    upscale: str | None = None
    overlapping_tiles: bool = False


@dataclass(frozen=True)
class Outcome:
    """What became of one job: ``status`` "done" or "failed", the ``reason`` of a failure, and a
    ``note`` (e.g. only the first frame of an animation was used)."""

    name: str
    status: str
    reason: str = ""
    note: str = ""


class Worker:
    """Processes jobs with one validated request and, with upscaling, the model loaded once.

    A problem of the whole batch that only shows here (the upscaler's weights are missing) is kept
    in ``error``; every job then fails with it.
    """

    def __init__(self, settings: Settings):
        keep_freed_buffers()  # one image after another in this process: reuse the buffers
        self.settings = settings
        self.request = validate(settings.params)
        self.dissolve: Image.Image | None = None
        self.error = ""
        # Fields whose errors are about the file itself: its name already starts the message.
        self._file_fields = {DISSOLVE_FIELD}
        if settings.dissolve_image is not None:
            self.dissolve, _ = decode_image(settings.dissolve_image, field=DISSOLVE_FIELD)
        if settings.upscale:
            import upscaler  # only here: `effects` alone must not need the upscaler

            self._file_fields.add(upscaler.schema.IMAGE_URL.name)  # the upscaler's name for the image
            try:
                upscaler.preload(settings.upscale)
            except (RuntimeError, ValueError, OSError) as err:  # weights unavailable or corrupt
                self.error = f"upscaler {settings.upscale}: {err}"

    def __call__(self, source: str, target: str, name: str) -> Outcome:
        """Process ``source`` into ``target``; never raises for a bad file, the reason is returned."""
        if self.error:
            return Outcome(name, "failed", self.error)
        try:
            with warnings.catch_warnings(record=True) as caught:  # e.g. Pillow on a damaged EXIF block
                warnings.simplefilter("always")
                note = self._render(Path(source), Path(target), name)
        except MemoryError:
            return Outcome(name, "failed", "not enough memory for this image")
        except OSError as err:  # reading or writing a file
            return Outcome(name, "failed", f"{err.strerror or err}{f' ({err.filename})' if err.filename else ''}")
        except ValueError as err:  # refused image (imaging.InputError), request or upscaler limit
            field = getattr(err, "field", None)
            prefix = f"{field}: " if field == name or field in self._file_fields else ""
            return Outcome(name, "failed", str(err).removeprefix(prefix))
        except ConfigError as err:  # e.g. a bad AURASR_* variable: the batch's setup, said as it is
            return Outcome(name, "failed", f"configuration: {err}")
        except Exception as err:  # a bug must not stop the other files; say what it was
            return Outcome(name, "failed", f"internal error: {type(err).__name__}: {err}")
        notes = [note] if note else []
        notes += sorted({f"decoder warning, the image was still read: {w.message}" for w in caught})
        return Outcome(name, "done", note="; ".join(notes))

    def _render(self, source: Path, target: Path, name: str) -> str:
        # The caps of the app apply to local files too (STUDIO_MAX_PIXELS, 50 MP by default): a
        # downloaded folder can hold a decompression bomb as easily as an upload.
        image, notes = decode_image(source.read_bytes(), field=name)
        result = process(image, self.request, dissolve_image=self.dissolve)
        if self.settings.upscale:
            import upscaler

            result, _ = upscaler.upscale(result, checkpoint=self.settings.upscale, seed=self.request.get("seed"),
                                         overlapping_tiles=self.settings.overlapping_tiles)
        write_atomic(target, lambda file: write_png(result, file))
        return "; ".join(note.removeprefix(f"{name}: ") for note in notes)


def write_atomic(target: Path, write: Callable[[BinaryIO], None]) -> None:
    """``write(file)`` into ``target`` through a temporary file in the same folder and a rename, so an
    interrupted write never leaves a truncated file under the final name (``--skip-existing`` trusts
    every file it finds)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        with partial.open("xb") as file:
            write(file)
        os.replace(partial, target)
    except BaseException as err:
        partial.unlink(missing_ok=True)
        if isinstance(err, OSError):  # name the output, not the temporary file
            raise OSError(err.errno, f"cannot write the output: {err.strerror}", str(target)) from None
        raise
