"""Tiling, batching and seam blending around a 4x tile model (numpy only, no onnxruntime here).

The model is any callable ``run(tiles, z, noise) -> out`` with

* ``tiles`` float32 ``[B, 3, T, T]`` in [0, 1],
* ``z`` float32 ``[B, z_dim]`` style latents,
* ``noise`` float32 ``[B, 3, T, T]`` input noise augmentation, already scaled,
* ``out`` float32 ``[B, 3, 4T, 4T]`` in [0, 1] (the AuraSR graph clamps its output),

where ``B`` is a fixed batch size (the graph is built for one static batch).

What the reference ``upscale_4x`` / ``upscale_4x_overlapped`` do, and what is reproduced here:

1. Pad bottom/right by ``(T - n mod T) mod T`` with mirror reflection (edge not repeated).
2. Cut T x T tiles in row-major order, run them in batches, place output tile ``k`` at row
   ``k // cols``, column ``k % cols``, crop to ``4h x 4w``.
3. Overlapped mode: a second pass on the padded image reflect-padded by ``T/2`` on every side, its
   output cropped by ``4 * T/2`` per side, blended with pass 1 by the weights of
   :func:`blend_weights_1d` (checkerboard of Gaussian bumps), no clamp afterwards.
4. ``floor(x * 255)`` to uint8 (:func:`to_uint8`).

Deviation, documented: the reference (torch ``reflect``) fails when a side is <= T/2 px, because the
pad would reach past the mirror. Here reflection simply continues, as numpy's ``reflect`` does: the
padded index sequence is the triangle wave 0, 1, ..., n-1, n-2, ..., 0, 1, ... (period 2(n-1)), and a
1 px side is repeated. Where the reference works (pad < n) the two agree exactly.

Random draws (from the caller's ``np.random.Generator``, so one seed gives the same bytes):
for pass 1 then pass 2, first ``z`` for every tile of the pass in tile order
(``standard_normal((tiles, z_dim), float32)``), then per batch ``noise_scale * standard_normal(
(real tiles in batch, 3, T, T), float32)``. Padded batch slots get zeros and their outputs are dropped,
so the output does not depend on the batch size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

RunFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
ProgressFn = Callable[[int, int], None]

SCALE = 4
NOISE_SCALE = 0.001


def pad_bottom_right(image: np.ndarray, tile: int) -> np.ndarray:
    """Reflect-pad an ``[H, W, C]`` image at the bottom and right up to multiples of ``tile``.

    Pads ``(tile - n mod tile) mod tile`` rows/columns. Mirror reflection without repeating the edge
    pixel (torch/numpy ``reflect``); for sides too short to mirror once, reflection repeats
    (see the module docstring).
    """
    h, w = image.shape[:2]
    pad_h, pad_w = -h % tile, -w % tile
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")


def tile_counts(height: int, width: int, tile: int, overlapped: bool) -> tuple[int, int]:
    """Number of tiles of pass 1 and pass 2 (0 when not overlapped) for an ``height x width`` image."""
    rows, cols = -(-height // tile), -(-width // tile)
    return rows * cols, (rows + 1) * (cols + 1) if overlapped else 0


def blend_weights_1d(length: int, out_tile: int, offset: int = 0) -> np.ndarray:
    """Separable factor of the overlap blend weight map, periodic with period ``out_tile``.

    One output tile's weight is ``w(u, v) = exp(-16 (u^2 + v^2)) / max`` with
    ``u, v = linspace(-1, 1, out_tile)`` (the reference's ``exp(-d^2 / (2 * 0.5^2))^8``), which factors
    into ``g(u) g(v)`` with ``g(u) = exp(-16 u^2) / max(exp(-16 u^2))``. This returns ``g`` tiled over
    ``length`` pixels, starting ``offset`` pixels into the period: offset 0 gives pass 1's factor
    (peaks at pixels out_tile/2 - 1 and out_tile/2 of each period), offset ``out_tile / 2`` gives pass 2's
    (peaks on pass 1's tile borders). float32.
    """
    u = np.linspace(-1.0, 1.0, out_tile, dtype=np.float32)
    g = np.exp(np.float32(-16.0) * u * u)
    g /= g.max()
    return np.take(g, (np.arange(length) + offset) % out_tile)


def blend(pass1: np.ndarray, pass2: np.ndarray, out_tile: int) -> np.ndarray:
    """Blend two aligned ``[H, W, C]`` passes: ``(P1 W_reg + P2 W_off) / (W_reg + W_off)``, in place.

    ``W_reg(y, x) = g(y) g(x)`` and ``W_off(y, x) = g(y + s) g(x + s)`` with ``g`` from
    :func:`blend_weights_1d` and ``s = out_tile / 2``; both passes start at the image origin. float32
    throughout (the normaliser falls to about 2.25e-7, below fp16 range). Overwrites and returns
    ``pass1``; no clamp.
    """
    h, w = pass1.shape[:2]
    half = out_tile // 2
    w_reg = np.outer(blend_weights_1d(h, out_tile), blend_weights_1d(w, out_tile))[..., None]
    w_off = np.outer(blend_weights_1d(h, out_tile, half), blend_weights_1d(w, out_tile, half))[..., None]
    pass1 *= w_reg
    pass2 *= w_off
    pass1 += pass2
    pass1 /= w_reg + w_off
    return pass1


def _run_pass(
    padded: np.ndarray,
    run: RunFn,
    tile: int,
    batch: int,
    z_dim: int,
    rng: np.random.Generator,
    on_batch: Callable[[int], None],
) -> np.ndarray:
    """Run every tile of an already tile-aligned ``[H, W, 3]`` image; return the ``[4H, 4W, 3]`` canvas."""
    rows, cols = padded.shape[0] // tile, padded.shape[1] // tile
    count = rows * cols
    out_tile = SCALE * tile
    # Views indexed by (tile row, tile column): [rows, cols, T, T, 3].
    tiles_in = padded.reshape(rows, tile, cols, tile, 3).swapaxes(1, 2)
    canvas = np.empty((rows * out_tile, cols * out_tile, 3), np.float32)
    tiles_out = canvas.reshape(rows, out_tile, cols, out_tile, 3).swapaxes(1, 2)

    z_all = rng.standard_normal((count, z_dim), dtype=np.float32)
    slots = np.zeros((batch, 3, tile, tile), np.float32)
    z = np.zeros((batch, z_dim), np.float32)
    noise = np.zeros((batch, 3, tile, tile), np.float32)
    for start in range(0, count, batch):
        k = np.arange(start, min(start + batch, count))
        n = len(k)
        slots[:n] = tiles_in[k // cols, k % cols].transpose(0, 3, 1, 2)
        z[:n] = z_all[k]
        noise[:n] = NOISE_SCALE * rng.standard_normal((n, 3, tile, tile), dtype=np.float32)
        if n < batch:  # last batch: unused slots are zeros, their outputs dropped
            slots[n:] = 0.0
            z[n:] = 0.0
            noise[n:] = 0.0
        out = run(slots, z, noise)
        expected = (batch, 3, out_tile, out_tile)
        if out.shape != expected:
            raise ValueError(f"model output shape {out.shape} != expected {expected}")
        tiles_out[k // cols, k % cols] = out[:n].transpose(0, 2, 3, 1)
        on_batch(n)
    return canvas


def upscale_array(
    image: np.ndarray,
    run: RunFn,
    *,
    tile: int,
    batch: int,
    z_dim: int,
    rng: np.random.Generator,
    overlapped: bool = False,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """Upscale a float32 ``[H, W, 3]`` image in [0, 1] by 4 with a tile model, as the reference does.

    Parameters
    ----------
    image : ndarray
        float32 ``[H, W, 3]``, values in [0, 1], any ``H, W >= 1``.
    run : callable
        The tile model, see the module docstring.
    tile : int
        Input tile size T (``config.input_image_size``), even.
    batch : int
        Static batch size B of ``run``.
    z_dim : int
        Width of the style latent ``z``.
    rng : numpy.random.Generator
        Source of ``z`` and the input noise (draw order in the module docstring).
    overlapped : bool
        Add the half-tile-shifted second pass and blend (removes seams, about twice the work).
    progress : callable, optional
        ``progress(done_tiles, total_tiles)`` after every batch; the total counts both passes.

    Returns
    -------
    ndarray
        float32 ``[4H, 4W, 3]``. Values in [0, 1] up to float rounding of the blend.
    """
    h, w = image.shape[:2]
    total = sum(tile_counts(h, w, tile, overlapped))
    done = 0

    def on_batch(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    padded = pad_bottom_right(image, tile)
    pass1 = _run_pass(padded, run, tile, batch, z_dim, rng, on_batch)[: SCALE * h, : SCALE * w]
    if not overlapped:
        return pass1
    half = tile // 2
    shifted = np.pad(padded, ((half, half), (half, half), (0, 0)), mode="reflect")
    crop = SCALE * half
    pass2 = _run_pass(shifted, run, tile, batch, z_dim, rng, on_batch)[crop : crop + SCALE * h, crop : crop + SCALE * w]
    return blend(pass1, pass2, SCALE * tile)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """``floor(x * 255)`` as uint8 (the reference's truncating float-to-byte), clipped to [0, 255].

    Scales the float32 ``image`` in place on the way (it is left holding ``clip(x * 255)``): the
    caller hands over the canvas it owns, so no second canvas of 16x the input pixels is made.
    """
    np.multiply(image, np.float32(255.0), out=image)
    np.clip(image, 0.0, 255.0, out=image)
    return image.astype(np.uint8)
