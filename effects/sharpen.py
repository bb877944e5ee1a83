"""Sharpen effect: basic box-Laplacian, smart (bilateral + PIL Sharpness) or CAS (docs/decisions.md §1.11).

basic follows EllangoK's Sharpen node, smart and cas follow cubiq's
ComfyUI_essentials ImageSmartSharpen / ImageCAS, quirks included (docs/decisions.md (a)).
"""

import cv2
import numpy as np

from effects._filters import scaled_kernel

# PIL's ImageFilter.SMOOTH kernel (sum 13), used by PIL/kornia Sharpness.
#: fal's ``sharpen_mode`` enum.
SHARPEN_MODES = ("basic", "smart", "cas")
_SMOOTH = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], dtype=np.float32) / 13
_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=np.uint8)
_DIAGONALS = np.array([[1, 0, 1], [0, 0, 0], [1, 0, 1]], dtype=np.uint8)
_NEIGHBOURS = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=np.float32)
_ZERO_BORDER = {"borderType": cv2.BORDER_CONSTANT, "borderValue": 0}


def sharpen(image: np.ndarray, *, sharpen_mode: str, sharpen_radius: int, sharpen_alpha: float,
            noise_radius: int, preserve_edges: float, smart_sharpen_strength: float,
            smart_sharpen_ratio: float, cas_amount: float, scale: float = 1.0) -> np.ndarray:
    """Sharpen ``image`` with one of three methods (per channel, no colour conversion).

    basic (uses sharpen_radius r, sharpen_alpha α)
        K = 2r+1 and S = sum of the KxK window around the pixel (zeros outside
        the image): ``out = clip(α((K²+1)x - S))``. This is the node's kernel
        (all weights -α, centre α·K²). Borders brighten strongly (the zero
        padding) and flat areas become α·x, so α ≠ 1 also scales brightness.
    smart (uses noise_radius, preserve_edges, smart_sharpen_strength f,
    smart_sharpen_ratio ρ)
        ``blurred = cv2.bilateralFilter(x, d=noise_radius, sigmaColor=pe,
        sigmaSpace=0.3((noise_radius-1)/2 - 1) + 0.8)`` when noise_radius > 1,
        else x, with ``pe = max(1 - preserve_edges, 0.05)`` if preserve_edges
        > 0, else 0. pe = 0 leaves x unblurred: OpenCV >= 4.14 (5.0 is
        installed) returns the input for sigmaColor <= 1e-6; older OpenCV blurred
        with sigma 1 instead. OpenCV uses the radius floor(d/2), so an even d
        acts like d-1.
        ``sharpened = clip(D + f(x - D))`` when f > 0, else x, where D is the
        PIL "SMOOTH" 3x3 average [[1,1,1],[1,5,1],[1,1,1]]/13 of x and the
        1-px image border keeps x (PIL ImageEnhance.Sharpness as ported by
        kornia). Note it sharpens the original x, not ``blurred``.
        ``out = clip(ρ·sharpened + (1-ρ)·blurred)``.
    cas (uses cas_amount)
        Contrast-adaptive sharpening on the 3x3 neighbourhood a b c / d e f /
        g h i, zeros outside the image:
        ``mn = min(b,d,e,f,h) + min(a,c,g,i)``, ``mx = max(b,d,e,f,h) +
        max(a,c,g,i)``, ``amp = sqrt(min(mn, 2 - mx) / (mx + 1e-5))``,
        ``w = -amp(0.125 + 0.075·amount)``,
        ``out = clip(((b+d+f+h)w + e) / (1 + 4w))``. The zero padding makes
        mn = 0 on the 1-px border, so border pixels pass through unchanged.
        (The reference clamps each min at >= 0 and each max at <= 1, no-ops
        for inputs in [0, 1].)

    Parameters
    ----------
    image : np.ndarray
        float32 HxWx3 in [0, 1]; not modified.
    sharpen_mode : str
        "basic", "smart" or "cas".
    sharpen_radius : int
        basic: r, 1..15.
    sharpen_alpha : float
        basic: α, 0.1..5.
    noise_radius : int
        smart: bilateral diameter, 1..25 (1 = no denoising).
    preserve_edges : float
        smart: 0..1, higher keeps more edges (smaller sigmaColor).
    smart_sharpen_strength : float
        smart: Sharpness factor f, 0..25. Both 0 and 1 leave x: the node skips
        f = 0, where PIL would return the smoothed image D.
    smart_sharpen_ratio : float
        smart: weight ρ of the sharpened image against the denoised one, 0..1.
    cas_amount : float
        cas: 0..1.
    scale : float
        Size of ``image`` relative to the image the radii are meant for, in
        (0, 1]. Below 1 (a preview proxy) every kernel acts as it does on the
        downscaled full image (:func:`_proxy_sharpen`).

    Returns
    -------
    np.ndarray
        New float32 HxWx3 array in [0, 1].
    """
    if sharpen_mode not in SHARPEN_MODES:
        raise ValueError(f"sharpen_mode must be one of {', '.join(SHARPEN_MODES)}; "
                         f"got {sharpen_mode!r}")
    if scale != 1:
        return _proxy_sharpen(image, sharpen_mode, sharpen_radius, sharpen_alpha, noise_radius,
                              preserve_edges, smart_sharpen_strength, smart_sharpen_ratio,
                              cas_amount, scale)
    if sharpen_mode == "basic":
        return _basic(image, sharpen_radius, sharpen_alpha)
    if sharpen_mode == "smart":
        return _smart(image, noise_radius, preserve_edges, smart_sharpen_strength, smart_sharpen_ratio)
    return _cas(image, cas_amount)


