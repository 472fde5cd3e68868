"""Ground truth as bit-packed words: the one place where per-frame COCO RLE lists become scorer words.

The scorers work on masks packed along W into 64-bit words (:mod:`refbench.metrics._bits`: pixel x of a row
is bit x % 64 of word x // 64). :func:`rle_list_words` turns one object's per-frame RLE list into such words:
every RLE is checked (:func:`refbench.rle.check_rle`: well-formed counts adding up to H x W, the frame's
size) and its column-major runs are written straight into words (:func:`refbench.rle.runs_to_words`), with
no dense mask and no transposed copy. The loaders' ``gt_words`` (the union of an expression's objects as an
OR of words, each object decoded once per video) and the scorers take its output as it is.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from refbench.errors import RefbenchInputError


def rle_list_words(rles: Sequence[Any], size: tuple[int, int], where: Callable[[int], str] = lambda t: f"frame {t}",
                   error: type[Exception] = RefbenchInputError) -> np.ndarray:
    """(T, H, ceil(W / 64)) uint64 words of a per-frame list of COCO RLEs (``None`` is an empty frame).

    size: (H, W) every RLE must have; ``where(t)`` names frame t in the ``error`` raised for a malformed RLE
    or one of another size."""
    from refbench.metrics._bits import n_words
    from refbench.rle import decode_rle_words

    h, w = size
    out = np.zeros((len(rles), h, n_words(w)), dtype=np.uint64)
    for t, rle in enumerate(rles):
        if rle is None:
            continue
        decode_rle_words(rle, where(t), size, error, out=out[t])
    return out


__all__ = ["rle_list_words"]
