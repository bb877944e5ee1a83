"""Minimal stand-in for ``torchvision`` so the ``aura_sr`` oracle imports without it.

``aura_sr`` 0.0.4 only touches ``transforms.ToTensor``, ``transforms.ToPILImage`` and
``utils.save_image`` (the last is imported, never called).  The CPU torch wheel used for the
oracle cannot import PyPI's torchvision, so these three are provided here with the torchvision
semantics the reference relies on: ToTensor = uint8 HWC -> float CHW / 255, ToPILImage on float
= ``floor(x * 255)`` (truncation) to uint8.
"""

import sys
import types

import numpy as np


def install() -> None:
    """Register the stub as ``torchvision`` unless a torchvision module is already imported."""
    if "torchvision" in sys.modules:
        return
    import torch
    from PIL import Image

    def to_tensor():
        def convert(img: Image.Image) -> torch.Tensor:
            a = np.asarray(img)
            a = a[:, :, None] if a.ndim == 2 else a
            return torch.from_numpy(a.transpose(2, 0, 1).astype(np.float32) / 255.0)
        return convert

    def to_pil_image():
        def convert(t: torch.Tensor) -> Image.Image:
            a = (t.detach().cpu().numpy() * 255.0).astype(np.uint8).transpose(1, 2, 0)
            return Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a)
        return convert

    def save_image(*args, **kwargs):
        raise NotImplementedError("torchvision stub: save_image is not available")

    tv = types.ModuleType("torchvision")
    tv.transforms = types.ModuleType("torchvision.transforms")
    tv.transforms.ToTensor = to_tensor
    tv.transforms.ToPILImage = to_pil_image
    tv.utils = types.ModuleType("torchvision.utils")
    tv.utils.save_image = save_image
    sys.modules.update({"torchvision": tv, "torchvision.transforms": tv.transforms,
                        "torchvision.utils": tv.utils})
