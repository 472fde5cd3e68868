"""Ground truth as bit-packed words: the one place where per-frame COCO RLE lists become scorer words.

The scorers work on masks packed along W into 64-bit words (:mod:`refbench.metrics._bits`: pixel x of a row
is bit x % 64 of word x // 64). :func:`rle_list_words` turns one object's per-frame RLE list into such words.
Today it decodes each frame with pycocotools (:func:`refbench.data.mevis.decode_rle`, dense uint8) and packs
it with ``numpy.packbits``; a decoder that writes COCO runs (column-major) straight into words replaces this
function and nothing else: the loaders' ``gt_words`` (the union of an expression's objects as an OR of words,
each object decoded once per video) and the scorers take its output as it is.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np


def rle_list_words(
    rles: Sequence[Any], size: tuple[int, int], problem: Callable[[int, tuple[int, ...]], Exception] | None = None
) -> np.ndarray:
    """(T, H, ceil(W / 64)) uint64 words of a per-frame list of COCO RLEs (a falsy entry is an empty frame).

    size: (H, W) every RLE must have; ``problem(t, shape)`` builds the exception raised for a frame of another
    size (default ValueError)."""
    from refbench.data.mevis import decode_rle
    from refbench.metrics._bits import n_words, pack_numpy

    h, w = size
    out = np.zeros((len(rles), h, n_words(w)), dtype=np.uint64)
    for t, rle in enumerate(rles):
        if not rle:
            continue
        m = decode_rle(rle)
        if m.shape != (h, w):
            if problem is not None:
                raise problem(t, m.shape)
            raise ValueError(f"frame {t}: RLE size {m.shape}, expected {(h, w)}")
        pack_numpy(m, out=out[t])
    return out


__all__ = ["rle_list_words"]
