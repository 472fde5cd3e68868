"""Referring-expression-segmentation predictions: ``{sample_id: COCO RLE or null}`` JSON.

One binary mask per sample as a COCO RLE, ``{"size": [H, W], "counts": str}`` (compressed, as
``pycocotools.mask.encode`` writes it and as Sa2VA's ``refcoco_eval.py`` ``mask_to_rle`` stores it) or with
``counts`` a list of run lengths (uncompressed RLE). ``null`` means the model returned no mask: the evaluator
scores it as an empty mask (LISA) or skips it by Sa2VA's rule (``RESDataset.evaluate``), see
:mod:`refbench.evaluate.res`.

The file is read and checked once (structure only); masks are decoded lazily, one sample at a time, by
:meth:`RESPredictions.mask`, which also checks that the RLE size equals the ground truth's. Errors raise
:class:`~refbench.data.base.PredictionError` naming the file and the sample id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Union

import numpy as np

from refbench.data.base import PredictionError, read_json_object
from refbench.rle import check_rle, decode_rle

PathLike = Union[str, Path]


def _check_rle(value: Any, path: Path, sid: str) -> None:
    """Every RLE of the file is checked when it is read (:func:`refbench.rle.check_rle`: ``size`` two positive
    ints, well-formed ``counts`` whose runs add up to H x W), also those of ids the evaluator then ignores."""
    if value is None:
        return
    where = f"{path}: sample {sid!r}"
    if not isinstance(value, dict) or "size" not in value or not isinstance(value.get("counts"), (str, list)):
        raise PredictionError(f"{where}: expected a COCO RLE {{'size': [H, W], 'counts': str or [int, ...]}} or null")
    check_rle(value, where, None, PredictionError)


class RESPredictions:
    """Masks of one prediction file, decoded on demand.

    ``ids()`` lists the sample ids in file order; ``is_null(sid)`` says whether the model returned no mask;
    ``mask(sid, height, width)`` decodes one RLE to ``(H, W) uint8`` (0/1) after checking its size.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        data = read_json_object(
            self.path, PredictionError, "prediction file not found",
            "expected a JSON object {sample_id: COCO RLE or null}",
        )
        for sid, value in data.items():
            _check_rle(value, self.path, sid)
        self._data: dict[str, dict[str, Any] | None] = data

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, sample_id: object) -> bool:
        return sample_id in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def ids(self) -> list[str]:
        return list(self._data)

    def is_null(self, sample_id: str) -> bool:
        """True when the file stores ``null`` for the sample (the model returned no mask)."""
        return self._data[sample_id] is None

    def size(self, sample_id: str) -> tuple[int, int] | None:
        """``(H, W)`` of the stored RLE, None for a null prediction."""
        rle = self._data[sample_id]
        return None if rle is None else (int(rle["size"][0]), int(rle["size"][1]))

    def mask(self, sample_id: str, height: int, width: int) -> np.ndarray | None:
        """Decode one prediction: ``(H, W) uint8`` with values 0/1, or None for ``null``.

        Raises PredictionError when the id is absent, the RLE size differs from ``(height, width)`` (the GT size)
        or the RLE does not decode.
        """
        if sample_id not in self._data:
            raise PredictionError(f"{self.path}: no prediction for sample {sample_id!r}")
        rle = self._data[sample_id]
        if rle is None:
            return None
        size = (int(rle["size"][0]), int(rle["size"][1]))
        if size != (int(height), int(width)):
            raise PredictionError(
                f"{self.path}: sample {sample_id!r}: mask size {list(size)} (H, W) differs from the ground truth's "
                f"{[int(height), int(width)]}"
            )
        return decode_rle(rle, f"{self.path}: sample {sample_id!r}", size, PredictionError)


def read_res_predictions(path: PathLike) -> RESPredictions:
    """Open a ``{sample_id: COCO RLE or null}`` JSON file (structure checked now, masks decoded later)."""
    return RESPredictions(path)


__all__ = ["RESPredictions", "read_res_predictions"]
