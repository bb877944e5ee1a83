"""Chromatic aberration: an integer wrap-around shift per colour channel (docs/decisions.md §1.3).

Each of R, G, B is rolled independently, like the reference node's ``torch.roll``: content leaving one
edge re-enters at the opposite edge (no padding, no interpolation). That wrap-around shows
opposite-edge content at the borders; it is kept for fal compatibility (docs/decisions.md (a)).
"""
from __future__ import annotations

import numpy as np


#: fal's ``*_direction`` enum.
DIRECTIONS = ("horizontal", "vertical")


def _roll_into(dst: np.ndarray, src: np.ndarray, shift: int, axis: int) -> None:
    """``dst = np.roll(src, shift, axis)`` for 2-D views, written in place with two slice copies."""
    n = src.shape[axis]
    shift %= n
    if shift == 0:
        dst[...] = src
        return
    head = [slice(None), slice(None)]
    tail = [slice(None), slice(None)]
    head[axis], tail[axis] = slice(shift, None), slice(None, n - shift)
    dst[tuple(head)] = src[tuple(tail)]
    head[axis], tail[axis] = slice(None, shift), slice(n - shift, None)
    dst[tuple(head)] = src[tuple(tail)]


def _subpixel_roll_into(dst: np.ndarray, src: np.ndarray, shift: float, axis: int) -> None:
    """``dst = src`` rolled by a fractional ``shift`` (wrapping around like :func:`_roll_into`):
    ``dst[j] = src(j - shift)`` read between samples with the 3-lobe Lanczos kernel (the filter the
    proxy itself was made with), i.e. the weighted sum of the six whole-pixel rolls around the
    shift, weights normalised to sum 1."""
    whole = int(np.floor(shift))
    frac = shift - whole
    if frac == 0:
        _roll_into(dst, src, whole, axis)
        return
    offsets = np.arange(-2, 4)
    weights = np.sinc(frac - offsets) * np.sinc((frac - offsets) / 3)
    weights /= weights.sum()
    rolled = np.empty_like(src)
    dst[...] = 0
    for k, weight in zip(offsets, weights):
        _roll_into(rolled, src, whole + int(k), axis)
        dst += np.float32(weight) * rolled


def chromatic(image: np.ndarray, *, red_shift: int, red_direction: str, green_shift: int,
              green_direction: str, blue_shift: int, blue_direction: str,
              scale: float = 1.0) -> np.ndarray:
    """Shift each colour channel by a whole number of pixels, wrapping around the image edges.

    For a channel with shift ``s``:

    * ``"horizontal"``: ``out[i, j] = in[i, (j - s) mod W]``; positive ``s`` moves content **right**.
    * ``"vertical"``: ``out[i, j] = in[(i + s) mod H, j]``; positive ``s`` moves content **up**
      (the node negates vertical shifts so that positive means up).

    Shifts larger than the image wrap around completely (``s mod W`` or ``s mod H``), so images of
    width or height 1 are returned unchanged along that axis.

    On a downscaled proxy (``scale`` < 1) the shift is ``s * scale`` proxy pixels, generally
    fractional: the channel is rolled by it with the same wrap-around, reading between pixels with
    a Lanczos kernel (sharp, unlike linear interpolation, and exact on whole pixels). Its small
    overshoot at hard edges is clipped.

    Parameters
    ----------
    image : np.ndarray
        float32 HxWx3 in [0, 1]; not modified.
    red_shift, green_shift, blue_shift : int
        Shift in pixels of the full-resolution image, -20..20. 0 leaves the channel untouched.
    red_direction, green_direction, blue_direction : str
        ``"horizontal"`` or ``"vertical"``.
    scale : float
        Size of ``image`` relative to the image the shifts are meant for, in (0, 1].

    Returns
    -------
    np.ndarray
        New float32 HxWx3 array. At scale 1 values are only moved, so they stay in [0, 1] without
        a clip.
    """
    out = np.empty_like(image)
    channels = ((red_shift, red_direction), (green_shift, green_direction),
                (blue_shift, blue_direction))
    for c, (shift, direction) in enumerate(channels):
        if direction not in DIRECTIONS:
            name = ("red", "green", "blue")[c]
            raise ValueError(f"{name}_direction must be horizontal or vertical; got {direction!r}")
        # The node negates vertical shifts: positive moves content up.
        shift, axis = (-shift, 0) if direction == "vertical" else (shift, 1)
        if scale == 1:
            _roll_into(out[:, :, c], image[:, :, c], shift, axis)
        else:
            _subpixel_roll_into(out[:, :, c], image[:, :, c], shift * scale, axis)
    return out if scale == 1 else np.clip(out, 0.0, 1.0, out=out)
