"""Per-frame J and F of every sample (``refbench eval --per-frame``, ``refbench run --per-frame``).

The values are the scorer's own: each video protocol hands over the very per-frame arrays it averages (MeViS
``expression_jf``'s ``J_frames`` / ``F_frames``, DAVIS ``DavisObjectResult.J`` / ``.F``, SA-V's per-object lists
from the first counted frame on, LVOS's slots, MOSE v2's smoothed J and adaptive F, ...), so the mean over a
sample's rows reproduces its per-sample value bit for bit (``np.mean(J_frac) * 100 == per-sample J`` for MeViS,
``object_statistics(J_frac)["M"]`` for DAVIS; ``tests/evaluate/test_per_frame.py`` checks every protocol).

The file, ``per_frame.csv`` beside the summary (or ``--per-frame FILE``), has one row per (sample, scored frame):

* first column: the per-sample CSV's first column, same name and same values: ``sample_id`` (``<video>/<exp_id>``
  for an expression, ``<video>/<object id>`` for a VOS object, ``<run>/<video>/<obj>`` for SA-V-style runs, as in
  ``per_sample.csv``, ``predictions.json`` and ``diagnostics.jsonl``);
* ``frame``: the frame name as the dataset lists it ("" for an LVOS slot that no frame of the range fills: the
  official evaluator counts it as 0);
* ``t``: the 0-based position in the sample's scored series (the order the protocol averages in);
* ``J``, ``F``: percent (the value x 100 in float64, refbench's one scale);
* ``J_frac``, ``F_frac``: the scorer's float64 values themselves (the official fraction), bit for bit
  (written with Python's shortest round-trip repr);
* protocol extras, both ways: ReVOS ``A``, ``R`` (raw-value accuracy and robustness per frame); MOSE v2
  ``F_standard`` (DAVIS's F beside the headline adaptive ``F``).

A sample scored by an official missing rule without frames (MeViS's missing video, ReVOS's failure) has no rows.
"""

from __future__ import annotations

import csv
import os
from typing import Any, Mapping, Sequence

PER_FRAME_FILE = "per_frame.csv"


def add_series(out: list[dict[str, Any]] | None, key: str, frames: Sequence[str],
               values: Mapping[str, Sequence[float]], key_column: str = "sample_id") -> None:
    """Append one sample's rows to ``out`` (no-op when ``out`` is None). ``values``: metric -> (T,) float64
    per-frame values as the scorer computed them (fractions); ``frames``: the T frame names."""
    if out is None:
        return
    cols = {name: [float(v) for v in arr] for name, arr in values.items()}
    n = len(frames)
    for name, arr in cols.items():
        if len(arr) != n:
            raise ValueError(f"{key}: {len(arr)} per-frame {name} values for {n} frames")
    for t in range(n):
        row: dict[str, Any] = {key_column: key, "frame": frames[t], "t": t}
        for name, arr in cols.items():
            row[name] = arr[t] * 100.0
        for name, arr in cols.items():
            row[f"{name}_frac"] = arr[t]
        out.append(row)


def write_per_frame(rows: list[dict[str, Any]], path: str | os.PathLike, flag: str | None = None) -> None:
    """Write the per-frame rows as CSV, atomically (:func:`refbench.files.atomic_output`)."""
    from refbench.files import atomic_output

    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    if not keys:
        keys = ["key", "frame", "t", "J", "F", "J_frac", "F_frac"]
    with atomic_output(path, "w", flag, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def read_per_frame(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a per-frame CSV, numbers as floats (``t`` as int)."""
    import io

    from refbench.files import read_regular

    out: list[dict[str, Any]] = []
    text = read_regular(path, what="per-frame CSV").decode("utf-8")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if True:
        first = reader.fieldnames[0] if reader.fieldnames else "key"
        for rec in reader:
            row: dict[str, Any] = {}
            for k, v in rec.items():
                if k in (first, "frame"):
                    row[k] = v
                elif k == "t":
                    row[k] = int(v)
                else:
                    row[k] = float(v) if v not in ("", None) else None
            out.append(row)
    return out


__all__ = ["PER_FRAME_FILE", "add_series", "read_per_frame", "write_per_frame"]
