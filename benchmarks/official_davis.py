"""The davis2017-evaluation per-frame measures as the official code computes them, for the benchmarks' peers.

Written for these benchmarks after davisvideochallenge/davis2017-evaluation ``davis2017/metrics.py``
(``db_eval_iou``, ``f_measure``), using vos-benchmark's copy of ``_seg2bmap`` and skimage's ``disk``, as that
code does. Needs the ``bench`` extra.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def db_eval_iou(annotation: np.ndarray, segmentation: np.ndarray, void_pixels: np.ndarray | None = None) -> np.ndarray:
    """J per frame of (T, H, W) masks; 1 where the union (outside void) is empty."""
    annotation, segmentation = annotation > 0.5, segmentation > 0.5
    keep = np.ones_like(annotation) if void_pixels is None else np.logical_not(void_pixels > 0.5)
    inters = np.sum(segmentation & annotation & keep, axis=(-2, -1))
    union = np.sum((segmentation | annotation) & keep, axis=(-2, -1))
    j = inters / np.where(union == 0, 1, union)
    j[union == 0] = 1
    return j


def f_measure(fg: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None, bound_th: float = 0.008) -> float:
    """Boundary F of one (H, W) frame."""
    import cv2
    from skimage.morphology import disk
    from vos_benchmark.utils import _seg2bmap

    if void is not None:
        fg = fg * np.logical_not(void)
        gt = gt * np.logical_not(void)
    bound_pix = bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(fg.shape))
    fg_b, gt_b = _seg2bmap(fg), _seg2bmap(gt)
    fg_dil = cv2.dilate(fg_b.astype(np.uint8), disk(bound_pix).astype(np.uint8))
    gt_dil = cv2.dilate(gt_b.astype(np.uint8), disk(bound_pix).astype(np.uint8))
    gt_match, fg_match = gt_b * fg_dil, fg_b * gt_dil
    n_fg, n_gt = np.sum(fg_b), np.sum(gt_b)
    if n_fg == 0 and n_gt > 0:
        p, r = 1, 0
    elif n_fg > 0 and n_gt == 0:
        p, r = 0, 1
    elif n_fg == 0 and n_gt == 0:
        p, r = 1, 1
    else:
        p, r = np.sum(fg_match) / float(n_fg), np.sum(gt_match) / float(n_gt)
    return 0 if p + r == 0 else 2 * p * r / (p + r)


def db_statistics(per_frame_values: np.ndarray) -> tuple[float, float, float]:
    """Mean, recall (> 0.5) and decay of one object's per-frame values (davis2017 ``utils.db_statistics``:
    nan-means, 4 bins with uint8-cast edges and a uint8 ``+ 1``)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = np.nanmean(per_frame_values)
        recall = np.nanmean(per_frame_values > 0.5)
    ids = (np.round(np.linspace(1, len(per_frame_values), 5) + 1e-10) - 1).astype(np.uint8)
    with warnings.catch_warnings(), np.errstate(over="ignore"):
        warnings.simplefilter("ignore", category=RuntimeWarning)
        bins = [per_frame_values[ids[i] : ids[i + 1] + 1] for i in range(4)]
        decay = np.nanmean(bins[0]) - np.nanmean(bins[3])
    return float(mean), float(recall), float(decay)


def predictions_of(pred_root: Path, seqs) -> Path:
    """A folder of links to the predictions of ``seqs`` only (refbench refuses sequences it is not asked for);
    ``pred_root`` itself when it holds just those."""
    import tempfile

    if len(seqs) == len([p for p in pred_root.iterdir() if p.is_dir()]):
        return pred_root
    d = Path(tempfile.mkdtemp(prefix="refbench_davis_"))
    for s in seqs:
        (d / s.video).symlink_to(pred_root / s.video, target_is_directory=True)
    return d


def read_masks(folder, frames) -> np.ndarray:
    """(T, H, W) palette indices of ``<folder>/<frame>.png`` as davis2017 reads them (``np.array(Image.open)``)."""
    from PIL import Image

    return np.stack([np.array(Image.open(f"{folder}/{f}.png")) for f in frames])


def object_row(j: np.ndarray, f: np.ndarray) -> dict[str, float]:
    jm, jr, jd = db_statistics(j)
    fm, fr, fd = db_statistics(f)
    return {"J-Mean": jm, "J-Recall": jr, "J-Decay": jd, "F-Mean": fm, "F-Recall": fr, "F-Decay": fd}