def _basic(image: np.ndarray, radius: int, alpha: float) -> np.ndarray:
    size = 2 * radius + 1
    window_sum = cv2.boxFilter(image, -1, (size, size), normalize=False, borderType=cv2.BORDER_CONSTANT)
    out = cv2.addWeighted(image, alpha * (size * size + 1), window_sum, -alpha, 0.0)
    return np.clip(out, 0.0, 1.0, out=out)


def _smart(image: np.ndarray, noise_radius: int, preserve_edges: float, strength: float,
           ratio: float, scale: float = 1.0) -> np.ndarray:
    sigma_color = max(1.0 - preserve_edges, 0.05) if preserve_edges > 0 else 0.0
    if noise_radius > 1 and sigma_color > 0:
        sigma_space = 0.3 * ((noise_radius - 1) * 0.5 - 1) + 0.8
        if scale == 1:
            blurred = cv2.bilateralFilter(image, noise_radius, sigma_color, sigma_space)
        else:
            blurred = _proxy_bilateral(image, noise_radius // 2, sigma_color, sigma_space, scale)
    else:
        blurred = image

    if strength > 0:
        smooth = _SMOOTH if scale == 1 else scaled_kernel(_SMOOTH, scale)
        degenerate = cv2.filter2D(image, -1, smooth)
        sharpened = cv2.addWeighted(image, strength, degenerate, 1.0 - strength, 0.0)
        np.clip(sharpened, 0.0, 1.0, out=sharpened)
        if scale == 1:
            # PIL leaves the 1-px border unfiltered, where D = x gives x back.
            sharpened[[0, -1]] = image[[0, -1]]
            sharpened[:, [0, -1]] = image[:, [0, -1]]
    else:
        sharpened = image

    out = cv2.addWeighted(sharpened, ratio, blurred, 1.0 - ratio, 0.0)
    return np.clip(out, 0.0, 1.0, out=out)


def _proxy_bilateral(image: np.ndarray, radius: int, sigma_color: float, sigma_space: float,
                     scale: float) -> np.ndarray:
    """OpenCV's bilateral filter (window radius ``radius``) as it acts on a proxy: the window and
    sigmaSpace times ``scale``. A window under 1.5 proxy pixels is all but one pixel, where the
    colour term hardly matters: there its spatial gaussian alone, resampled like any kernel."""
    if radius * scale >= 1.5:
        return cv2.bilateralFilter(image, 2 * int(round(radius * scale)) + 1, sigma_color,
                                   sigma_space * scale)
    offsets = np.arange(-radius, radius + 1)
    spatial = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma_space**2))
    spatial[offsets[:, None] ** 2 + offsets[None, :] ** 2 > radius**2] = 0  # OpenCV's round window
    kernel = scaled_kernel(spatial / spatial.sum(), scale)
    return cv2.filter2D(image, -1, kernel)


def _cas(image: np.ndarray, amount: float, scale: float = 1.0) -> np.ndarray:
    mn = cv2.erode(image, _CROSS, **_ZERO_BORDER)
    mn += cv2.erode(image, _DIAGONALS, **_ZERO_BORDER)
    mx = cv2.dilate(image, _CROSS, **_ZERO_BORDER)
    mx += cv2.dilate(image, _DIAGONALS, **_ZERO_BORDER)
    taps = _NEIGHBOURS if scale == 1 else scaled_kernel(_NEIGHBOURS, scale)
    neighbours = cv2.filter2D(image, -1, taps, borderType=cv2.BORDER_CONSTANT)

    # amp = sqrt(min(mn, 2 - mx) / (mx + 1e-5)), computed in place in mn.
    np.minimum(mn, 2.0 - mx, out=mn)
    mx += 1e-5
    np.divide(mn, mx, out=mn)
    np.sqrt(mn, out=mn)
    weight = mn
    weight *= -(0.125 + 0.075 * amount)
    # out = (neighbours * w + e) / (1 + 4w); 1 + 4w >= 0.2 since amp <= 1.
    neighbours *= weight
    neighbours += image
    weight *= 4.0
    weight += 1.0
    out = np.divide(neighbours, weight, out=neighbours)
    return np.clip(out, 0.0, 1.0, out=out)


def _proxy_sharpen(image: np.ndarray, mode: str, radius: int, alpha: float, noise_radius: int,
                   preserve_edges: float, strength: float, ratio: float, amount: float,
                   scale: float) -> np.ndarray:
    """The three methods on a proxy ``scale`` times the size of the full image.

    Each formula stays; its kernels are the full-resolution ones with their taps moved to
    ``offset * scale`` (:func:`effects._filters.scaled_kernel`, sum and variance kept), so a
    sharpen boosts only the detail that survives the downscale, as much as the full image's
    sharpen boosts it there. basic: ``clip(α(x + K²(x - M x)))`` with M the scaled KxK box mean.
    smart: the PIL smoothing kernel scaled, the 1-px border rule dropped (it covers a fraction of
    a proxy pixel), the bilateral filter as :func:`_proxy_bilateral`. cas: the four-neighbour sum
    scaled; the local contrast (min and max) still from the proxy's own 3x3 neighbourhood.
    What the proxy cannot show is the clipping of detail finer than its pixels: strong basic
    sharpening (large α·K²) clips much of the full image, and its downscaled mean differs.
    """
    if mode == "basic":
        size = 2 * radius + 1
        box = scaled_kernel(np.full(size, 1.0 / size), scale)
        mean = cv2.sepFilter2D(image, -1, box, box, borderType=cv2.BORDER_CONSTANT)
        out = cv2.addWeighted(image, alpha * (size * size + 1), mean, -alpha * size * size, 0.0)
        return np.clip(out, 0.0, 1.0, out=out)
    if mode == "smart":
        return _smart(image, noise_radius, preserve_edges, strength, ratio, scale)
    return _cas(image, amount, scale)
