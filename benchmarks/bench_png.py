"""PNG mask decoding: refbench's reader against PIL and OpenCV on the same 720p mask files, in one process.

    pip install -e ".[bench]"
    python benchmarks/bench_png.py [--frames 120] [--repeats 5] [--size 720x1280]

Masks: the real DAVIS ground truth of ../shared/data/davis_osvos13 (or $REFBENCH_SHARED_DATA; procedural blobs
when absent), resized with nearest neighbour to ``--size`` and written as 0/255 'L' PNGs twice: by PIL
(``Image.fromarray(m).save``, what the official MeViS / ReVOS inference scripts write; PIL picks none / sub /
up / Paeth per row) and by OpenCV (``cv2.imwrite``, sub rows). Each reader decodes every file from bytes in
memory: PIL ``np.array(Image.open(...))`` (DAVIS's reader), ``cv2.imdecode(..., IMREAD_GRAYSCALE)`` (MeViS's
and ReVOS's), and ``refbench.png_decode.read_png`` in both value semantics. The script checks that all
outputs are identical, then prints milliseconds per frame (best of ``--repeats``), the share of files that
took the fast path, and, as the floor, the time to inflate the image data alone with zlib and libdeflate.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import time
from pathlib import Path

import numpy as np


def masks(n: int, hw: tuple[int, int]) -> tuple[list[np.ndarray], str]:
    import cv2

    root = Path(os.environ.get("REFBENCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    ann = root / "davis_osvos13" / "Annotations" / "480p"
    out: list[np.ndarray] = []
    if ann.is_dir():
        from PIL import Image

        for f in sorted(ann.rglob("*.png")):
            m = (np.array(Image.open(f)) > 0).astype(np.uint8) * 255
            out.append(cv2.resize(m, hw[::-1], interpolation=cv2.INTER_NEAREST))
            if len(out) == n:
                break
        return out, "DAVIS-2016 val ground truth (davis_osvos13)"
    rng = np.random.default_rng(0)
    for _ in range(n):
        base = cv2.GaussianBlur(rng.random(hw).astype(np.float32), (0, 0), 40)
        out.append((base > np.quantile(base, 0.7)).astype(np.uint8) * 255)
    return out, "synthetic blobs (golden data absent)"


def encode(frames: list[np.ndarray]) -> dict[str, list[bytes]]:
    import cv2
    from PIL import Image

    pil, cv = [], []
    for m in frames:
        buf = io.BytesIO()
        Image.fromarray(m).save(buf, format="PNG")
        pil.append(buf.getvalue())
        ok, enc = cv2.imencode(".png", m)
        assert ok
        cv.append(enc.tobytes())
    return {"PIL-written": pil, "cv2-written": cv}


def best(fn, files: list[bytes], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for d in files:
            fn(d)
        times.append(time.perf_counter() - t0)
    return min(times) / len(files) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--size", default="720x1280", help="HxW")
    args = ap.parse_args()

    import cv2
    import deflate
    import zlib
    from PIL import Image

    from refbench import png_decode as png

    cv2.setNumThreads(1)
    hw = tuple(int(v) for v in args.size.split("x"))
    frames, source = masks(args.frames, hw)  # type: ignore[arg-type]
    sets = encode(frames)
    print(f"masks: {len(frames)} frames of {source}, {hw[0]}x{hw[1]}, 0/255")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus; opencv {cv2.__version__}, pillow "
          f"{Image.__version__ if hasattr(Image, '__version__') else '?'}, numpy {np.__version__}; one thread")

    def pil_read(d: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(d)) as im:
            return np.array(im)

    def cv_read(d: bytes) -> np.ndarray:
        return cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_GRAYSCALE)

    def idat(d: bytes) -> bytes:
        chunks = png._chunks(d)
        return b"".join(d[s:e] for t, s, e in chunks if t == b"IDAT")

    readers = {
        "PIL (DAVIS reader)": pil_read,
        "cv2.imdecode GRAYSCALE (MeViS/ReVOS reader)": cv_read,
        "refbench read_png grey": lambda d: png.read_png(d, "grey"),
        "refbench read_png index": lambda d: png.read_png(d, "index"),
    }
    print(f"{'ms per frame':<46} {'PIL-written':>12} {'cv2-written':>12}")
    results: dict[str, dict[str, float]] = {}
    for label, files in sets.items():
        for d in files:
            ref_grey, ref_index = cv_read(d), pil_read(d)
            assert np.array_equal(png.read_png(d, "grey"), ref_grey), "grey values differ"
            assert np.array_equal(png.read_png(d, "index"), ref_index), "index values differ"
        for name, fn in readers.items():
            results.setdefault(name, {})[label] = best(fn, files, args.repeats)
        rb = hw[0] * (hw[1] + 1)
        idats = [idat(d) for d in files]
        results.setdefault("inflate only, zlib", {})[label] = best(lambda x: zlib.decompress(x), idats, args.repeats)
        results.setdefault("inflate only, libdeflate", {})[label] = best(lambda x: deflate.zlib_decompress(x, rb),
                                                                          idats, args.repeats)
        fast = sum(png.decode_fast(d, "grey") is not None for d in files)
        results.setdefault("fast path taken (share of files)", {})[label] = fast / len(files)
    for name, row in results.items():
        vals = [row[k] for k in sets]
        if name.startswith("fast path"):
            print(f"{name:<46} {vals[0]:>12.0%} {vals[1]:>12.0%}")
        else:
            print(f"{name:<46} {vals[0]:>12.3f} {vals[1]:>12.3f}")
    for label in sets:
        ref = results["refbench read_png grey"][label]
        print(f"{label}: refbench grey is {results['cv2.imdecode GRAYSCALE (MeViS/ReVOS reader)'][label] / ref:.1f}x "
              f"cv2, {results['PIL (DAVIS reader)'][label] / results['refbench read_png index'][label]:.1f}x PIL "
              "(index)")
    print("values identical to the official readers on every file: True")


if __name__ == "__main__":
    main()
