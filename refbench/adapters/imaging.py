"""Frame preprocessing that repository-based models (ReferDINO, MPG-SAM 2) do with torchvision, written so it runs
where torchvision is absent (refbench's CPU test environment) and gives the same tensors bit for bit.

The official scripts build ``T.Compose([T.Resize(size), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])``
on PIL RGB images. torchvision's PIL path is:

* ``Resize(int s)``: the shorter side becomes ``s`` and the longer ``int(s * long / short)`` (truncated, as
  ``torchvision.transforms.functional._compute_resized_output_size``); ``Resize([h, w])``: exactly ``(h, w)``,
  aspect not kept. Then ``PIL.Image.resize((w, h), BILINEAR)`` (PIL always antialiases), and the image itself
  when the size is unchanged;
* ``ToTensor``: ``(H, W, 3) uint8`` -> ``(3, H, W)`` float32 divided by 255;
* ``Normalize``: ``(x - mean[:, None, None]) / std[:, None, None]`` in float32.

:func:`transform` does these steps in this order with the same float32 operations; ``tests/adapters/
test_imaging_torchvision.py`` checks equality against torchvision itself in the ``sam`` environment (which has it).
"""

from __future__ import annotations

from typing import Any, Sequence

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resized_size(height: int, width: int, size: int | Sequence[int]) -> tuple[int, int]:
    """``(h, w)`` that torchvision's ``Resize(size)`` gives an image of ``(height, width)`` (module doc)."""
    if isinstance(size, int):
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = size, int(size * long / short)
        new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
        return new_h, new_w
    if len(size) == 1:
        return resized_size(height, width, int(size[0]))
    return int(size[0]), int(size[1])


def resize(img: Any, size: int | Sequence[int]) -> Any:
    """A PIL image resized as ``T.Resize(size)`` does (bilinear)."""
    from PIL import Image

    h, w = resized_size(img.height, img.width, size)
    if (h, w) == (img.height, img.width):
        return img
    return img.resize((w, h), Image.BILINEAR)


def transform(img: Any, size: int | Sequence[int], mean: Sequence[float] = IMAGENET_MEAN,
              std: Sequence[float] = IMAGENET_STD) -> Any:
    """``(3, h, w)`` float32 tensor: ``T.Compose([T.Resize(size), T.ToTensor(), T.Normalize(mean, std)])(img)``."""
    import numpy as np
    import torch

    arr = np.asarray(resize(img.convert("RGB") if img.mode != "RGB" else img, size), dtype=np.uint8)
    t = torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous().to(torch.float32).div(255)
    m = torch.as_tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32).view(-1, 1, 1)
    return t.sub_(m).div_(s)


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "resize", "resized_size", "transform"]
