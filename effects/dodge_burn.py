"""Dodge & burn effect with the image as its own mask (docs/decisions.md §1.9, docs/decisions.md (c)).

The reference node blends with a separate mask image, which fal's schema does
not expose. This project uses the image itself as the mask; ``mask`` below is
the one place to change if a live-API comparison points to another source
(e.g. luminance, or a constant 1).
"""

import numpy as np

#: fal's ``dodge_burn_mode`` enum.
DODGE_BURN_MODES = ("dodge", "burn", "dodge_and_burn", "burn_and_dodge", "color_dodge", "color_burn",
                    "linear_dodge", "linear_burn")
_EPS = 1e-7  # the node's guard against division by zero in dodge/burn


def mask(image: np.ndarray) -> np.ndarray:
    """Mask source of docs/decisions.md (c): the image itself (read only, not copied)."""
    return image


# Both helpers evaluate the node's expression in the node's float32 order,
# working in place where possible (fresh temporaries cost more than the maths).
def _dodge(x: np.ndarray, m_i: np.ndarray) -> np.ndarray:
    """``x / (1 - mI + eps)``."""
    out = np.subtract(1, m_i, dtype=np.float32)
    out += _EPS
    return np.divide(x, out, out=out)


def _burn(x: np.ndarray, m_i: np.ndarray) -> np.ndarray:
    """``1 - (1 - x) / (mI + eps)``."""
    out = np.subtract(1, x, dtype=np.float32)
    out /= m_i + np.float32(_EPS)
    return np.subtract(1, out, out=out)


def dodge_burn(image: np.ndarray, *, dodge_burn_intensity: float, dodge_burn_mode: str) -> np.ndarray:
    """Dodge (brighten) and/or burn (darken) by the mask m = ``mask(image)``.

    With I = intensity, ε = 1e-7 and ``mI = m * I`` (§1.9):

    - dodge:          ``x / (1 - mI + ε)``
    - color_dodge:    ``x / (1 - mI)`` where m < 1, else x
    - linear_dodge:   ``x + mI``
    - burn:           ``1 - (1 - x) / (mI + ε)``
    - color_burn:     ``1 - (1 - x) / mI`` where m > 0, else x
    - linear_burn:    ``x - mI``
    - dodge_and_burn: burn(dodge(x)), burn_and_dodge: dodge(burn(x)), with the
      plain dodge/burn and no clip in between (as in the node).

    The result is clipped to [0, 1] (the node leaves that to the save step)
    and NaN becomes 0: color_burn at I = 0 computes 0/0 where x = 1 and m > 0,
    so with the self-mask that case turns the whole image black. Intensity 0
    is the exact identity for color_dodge, linear_dodge and linear_burn; dodge
    then divides by 1 + ε, which float32 rounds to 1 + 2**-23.

    Parameters
    ----------
    image : np.ndarray
        float32 HxWx3 in [0, 1]; not modified.
    dodge_burn_intensity : float
        I, 0..1.
    dodge_burn_mode : str
        One of the eight mode names above.

    Returns
    -------
    np.ndarray
        New float32 HxWx3 array in [0, 1].
    """
    m = mask(image)
    m_i = m * dodge_burn_intensity
    x = image
    with np.errstate(divide="ignore", invalid="ignore"):
        if dodge_burn_mode == "dodge":
            out = _dodge(x, m_i)
        elif dodge_burn_mode == "burn":
            out = _burn(x, m_i)
        elif dodge_burn_mode == "dodge_and_burn":
            out = _burn(_dodge(x, m_i), m_i)
        elif dodge_burn_mode == "burn_and_dodge":
            out = _dodge(_burn(x, m_i), m_i)
        elif dodge_burn_mode == "color_dodge":
            out = np.where(m < 1, x / (1 - m_i), x)
        elif dodge_burn_mode == "color_burn":
            out = np.where(m > 0, 1 - (1 - x) / m_i, x)
            # The only mode that can produce 0/0; np.clip would keep the NaN.
            np.nan_to_num(out, copy=False, nan=0.0)
        elif dodge_burn_mode == "linear_dodge":
            out = x + m_i
        elif dodge_burn_mode == "linear_burn":
            out = x - m_i
        else:
            raise ValueError(f"dodge_burn_mode: unknown mode {dodge_burn_mode!r}; allowed: "
                             f"{', '.join(DODGE_BURN_MODES)}")
    return np.clip(out, 0.0, 1.0, out=out)
