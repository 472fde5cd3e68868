"""A procedurally generated demo set: short videos of moving shapes with motion expressions.

Needs no files, no network and no GPU. Each video has a few shapes moving on straight lines; each
expression refers to one or more of them by their motion ("the circle moving right"). Ground truth is the
union of the referred shapes' masks per frame, as in MeViS. The demo "model" is a deliberately imperfect
tracker (a shifted copy of the ground truth that loses the target for a few frames), scored with the MeViS
protocol (per-expression mean J and F over all frames, expression-weighted dataset means).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

SHAPES = ("circle", "square", "triangle")


@dataclass(frozen=True)
class DemoExpression:
    video: str
    exp_id: str
    text: str
    objects: tuple[int, ...]


def _draw(shape: str, cy: float, cx: float, size: int, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    if shape == "circle":
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= size**2
    if shape == "square":
        return (np.abs(yy - cy) <= size) & (np.abs(xx - cx) <= size)
    # triangle pointing up: inside the three half-planes
    return (yy <= cy + size) & (yy - cy >= -size + 2 * np.abs(xx - cx) - size)


def _direction(dy: float, dx: float) -> str:
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def make_demo(seed: int = 0, n_videos: int = 4, n_frames: int = 24, height: int = 240, width: int = 320):
    """Returns (videos, expressions): videos[name] = (n_objects, T, H, W) bool object masks."""
    rng = np.random.default_rng(seed)
    videos: dict[str, np.ndarray] = {}
    expressions: list[DemoExpression] = []
    for v in range(n_videos):
        name = f"demo{v:02d}"
        n_obj = 2 + v % 2
        masks = np.zeros((n_obj, n_frames, height, width), bool)
        motions = []
        for o in range(n_obj):
            shape = SHAPES[(o + v) % len(SHAPES)]
            size = int(rng.integers(14, 28))
            y0, x0 = rng.uniform(size, height - size), rng.uniform(size, width - size)
            dy, dx = rng.uniform(-4, 4, size=2)
            for t in range(n_frames):
                cy = np.clip(y0 + dy * t, size, height - size)
                cx = np.clip(x0 + dx * t, size, width - size)
                masks[o, t] = _draw(shape, cy, cx, size, height, width)
            motions.append((shape, _direction(dy, dx)))
        videos[name] = masks
        for o, (shape, direction) in enumerate(motions):
            expressions.append(DemoExpression(name, str(o), f"the {shape} moving {direction}", (o,)))
        expressions.append(DemoExpression(name, str(n_obj), "all the shapes", tuple(range(n_obj))))
    return videos, expressions


def _demo_prediction(gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An imperfect tracker: the target shifted by a few pixels, lost for a short stretch of frames."""
    shift = tuple(int(s) for s in rng.integers(-4, 5, size=2))
    pred = np.roll(gt, shift, axis=(1, 2))
    start = int(rng.integers(0, gt.shape[0]))
    pred[start : start + 3] = False
    return pred


def run_demo(device: str = "cpu", seed: int = 0) -> dict:
    """Generate the demo set, 'predict' with the demo tracker and score it with the MeViS protocol."""
    from refbench.metrics.mevis import expression_jf, mevis_scores

    t0 = time.perf_counter()
    videos, expressions = make_demo(seed)
    rng = np.random.default_rng(seed + 1)
    per_expression: dict[str, tuple[float, float]] = {}
    n_frames = 0
    for exp in expressions:
        gt = videos[exp.video][list(exp.objects)].any(axis=0)
        pred = _demo_prediction(gt, rng)
        scored = expression_jf(pred, gt, device=device, name=f"{exp.video}_{exp.exp_id}")
        per_expression[f"{exp.video}_{exp.exp_id}"] = (scored.J, scored.F)
        n_frames += gt.shape[0]
    scores = mevis_scores(per_expression)
    j_mean, f_mean = scores.J, scores.F
    elapsed = time.perf_counter() - t0
    table = "\n".join(
        [
            "refbench demo: MeViS protocol on procedurally generated moving shapes",
            f"{'videos':>8} {'exprs':>6} {'frames':>7} {'J':>7} {'F':>7} {'J&F':>7}",
            f"{len(videos):>8} {len(expressions):>6} {n_frames:>7} {100 * j_mean:7.2f} {100 * f_mean:7.2f} "
            f"{100 * (j_mean + f_mean) / 2:7.2f}",
            f"scored on {device} in {elapsed:.2f} s",
        ]
    )
    return {
        "protocol": "mevis",
        "J": j_mean,
        "F": f_mean,
        "J&F": scores.JF,
        "per_expression": per_expression,
        "table": table,
    }
