"""Which frames of a video an MLLM sees: the key-frame policies adapters share, as plain index functions.

* ``first`` -- frames ``0 .. k-1`` (Sa2VA's official inference: its ``predict_forward`` feeds the first 5 frames to
  the MLLM and prompts SAM 2 with the ``[SEG]`` embedding on those frames; bytedance/Sa2VA @ 0d8f983,
  ``projects/sa2va/hf/models_qwen/modeling_sa2va_qwen.py``; the InternVL ``modeling_sa2va_chat.py`` does the same).
* ``uniform`` -- ``k`` frames spread over the whole video, first and last included:
  ``round(i * (T - 1) / (k - 1))`` for ``i = 0 .. k-1`` (half up), in temporal order. This is the change that won
  the PVUW 2025 MeViS track with Sa2VA and that Sa2VA's own report describes as long-interleaved key frames; the
  Sa2VA model card's video example also spreads 5 frames over the video before calling the model (with an
  integer step, so its indices can differ from these by one; bytedance/Sa2VA#20).

Both return every frame when ``T <= k``. Indices are ints in ``[0, T)``, strictly increasing.
"""

from __future__ import annotations

POLICIES = ("first", "uniform")


def first(n_frames: int, k: int) -> list[int]:
    return list(range(min(n_frames, k)))


def uniform(n_frames: int, k: int) -> list[int]:
    if n_frames <= k:
        return list(range(n_frames))
    if k == 1:
        return [0]
    # integer arithmetic: round half up of i * (T - 1) / (k - 1)
    return [(2 * i * (n_frames - 1) + (k - 1)) // (2 * (k - 1)) for i in range(k)]


def key_frames(policy: str, n_frames: int, k: int) -> list[int]:
    if k < 1:
        raise ValueError(f"key frames: k must be >= 1, got {k}")
    if policy == "first":
        return first(n_frames, k)
    if policy == "uniform":
        return uniform(n_frames, k)
    raise ValueError(f"key frames: unknown policy {policy!r}; expected one of {', '.join(POLICIES)}")


__all__ = ["POLICIES", "first", "key_frames", "uniform"]
