"""The effects applied in horizontal bands on every core, byte-identical to whole-image effects.

Applied to a whole image, every effect returns a fresh image-sized array and makes a few more as
temporaries, so a 24 MP photo streams gigabytes through memory that no cache holds. Here the image is
cut into bands of about :data:`BAND_PIXELS` pixels (a few MB of float32), each band runs through as
many effects as can be chained while it is in cache, and the bands run on a thread pool with one
worker per core (numpy and OpenCV release the GIL).

The result equals applying each effect function to the whole image, bit for bit:

* **Stages.** An effect that reads neighbouring pixels (blur, glow, sharpen, vertical chromatic
  shifts, analog grain) needs its input complete around the band, so the enabled effects are split
  into stages at those effects: a stage is at most one *head* that reads neighbours, followed by
  per-pixel effects. Each stage reads the previous stage's whole output and writes its own in
  place (a band is written once no other band still has to read its rows).
* **Halos.** The head reads ``reach`` rows beyond the band on each side (its radius) and the
  extra rows are dropped after it. (Per-pixel effects before a head end the previous stage rather
  than being recomputed for the halo rows: one more pass over memory costs less.) At the true top
  and bottom the band simply ends there, so the effect applies its own border rule (zero padding,
  reflection) exactly as on the whole image. Vertical chromatic shifts wrap around: their extra
  rows are taken from the opposite edge. Bands are full width, so columns need nothing.
* **Global quantities** are found first. Grain's noise field is drawn band by band into one int16
  field, and its min and max normalise every band alike. A stage whose first effect needs a
  statistic of its input (color correction's mean luma for contrast, the value range that scales
  smart sharpen's bilateral filter in OpenCV 4.x) gets it from the previous stage, which measures each band it
  writes. Smart sharpen sees the whole image's value range through a few extra rows holding it,
  appended beyond the rows any kept pixel reads.
* **Randomness.** Grain and dissolve take the same draws as on the whole image: each band uses a
  copy of the effect's generator advanced to the band's first draw (PCG64 ``advance``).
* **Positions.** Effects whose maths depends on the row (vignette, grain's lattice and halftone
  screen, dissolve's draws and second image) are told the band's first row and the image's size.
* **SIMD tails.** OpenCV's ``cv2.transform`` (tint, desaturate, grain styles) computes the last few
  pixels of an array on a scalar path that rounds differently from its vector body. So bands start
  on a multiple of :data:`_ALIGN` pixels and are computed :data:`_ALIGN` pixels (at least one row)
  past their end, and those pixels are dropped.
"""
from __future__ import annotations

import math
import os
from bisect import bisect_right
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
from PIL import Image

from imaging import quantize_half_up, to_float_rgb, upright
from imaging.metadata import orientation

from . import color_correction as _cc
from . import grain as _grain
from .schema import Effect
from .vignette import vignette_rows

#: Pixels per band: 1.5 MiB of float32 RGB, so one band's temporaries on every core stay in the
#: L2/L3 caches of the machines this runs on.
BAND_PIXELS = 1 << 17
#: Bands start on, and are computed this many pixels past, multiples of this (see SIMD tails).
_ALIGN = 16

Apply = Callable[[np.ndarray, int, Any], np.ndarray]


@dataclass(frozen=True)
class Step:
    """One enabled effect with its parameters bound, as the band engine runs it.

    ``apply(rows, top, stat)`` returns the effect of rows ``top .. top + len(rows)`` of the image;
    ``reach`` is how many rows it reads on each side (0: per pixel); ``wrap`` says rows beyond an
    edge are the opposite edge's. ``measure(rows)`` gives a band's share of a statistic of the
    effect's input and ``combine(shares)`` the whole image's, passed to ``apply`` as ``stat``.
    """

    apply: Apply
    reach: int = 0
    wrap: bool = False
    measure: Callable[[np.ndarray], Any] | None = None
    combine: Callable[[list], Any] | None = None
    key: str = ""  # the effect's key, for on_effect


@dataclass
class _Stage:
    head: Step | None = None
    pointwise: list[Step] = field(default_factory=list)

    @property
    def first(self) -> Step | None:
        """The step that reads the stage's input, the only one that may need its statistic."""
        return self.head if self.head is not None else next(iter(self.pointwise), None)


