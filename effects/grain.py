"""Film grain: the reference FilmGrain noise (statistically) and five film looks built on it.

docs/decisions.md §1.1 (reference maths), §6 and (e) (styles), (f) (seeded randomness).

The reference noise
-------------------
FilmGrain sums 4 octaves (o = 0..3, amplitude 0.5**o) of a gradient noise on a lattice of
``scale * 2**o`` cells across the image. Pixel (i, j) sits at fractional cell position
``xf = frac(j/W * s_o)``, ``yf = frac(i/H * s_o)``, fades ``u = xf²(3 - 2xf)``, ``v = yf²(3 - 2yf)``.
Unlike Perlin noise, the four corner gradients are drawn *per pixel* (independently, each uniform over
(±1, ±1)), so the result is near-white per-pixel noise whose amplitude varies periodically over each
cell; ``grain_scale`` changes that pattern, not the grain size. The octave value is the bilinear blend
of the four corner dot products. Expanding it, it is a sum of eight independent random signs:

    N_o = (1-v)(s1 p + s2 q) + v(s3 p + s4 q)  +  (1-u)(t1 p' + t2 q') + u(t3 p' + t4 q')
    with p = (1-u) xf, q = u (1-xf), p' = (1-v) yf, q' = v (1-yf),

where the s are the gradients' x components and the t their y components (the signs of the corners
with an ``xf - 1`` or ``yf - 1`` offset are folded into the random signs, which does not change the
distribution). The field is min-max normalised to [0, 1], mapped to ``(2N - 1) * intensity`` and added
to R, G and B alike (monochrome grain), then clipped.

How it is computed fast
-----------------------
Each half of N_o (the s half and the t half) depends only on (xf, yf) and 4 random bits. With xf and
yf quantised to 64 levels (cell midpoints), each half is one 65536-entry table lookup
(``cv2.LUT`` with a 16-bit index: 6 + 6 position bits and 4 random bits), precomputed at import in
int16 fixed point with the octave weight folded in. A whole field is then 8 lookups plus integer adds;
all random bits (4 bytes per pixel) come from one draw. Every pixel's value is drawn from exactly the
reference's distribution at a position at most 1/128 cell away, which changes the global statistics by
far less than their run-to-run spread (``modern`` is statistical parity, docs/decisions.md (e)). The reference's
legacy-RNG draws are not reproduced (docs/decisions.md (f)); a given ``rng`` state always gives the same output.

Styles (this project's own looks, not parity; fal's are unpublished, §6)
-----------------------------------------------------------------------
All styles use the same normalised noise ``n`` in [-1, 1] and scale every change by ``intensity``, so
intensity 0 returns the image unchanged. ``L`` is Rec.601 luma and ``m(L) = 4 L (1 - L)`` is a
midtone weight (1 at mid-grey, 0 at black and white).

* ``modern``: the reference, ``x + I n`` on all channels.
* ``analog``: softer, clumpier grain: the noise blurred by a gaussian (sigma 0.7 px, its standard
  deviation restored), at 0.6 of the amplitude and weighted towards the midtones like film grain,
  ``x + 0.6 I n_b (0.25 + 0.75 m(L))``.
* ``kodak``: warm. Grain in (R, G, B) at (1, 0.9, 0.75) I, plus a warm midtone cast
  ``+I m(L) (0.15, 0.06, -0.12)``.
* ``fuji``: cool and green. Grain at (0.85, 1, 0.9) I, plus a cyan-green midtone cast
  ``+I m(L) (-0.12, 0.06, 0.05)``.
* ``cinematic``: finer, lower-amplitude grain (0.5 I) and a mild S-shaped contrast curve on luma
  (``+0.6 I (smoothstep(L) - L)`` on every channel).
* ``newspaper``: high-contrast monochrome halftone. Luma with contrast 1.6 is thresholded against a
  45-degree dot screen (pitch ~``min(H, W) / 170`` px, at least 3 px), jittered by the grain; the
  black-ink-on-newsprint result is blended over the image with weight ``min(1, 2 I)``, so fal's
  default intensity 0.4 already reads as print and 0.5 and above is pure print.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from effects._filters import downscaled_noise_gain

_POSITION_BITS = 6
_OCTAVES = 4
# int16 fixed point: |each octave half| <= 0.5 * 0.5**o, so the whole sum stays below 1.875 * 16384.
_FIXED_ONE = 16384
# The analog style's noise blur, in pixels.
_ANALOG_SIGMA = 0.7
# Bins of the noise histogram over [-1, 0] in a scaled grain's clip-bias table, and the levels
# of its table of the modern style's mean by value (steps of 1/4096: far below one 8-bit level).
_BINS = 1024
_LEVELS = 4096
# The newspaper style's two tones.
_PAPER, _INK = np.float32(0.93), np.float32(0.1)


def _half_tables() -> tuple[np.ndarray, np.ndarray]:
    """The s half and the t half of one octave for every (yq, xq, 4 random bits), as 65536-vectors.

    Index layout: ``yq << 10 | xq << 4 | bits``; bit k of ``bits`` is the sign of the k-th term.
    """
    mid = (np.arange(1 << _POSITION_BITS) + 0.5) / (1 << _POSITION_BITS)
    yf, xf = mid[:, None, None], mid[None, :, None]
    bits = np.arange(16)[None, None, :]
    s1, s2, s3, s4 = (1 - 2 * ((bits >> k) & 1) for k in range(4))
    u, v = xf * xf * (3 - 2 * xf), yf * yf * (3 - 2 * yf)
    p, q = (1 - u) * xf, u * (1 - xf)
    p_, q_ = (1 - v) * yf, v * (1 - yf)
    s_half = (1 - v) * (s1 * p + s2 * q) + v * (s3 * p + s4 * q)
    # The t half has the same form with x and y swapped; its four signs come from a separate random
    # nibble at lookup time, so the same bit-to-sign mapping can be reused here.
    t_half = (1 - u) * (s1 * p_ + s2 * q_) + u * (s3 * p_ + s4 * q_)
    return s_half.reshape(-1), t_half.reshape(-1)


_S_HALF, _T_HALF = _half_tables()
#: Per octave, the (s half, t half) lookup tables in int16 fixed point, octave weight included.
_TABLES = tuple(
    tuple(np.round(half * _FIXED_ONE * 0.5 ** o).astype(np.int16) for half in (_S_HALF, _T_HALF))
    for o in range(_OCTAVES))


def _cell_codes(n: int, cells: float) -> np.ndarray:
    """Quantised fractional cell position of ``n`` pixels, ``floor(frac(k/n * cells) * 64)``."""
    t = np.linspace(0.0, 1.0, n, endpoint=False) * cells
    frac = t - np.floor(t)
    return np.minimum(frac * (1 << _POSITION_BITS), (1 << _POSITION_BITS) - 1).astype(np.uint16)


def _noise_field(h: int, w: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """The un-normalised 4-octave field (int16, HxW, ``_FIXED_ONE`` = 1.0)."""
    random_bytes = rng.integers(0, 2**64, size=(_OCTAVES * h * w + 7) // 8, dtype=np.uint64)
    return _field_rows(random_bytes.view(np.uint8)[:_OCTAVES * h * w].reshape(_OCTAVES, h, w), h,
                       scale, 0)


def noise_rows(h: int, w: int, scale: float, rng_at: Callable[[int], np.random.Generator],
               top: int, rows: int) -> np.ndarray:
    """Rows ``top .. top + rows`` of ``_noise_field(h, w, scale, rng)``, drawing only their bytes.

    ``rng_at(k)`` is a generator positioned ``k`` 64-bit words into ``rng``'s stream (the whole
    field's draw takes one word per 8 bytes, octave after octave), so bands of one image can be
    drawn independently and in any order.
    """
    octave_bits = np.empty((_OCTAVES, rows, w), np.uint8)
    for o in range(_OCTAVES):
        start = (o * h + top) * w
        first = start // 8
        words = rng_at(first).integers(0, 2**64, size=(start + rows * w + 7) // 8 - first,
                                       dtype=np.uint64)
        octave_bits[o] = words.view(np.uint8)[start - 8 * first:][:rows * w].reshape(rows, w)
    return _field_rows(octave_bits, h, scale, top)


def _field_rows(octave_bits: np.ndarray, h: int, scale: float, top: int) -> np.ndarray:
    """Rows ``top ..`` of the field of an image ``h`` rows tall, from their random bytes
    (``octave_bits``: one byte per octave and pixel, shape (4, rows, W))."""
    _, rows, w = octave_bits.shape
    position = np.empty((rows, w), np.uint16)
    index = np.empty((rows, w), np.uint16)
    signs = np.empty((rows, w), np.uint8)
    term = np.empty((rows, w), np.int16)
    field = np.zeros((rows, w), np.int16)

    def add_half(table: np.ndarray) -> None:
        np.bitwise_or(position, signs, out=index)
        np.add(field, cv2.LUT(index, table, dst=term), out=field)

    for o, (s_table, t_table) in enumerate(_TABLES):
        cells = scale * 2**o
        np.bitwise_or((_cell_codes(h, cells)[top:top + rows] << 10)[:, None],
                      (_cell_codes(w, cells) << 4)[None, :], out=position)
        # One random byte per octave and pixel: low nibble for the s half, high nibble for the t half.
        np.bitwise_and(octave_bits[o], 15, out=signs)
        add_half(s_table)
        np.right_shift(octave_bits[o], 4, out=signs)
        add_half(t_table)
    return field


@dataclass(frozen=True)
class Noise:
    """Rows ``top .. top + len(field)`` of the un-normalised noise field of an image of ``size``
    (H, W), with the whole field's extremes ``low`` and ``high`` (the min-max normalisation is
    global, so a band of the image is normalised exactly like the whole)."""

    field: np.ndarray
    low: int
    high: int
    top: int
    size: tuple[int, int]


def _normalised_noise(noise: Noise, amplitude: float) -> np.ndarray:
    """``amplitude * (2 (N - min) / (max - min) - 1)`` as float32 HxW, via one 16-bit lookup.

    A constant field (e.g. a 1x1 image, where the reference divides 0 by 0) gives zero noise.
    """
    field, low, high = noise.field, noise.low, noise.high
    if high == low:
        return np.zeros(field.shape, np.float32)
    values = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.float64)
    table = (amplitude * (2 * (values - low) / (high - low) - 1)).astype(np.float32)
    return cv2.LUT(field.view(np.uint16), table)


def _luma(image: np.ndarray) -> np.ndarray:
    """Rec.601 luma (OpenCV's RGB→GRAY), float32 HxW."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _midtones(luma: np.ndarray) -> np.ndarray:
    """``m(L) = 4 L (1 - L)``: 1 at mid-grey, 0 at black and white."""
    return 4 * luma * (1 - luma)


def _mix(planes: list[np.ndarray], matrix: list) -> np.ndarray:
    """RGB = ``matrix @ planes`` per pixel; ``matrix`` is 3 x len(planes), at most 3 planes.

    ``cv2.transform`` expands HxW planes to RGB in one pass, several times faster than numpy's
    broadcast over a trailing axis of length 3. It is only fast from exactly 3 channels, so missing
    planes are filled with the first plane at weight zero.
    """
    matrix = np.asarray(matrix, np.float32).reshape(3, len(planes))
    padding = 3 - len(planes)
    stack = cv2.merge(planes + planes[:1] * padding)
    return cv2.transform(stack, np.hstack([matrix, np.zeros((3, padding), np.float32)]))


def _add_clipped(image: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``clip(image + delta)``, computed in ``delta``'s buffer (a fresh RGB array)."""
    np.add(delta, image, out=delta)
    return np.clip(delta, 0.0, 1.0, out=delta)


def _reach(sigma: float) -> int:
    """Half-width in pixels of the gaussian kernel used for ``sigma``: ceil(3 sigma)."""
    return int(np.ceil(3 * sigma))


def _blurred(noise: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-blurred noise, rescaled so white noise keeps its standard deviation."""
    kernel = cv2.getGaussianKernel(2 * _reach(sigma) + 1, sigma)
    gain = 1 / float(np.sum(kernel**2))  # sqrt(sum of 2-D weights²) = sum of 1-D weights²
    return cv2.sepFilter2D(noise, -1, kernel * gain, kernel, borderType=cv2.BORDER_REFLECT_101)


def _dot_pitch(h: int, w: int) -> float:
    """The halftone's dot pitch in pixels on an image of H x W pixels."""
    return max(3.0, min(h, w) / 170)


def _halftone(image: np.ndarray, jitter: np.ndarray, noise: Noise,
              pitch: float | None = None) -> np.ndarray:
    """Black ink dots on newsprint: contrasty luma thresholded against a 45-degree dot screen.

    Paper where ``1.6 (L - 0.5) + 0.5 + jitter > screen``, ink elsewhere, with the dot screen
    ``0.5 + 0.5 cos(2 pi i / pitch) cos(2 pi j / pitch)`` (cos·cos = dots on a 45° grid).
    ``pitch`` defaults to :func:`_dot_pitch` of the whole image.
    """
    h, w, _ = image.shape
    if pitch is None:
        pitch = _dot_pitch(*noise.size)  # of the whole image; its rows from the band's top
    rows = (0.5 * np.cos(np.arange(noise.top, noise.top + h) * (2 * np.pi / pitch))).astype(np.float32)
    cols = np.cos(np.arange(w) * (2 * np.pi / pitch)).astype(np.float32)
    # Both sides minus 0.5: 1.6 L - 0.8 + jitter - 0.5 cos cos > 0. A strict threshold on that
    # difference is much faster than np.where on a random mask.
    margin = cv2.addWeighted(_luma(image), 1.6, jitter, 1.0, -0.8)
    margin -= rows[:, None] * cols[None, :]
    page = cv2.threshold(margin, 0.0, _PAPER - _INK, cv2.THRESH_BINARY, dst=margin)[1]
    page += _INK
    return cv2.merge([page, page, page])


def _modern(image: np.ndarray, noise: Noise, i: float) -> np.ndarray:
    grain_ = _normalised_noise(noise, i)
    return _add_clipped(image, cv2.merge([grain_, grain_, grain_]))


def _analog(image: np.ndarray, noise: Noise, i: float) -> np.ndarray:
    weight = 0.25 + 0.75 * _midtones(_luma(image))
    softened = _blurred(_normalised_noise(noise, 1.0), _ANALOG_SIGMA) * weight
    return _add_clipped(image, _mix([softened], [0.6 * i] * 3))


def _kodak(image: np.ndarray, noise: Noise, i: float) -> np.ndarray:
    planes = [_normalised_noise(noise, 1.0), _midtones(_luma(image))]
    return _add_clipped(image, _mix(planes, [[i, 0.15 * i], [0.9 * i, 0.06 * i], [0.75 * i, -0.12 * i]]))


def _fuji(image: np.ndarray, noise: Noise, i: float) -> np.ndarray:
    planes = [_normalised_noise(noise, 1.0), _midtones(_luma(image))]
    return _add_clipped(image, _mix(planes, [[0.85 * i, -0.12 * i], [i, 0.06 * i], [0.9 * i, 0.05 * i]]))


def _cinematic(image: np.ndarray, noise: Noise, i: float) -> np.ndarray:
    luma = _luma(image)
    curve = luma * luma * (3 - 2 * luma) - luma
    return _add_clipped(image, _mix([_normalised_noise(noise, 1.0), curve], [[0.5 * i, 0.6 * i]] * 3))


def _newspaper(image: np.ndarray, noise: Noise, i: float) -> np.ndarray:
    weight = min(1.0, 2 * i)
    print_ = _halftone(image, _normalised_noise(noise, 0.15), noise)
    return cv2.addWeighted(image, 1 - weight, print_, weight, 0.0)


def _screen_cdf() -> np.ndarray:
    """P(cos a cos b <= u) for uniform phases a, b, on 1025 points u in [-1, 1]."""
    phases = (np.arange(512) + 0.5) * (2 * np.pi / 512)
    products = np.sort((np.cos(phases)[:, None] * np.cos(phases)[None, :]).ravel())
    return (np.searchsorted(products, np.linspace(-1, 1, 1025), side="right")
            / products.size).astype(np.float32)


_SCREEN_CDF = _screen_cdf()


def _proxy_newspaper(image: np.ndarray, noise: Noise, i: float, scale: float) -> np.ndarray:
    """The newspaper style on a proxy ``scale`` times the size of the full image: the full
    image's dots, ``scale`` times smaller. Where they would be under 3 proxy pixels apart the
    downscale averages them into their ink coverage, so the print is drawn as that tone:
    ``paper fraction = P(0.5 cos a cos b < 1.6 L - 0.8)`` over the screen's phases
    (:data:`_SCREEN_CDF`; the jitter, std 0.04, is left out: smoothing the tone by it measured
    further from the downscaled print, not closer)."""
    h, w, _ = image.shape
    weight = min(1.0, 2 * i)
    pitch = _dot_pitch(round(h / scale), round(w / scale)) * scale
    if pitch >= 3:
        print_ = _halftone(image, _normalised_noise(noise, 0.15), noise, pitch)
    else:
        u = _luma(image)
        u *= 3.2
        u -= 1.6  # (1.6 L - 0.8) / 0.5
        np.clip(u, -1.0, 1.0, out=u)
        u += 1
        u *= 512
        page = np.take(_SCREEN_CDF, u.astype(np.int32))
        page *= _PAPER - _INK
        page += _INK
        print_ = cv2.merge([page, page, page])
    return cv2.addWeighted(image, 1 - weight, print_, weight, 0.0)


#: ``grain_style`` -> how the style applies the noise field, in fal's enum order.
_STYLES = {"modern": _modern, "analog": _analog, "kodak": _kodak, "fuji": _fuji,
           "cinematic": _cinematic, "newspaper": _newspaper}
#: fal's ``grain_style`` enum.
GRAIN_STYLES = tuple(_STYLES)


def _blurred_noise_gain(sigma: float, scale: float) -> float:
    """How much more of :func:`_blurred`'s noise than of pixel-independent noise a downscale by
    ``scale`` keeps.

    The blur's kernel sums to its std-restoring gain G. Treating both the blur and the downscale
    filter as gaussians (the filter's variance ``1 / (4 pi g**2)`` from its white-noise gain g), the
    downscaled noise's variance is the unblurred one's times ``G**2 f / (f + sigma**2)``.
    """
    kernel = cv2.getGaussianKernel(2 * _reach(sigma) + 1, sigma)
    filter_variance = 1 / (4 * np.pi * downscaled_noise_gain(scale) ** 2)
    return float(np.sqrt(filter_variance / (filter_variance + sigma**2)) / np.sum(kernel**2))


def grain(image: np.ndarray, *, grain_intensity: float, grain_scale: float, grain_style: str,
          rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """Add film grain in one of fal's six styles (see the module docstring for every formula).

    Parameters
    ----------
    image : np.ndarray
        float32 HxWx3 in [0, 1]; not modified.
    grain_intensity : float
        I, 0..1: the grain's peak amplitude (``modern``) and the strength of every style. 0 returns
        the image unchanged.
    grain_scale : float
        1..100: lattice cells across the image for the first octave. It shapes the periodic
        amplitude pattern of the reference noise, not the grain size.
    grain_style : str
        ``"modern"`` (the reference, statistically), ``"analog"``, ``"kodak"``, ``"fuji"``,
        ``"cinematic"`` or ``"newspaper"`` (this project's own looks, docs/decisions.md (e)).
    rng : np.random.Generator
        Source of all randomness (4 random bytes per pixel). The same state gives the same output.
    scale : float
        Size of ``image`` relative to the image the request is meant for, in (0, 1]. Below 1 the
        grain matches the downscaled full-resolution grain in strength and bias, not pixel by
        pixel (:func:`_downscaled_grain`).

    Returns
    -------
    np.ndarray
        New float32 HxWx3 array clipped to [0, 1].
    """
    if grain_style not in _STYLES:
        raise ValueError(f"grain_style must be one of {', '.join(_STYLES)}; got {grain_style!r}")
    h, w, _ = image.shape
    field = _noise_field(h, w, grain_scale, rng)
    if scale == 1:
        return add_noise(image, Noise(field, int(field.min()), int(field.max()), 0, (h, w)),
                         grain_intensity, grain_style)
    if grain_style == "newspaper":
        noise = Noise(field, int(field.min()), int(field.max()), 0, (h, w))
        return _proxy_newspaper(image, noise, grain_intensity, scale)
    return _downscaled_grain(image, field, grain_intensity, grain_style, scale)


def _expected_half_range(field: np.ndarray, pixels: float) -> int:
    """The field's expected ``(max - min) / 2`` over an image of ``pixels`` pixels.

    The field is a sum of 32 bounded random terms, so its extremes grow slowly with the pixel
    count: measured on fields of 0.17 to 24 megapixels (any grain_scale), half the range is
    ``(2.655 + 0.0915 ln pixels)`` standard deviations to within 1.5%.
    """
    std = float(field.std(dtype=np.float64))
    return max(1, int(round(std * (2.655 + 0.0915 * np.log(pixels)))))


def _downscaled_grain(image: np.ndarray, field: np.ndarray, i: float, style: str,
                      scale: float) -> np.ndarray:
    """The grain of a proxy ``scale`` times the size of the full image, matched in its statistics.

    Every noise style is ``y = clip(v + A n)`` per channel: the image with the style's cast ``v``
    and the noise ``n`` in [-1, 1] times an amplitude ``A`` >= 0. Downscaled, the full-resolution
    grain keeps its local mean ``mu = E[y]`` (including the bias the clip adds near black and
    white) while its pixel-independent deviation ``y - mu`` shrinks by the gain g of
    :func:`effects._filters.downscaled_noise_gain` (times :func:`_blurred_noise_gain` for the
    analog style's blurred noise, whose energy sits at low frequencies). So
    ``out = mu + g (y - mu)``.

    ``v`` and ``A`` are read off the style itself (run with the noise 0 and +-1/64; for
    ``modern`` they are the image and the intensity, and ``mu`` is a table by value), and
    ``mu = v + A (P(-v/A) - P(-(1-v)/A))`` with ``P(t) = E[(t - n)+]`` of the noise's own
    distribution (symmetric, so the upper clip mirrors the lower one). The field is normalised by
    the range expected at full resolution (:func:`_expected_half_range`), not by the proxy's own,
    smaller one. ``newspaper`` is a dot pattern, not noise: see :func:`_proxy_newspaper`.
    """
    h, w, _ = image.shape
    half = _expected_half_range(field, h * w / scale**2)

    def styled(noise_field: np.ndarray) -> np.ndarray:
        return add_noise(image, Noise(noise_field, -half, half, 0, (h, w)), i, style)

    y = styled(field)
    # P(t) = t C(t) - (sum of n below t) from the noise's histogram, on _BINS + 1 points of
    # t in [-1, 0] (n's lower half: P vanishes below -1 and v in [0, 1] never needs t > 0).
    codes = np.clip((field.astype(np.int32) + half) * _BINS // half, 0, 2 * _BINS - 1)
    counts = np.bincount(codes.ravel(), minlength=2 * _BINS)[:_BINS]
    centres = (np.arange(_BINS) + 0.5) / _BINS - 1
    below = np.concatenate([[0.0], np.cumsum(counts)]) / field.size
    moment = np.concatenate([[0.0], np.cumsum(counts * centres)]) / field.size
    grid = np.arange(_BINS + 1) / _BINS - 1
    partial = np.maximum(grid * below - moment, 0.0).astype(np.float32)

    def p_of(t: np.ndarray) -> np.ndarray:
        """P(clip(t, -1, 0)), read from the table at the nearest grid point (P is smooth: its
        slope C(t) is at most 1/2 on t <= 0, so the error is below 1/4096; P = 0 below -1)."""
        position = np.clip(t, -1.0, 0.0)
        position += 1
        position *= _BINS
        position += 0.5
        return np.take(partial, position.astype(np.int32))

    def clip_mean(v: np.ndarray, amplitude: np.ndarray | np.float32) -> np.ndarray:
        safe = np.maximum(amplitude, np.float32(1e-6))
        mean = p_of(-v / safe)
        mean -= p_of((v - 1) / safe)
        mean *= amplitude
        mean += v
        return mean

    if style == "modern":
        # v is the image and A the intensity: mu is a function of the value, read from a table.
        levels = np.linspace(0.0, 1.0, _LEVELS + 1, dtype=np.float32)
        index = image * np.float32(_LEVELS)
        index += 0.5
        mean = np.take(clip_mean(levels, np.float32(i)), index.astype(np.int32))
    else:
        v = styled(np.zeros_like(field))
        step = np.full_like(field, max(1, half // 64))
        inverse_step = np.float32(half / float(step[0, 0]))
        mean = clip_mean(v, np.maximum(styled(step) - v, v - styled(-step)) * inverse_step)
    gain = downscaled_noise_gain(scale)
    if style == "analog":
        gain *= _blurred_noise_gain(_ANALOG_SIGMA, scale)
    return cv2.addWeighted(y, gain, mean, 1.0 - gain, 0.0)


def grain_pair(image: np.ndarray, *, grain_intensity: float, grain_scale: float, grain_style: str,
               rng: np.random.Generator, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Two antithetic full-strength grains of a proxy: the style with the noise ``n`` and with
    ``-n`` (equally likely), the field normalised by the range expected at full resolution. Their
    mean and half difference are the grain's local mean and its per-pixel deviation as the full
    image has them, before a downscale averages the deviation away (:mod:`effects.proxy`). Draws
    exactly what :func:`grain` draws. ``newspaper`` (a dot pattern, not noise) gives its print
    twice."""
    if grain_style not in _STYLES:
        raise ValueError(f"grain_style must be one of {', '.join(_STYLES)}; got {grain_style!r}")
    h, w, _ = image.shape
    field = _noise_field(h, w, grain_scale, rng)
    if grain_style == "newspaper":
        print_ = _proxy_newspaper(image, Noise(field, int(field.min()), int(field.max()), 0, (h, w)),
                                  grain_intensity, scale)
        return print_, print_
    half = _expected_half_range(field, h * w / scale**2)
    return tuple(add_noise(image, Noise(f, -half, half, 0, (h, w)), grain_intensity, grain_style)
                 for f in (field, -field))


def add_noise(image: np.ndarray, noise: Noise, grain_intensity: float, grain_style: str) -> np.ndarray:
    """Rows ``noise.top ..`` of :func:`grain` with the given noise field (the style is checked)."""
    return _STYLES[grain_style](image, noise, grain_intensity)


def reach(grain_style: str) -> int:
    """Rows of neighbours a style reads on each side of a pixel (its noise blur; 0 for the others)."""
    return _reach(_ANALOG_SIGMA) if grain_style == "analog" else 0