def apply_in_bands(rgb: np.ndarray, calls: Sequence[tuple[Effect, dict]], *,
                   into: np.ndarray | None = None, overwrite_input: bool = False,
                   band_rows: int | None = None,
                   on_effect: Callable[[str], None] | None = None) -> np.ndarray:
    """``effect.function(image, **kwargs)`` for each ``(effect, kwargs)`` in order, in bands.

    ``rgb`` is float32 H×W×3, C-contiguous. Returns a new float32 image, or, with ``into`` (uint8
    H×W×C, C >= 3), writes :func:`imaging.quantize_half_up` of it into ``into[..., :3]`` and returns
    ``into``. Dissolve's ``other`` may be a PIL image of the same size, from
    :func:`upright_for_bands`, instead of its float32 array: its rows are then converted band by
    band. ``overwrite_input`` lets ``rgb`` serve as the work image once read. ``band_rows``
    overrides the band height (rounded up to whole alignment steps), for tests. ``on_effect(key)``
    is called for each effect before the stage that runs it starts (it may raise to stop).
    """
    h, w, _ = rgb.shape
    align = _ALIGN // math.gcd(w, _ALIGN)  # rows per alignment step
    workers = min(os.cpu_count() or 1, max(1, h // align))
    with ThreadPoolExecutor(workers) as pool:
        def each(fn: Callable, bands: list[tuple[int, int]]) -> list:
            return [fn(b) for b in bands] if len(bands) == 1 else list(pool.map(fn, bands))

        steps = [replace(_step(effect, kwargs, (h, w), each, align), key=effect.key)
                 for effect, kwargs in calls]
        reach = max([s.reach for s in steps], default=0)
        rows = band_rows or max(BAND_PIXELS // w, 8 * reach)  # halos cost <= 25% extra
        rows = -(-rows // align) * align
        bands = [(top, min(h, top + rows)) for top in range(0, h, rows)]
        stages = _plan(steps)

        first = stages[0].first
        stat = None
        if first is not None and first.measure is not None:
            stat = first.combine(each(lambda b: first.measure(rgb[b[0]:b[1]]), bands))
        work = rgb if overwrite_input else None  # the one float work image, written in place
        src = rgb
        for k, stage in enumerate(stages):
            for step in ([stage.head] if stage.head else []) + stage.pointwise:
                if on_effect is not None:
                    on_effect(step.key)
            last = k == len(stages) - 1
            quantise = last and into is not None
            if quantise:
                dst = into
            else:
                work = np.empty_like(rgb) if work is None else work
                dst = work
            following = None if last else stages[k + 1].first
            measure = following.measure if following is not None else None
            shares = _run_stage(stage, src, dst, stat, measure, align, quantise, bands, pool)
            stat = following.combine(shares) if measure is not None else None
            src = dst
    return src


def _run_stage(stage: _Stage, src: np.ndarray, dst: np.ndarray, stat: Any,
               measure: Callable | None, align: int, quantise: bool,
               bands: list[tuple[int, int]], pool: ThreadPoolExecutor) -> list:
    """Run one stage over all bands; return each band's share of the next stage's statistic.

    Into another image, every band is written as soon as it is done. In place (``dst is src``), a
    band's result waits until every band that reads its rows (halo, guard, wrap) is done.
    """
    def compute(band: tuple[int, int]) -> tuple[np.ndarray, Any]:
        x = _band(stage, src, stat, align, band)
        return x, (measure(x) if measure is not None else None)

    def write(band: tuple[int, int], x: np.ndarray) -> None:
        if quantise:
            quantize_half_up(x, out=dst[band[0]:band[1], :, :3])
        else:
            dst[band[0]:band[1]] = x

    if len(bands) == 1 or dst is not src:
        def compute_and_write(band: tuple[int, int]) -> Any:
            x, share = compute(band)
            write(band, x)
            return share
        if len(bands) == 1:
            return [compute_and_write(bands[0])]
        return list(pool.map(compute_and_write, bands))

    tops = [top for top, _ in bands]
    readers: list[set[int]] = [set() for _ in bands]
    for reader, band in enumerate(bands):
        for low, high in _rows_read(stage, band, src.shape[:2], align):
            for i in range(bisect_right(tops, low) - 1, bisect_right(tops, high - 1)):
                readers[i].add(reader)
    futures = {pool.submit(compute, band): i for i, band in enumerate(bands)}
    done: set[int] = set()
    pending: dict[int, np.ndarray] = {}
    shares: list[Any] = [None] * len(bands)
    for future in as_completed(futures):
        i = futures.pop(future)  # drop the future too: it holds the band's result
        pending[i], shares[i] = future.result()
        del future
        done.add(i)
        for j in [j for j in pending if readers[j] <= done]:
            write(bands[j], pending.pop(j))
    return shares


def _window(stage: _Stage, band: tuple[int, int], shape: tuple[int, int],
            align: int) -> tuple[int, int, int]:
    """``(start, stop, end)``: a band's rows are computed up to ``end`` (SIMD tails) from input
    rows ``start .. stop`` (its head's halo; taken modulo the height when the head wraps)."""
    (top, bottom), (h, w) = band, shape
    end = min(h, bottom + -(-_ALIGN // w))
    reach = stage.head.reach if stage.head is not None else 0
    if stage.head is not None and stage.head.wrap:
        return top - reach, end + reach, end
    return max(0, top - reach) // align * align, min(h, end + reach), end


def _rows_read(stage: _Stage, band: tuple[int, int], shape: tuple[int, int],
               align: int) -> list[tuple[int, int]]:
    """The ranges of input rows that computing ``band`` reads."""
    h = shape[0]
    start, stop, _ = _window(stage, band, shape, align)
    if stop - start >= h:
        return [(0, h)]
    return [(max(start, 0), min(stop, h)), (start % h, h) if start < 0 else (0, 0),
            (0, stop - h) if stop > h else (0, 0)]


def _band(stage: _Stage, src: np.ndarray, stat: Any, align: int, band: tuple[int, int]) -> np.ndarray:
    """Rows ``band`` of one stage's output, from its input ``src``."""
    top, bottom = band
    h, w = src.shape[:2]
    start, stop, end = _window(stage, band, (h, w), align)
    stats = iter([stat])  # the statistic is for the stage's first step only
    head = stage.head
    if head is None:
        x = src[top:end]
    else:
        x = np.take(src, np.arange(start, stop) % h, axis=0) if head.wrap else src[start:stop]
        x = head.apply(x, start, next(stats, None))[top - start:end - start]
    for step in stage.pointwise:
        x = step.apply(x, top, next(stats, None))
    return x[:bottom - top]


def _plan(steps: list[Step]) -> list[_Stage]:
    """Split the steps into stages (module docstring): a new stage starts at every head and every
    step with a statistic, unless the current stage is still empty."""
    stages = [_Stage()]
    for step in steps:
        if (step.reach or step.measure) and (stages[-1].head or stages[-1].pointwise):
            stages.append(_Stage())
        if step.reach:
            stages[-1].head = step
        else:
            stages[-1].pointwise.append(step)
    return stages


def upright_for_bands(image: Image.Image) -> Image.Image:
    """``image``, or an upright copy of it, whose crops :func:`imaging.to_float_rgb` converts like
    the rows of ``to_float_rgb(image)``.

    to_float_rgb applies the EXIF orientation first, and ``imaging.upright`` keeps the EXIF block,
    so the copy keeps only the transparency in ``info``: crops of it must not be turned again.
    """
    if orientation(image) == 1:
        return image
    turned = upright(image)
    turned.info = {key: value for key, value in turned.info.items() if key == "transparency"}
    return turned


def to_float_rgb_in_bands(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`imaging.to_float_rgb` of ``image``, converted band by band on every core into one
    array: no image-sized float temporaries (for a 24 MP photo those cost more page faults than
    the conversion itself)."""
    image = upright_for_bands(image)
    w, h = image.size
    rows = max(1, BAND_PIXELS // w)
    bands = [(top, min(h, top + rows)) for top in range(0, h, rows)]
    rgb, alpha = to_float_rgb(image.crop((0, 0, w, bands[0][1])))
    rgb = np.concatenate([rgb, np.empty((h - len(rgb), w, 3), np.float32)])
    if alpha is not None:
        alpha = np.concatenate([alpha, np.empty((h - len(alpha), w), np.uint8)])

    def convert(band: tuple[int, int]) -> None:
        top, bottom = band
        rgb[top:bottom], band_alpha = to_float_rgb(image.crop((0, top, w, bottom)))
        if alpha is not None:
            alpha[top:bottom] = band_alpha

    with ThreadPoolExecutor(min(len(bands), os.cpu_count() or 1)) as pool:
        list(pool.map(convert, bands[1:]))
    return rgb, alpha


def _jumped(rng: np.random.Generator, words: int) -> np.random.Generator:
    """A new generator where ``rng`` would be after ``words`` 64-bit draws (``rng`` is untouched)."""
    bits = type(rng.bit_generator)()
    bits.state = rng.bit_generator.state
    bits.advance(words)
    return np.random.Generator(bits)


def _step(effect: Effect, kwargs: dict, shape: tuple[int, int], each: Callable,
          align: int) -> Step:
    """The band step of one effect call (module docstring); per-pixel effects need nothing."""
    function = effect.function
    adapter = _ADAPTERS.get(effect.key)
    if adapter is not None:
        return adapter(function, kwargs, shape, each, align)
    return Step(lambda x, top, _: function(x, **kwargs))


def _grain_step(function, kwargs, shape, each, align) -> Step:
    h, w = shape
    field = np.empty(shape, np.int16)
    rng_at = partial(_jumped, kwargs["rng"])

    def draw(band: tuple[int, int]) -> tuple[int, int]:
        top, bottom = band
        rows = field[top:bottom]
        rows[...] = _grain.noise_rows(h, w, kwargs["grain_scale"], rng_at, top, bottom - top)
        return int(rows.min()), int(rows.max())

    rows = max(align, -(-BAND_PIXELS // w // align) * align)
    extremes = each(draw, [(top, min(h, top + rows)) for top in range(0, h, rows)])
    low, high = min(e[0] for e in extremes), max(e[1] for e in extremes)

    def apply(x: np.ndarray, top: int, _) -> np.ndarray:
        noise = _grain.Noise(field[top:top + len(x)], low, high, top, shape)
        return _grain.add_noise(x, noise, kwargs["grain_intensity"], kwargs["grain_style"])
    return Step(apply, _grain.reach(kwargs["grain_style"]))


def _color_correction_step(function, kwargs, shape, each, align) -> Step:
    if kwargs["contrast"] == 0:  # the pivot is not used
        return Step(lambda x, top, _: function(x, **kwargs))
    pixels = shape[0] * shape[1]
    return Step(lambda x, top, total: function(x, **kwargs, pivot=_cc.contrast_pivot(total, pixels)),
                measure=partial(_cc.contrast_luma_total, brightness=kwargs["brightness"]),
                combine=sum)


def _chromatic_step(function, kwargs, shape, each, align) -> Step:
    reach = max((abs(kwargs[f"{c}_shift"]) for c in ("red", "green", "blue")
                 if kwargs[f"{c}_direction"] == "vertical"), default=0)
    return Step(lambda x, top, _: function(x, **kwargs), reach, wrap=True)


def _radius_step(name: str) -> Callable[..., Step]:
    def build(function, kwargs, shape, each, align) -> Step:
        return Step(lambda x, top, _: function(x, **kwargs), kwargs[name])
    return build


def _sharpen_step(function, kwargs, shape, each, align) -> Step:
    mode = kwargs["sharpen_mode"]
    if mode == "basic":
        return Step(lambda x, top, _: function(x, **kwargs), kwargs["sharpen_radius"])
    if mode != "smart":  # cas: a 3x3 neighbourhood
        return Step(lambda x, top, _: function(x, **kwargs), 1)
    h, w = shape

    def apply(x: np.ndarray, top: int, extremes: tuple[float, float]) -> np.ndarray:
        # OpenCV's float bilateral filter scales its colour weights by its input's value range:
        # extra rows holding the whole image's min and max give a band the same range. They go on
        # the side that is not a true image edge, beyond the halo's rows, and are dropped.
        if len(x) == h:
            return function(x, **kwargs)
        extra = np.full((align, w, 3), extremes[0], np.float32)
        extra[0, 0, 0] = extremes[1]
        if top + len(x) == h:
            return function(np.concatenate([extra, x]), **kwargs)[align:]
        return function(np.concatenate([x, extra]), **kwargs)[:len(x)]
    # The bilateral radius is noise_radius // 2 (OpenCV), the smoothing kernel's 1.
    return Step(apply, max(1, kwargs["noise_radius"] // 2),
                measure=lambda x: (float(x.min()), float(x.max())),
                combine=lambda shares: (min(s[0] for s in shares), max(s[1] for s in shares)))


def _vignette_step(function, kwargs, shape, each, align) -> Step:
    return Step(lambda x, top, _: vignette_rows(x, kwargs["vignette_strength"], top, shape[0]))


def _dissolve_step(function, kwargs, shape, each, align) -> Step:
    words_per_row = shape[1] * 3 / 2  # one float32 draw per element, two per 64-bit word

    other = kwargs["other"]
    if isinstance(other, Image.Image):
        other.load()  # here, not lazily in several workers at once

    def apply(x: np.ndarray, top: int, _) -> np.ndarray:
        if isinstance(other, np.ndarray):
            rows = other[top:top + len(x)]
        else:  # an image of the same size (from upright_for_bands): rows as to_float_rgb reads them
            rows = to_float_rgb(other.crop((0, top, other.width, top + len(x))))[0]
        # Bands start on multiples of 16 pixels, so on whole words.
        return function(x, **{**kwargs, "other": rows,
                              "rng": _jumped(kwargs["rng"], int(top * words_per_row))})
    return Step(apply)


_ADAPTERS: dict[str, Callable[..., Step]] = {
    "grain": _grain_step,
    "color_correction": _color_correction_step,
    "chromatic": _chromatic_step,
    "blur": _radius_step("blur_radius"),
    "glow": _radius_step("glow_radius"),
    "sharpen": _sharpen_step,
    "vignette": _vignette_step,
    "dissolve": _dissolve_step,
}
