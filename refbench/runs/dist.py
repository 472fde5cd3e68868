"""Sharding across torchrun processes: by video, no padding, and failures that stop every rank.

``torchrun --nproc-per-node N -m refbench run ...`` starts N processes with ``RANK``/``WORLD_SIZE``/
``LOCAL_RANK`` set. Every rank computes the same deterministic plan (:func:`shard_by_video`): all samples of a
video go to one rank, videos are dealt largest first to the least-loaded rank, and no sample is duplicated
to even the shards out (unlike samplers that pad). Each rank writes its own store part; rank 0 merges and
scores after a barrier.

A failing rank writes ``.abort-<rank>`` in the run directory before it joins the final collective; the other
ranks look for such files between batches and stop early, so one failure ends the whole run with its error
instead of leaving the others computing (and the collective has a timeout, so nothing waits forever). A rank
that dies outright is handled by torchrun, which terminates the remaining workers.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def from_env() -> Dist:
    """The process's place in a torchrun job (a single process when the variables are absent)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise RuntimeError(f"malformed torchrun environment (RANK/WORLD_SIZE/LOCAL_RANK): {exc}") from exc
    if world < 1 or not 0 <= rank < world:
        raise RuntimeError(f"malformed torchrun environment: RANK={rank}, WORLD_SIZE={world}")
    return Dist(rank, world, local)


def init(d: Dist, device: str, timeout_s: float = 1800.0) -> None:
    """Join the process group (gloo on CPU, nccl on CUDA) when running under torchrun."""
    if not d.distributed:
        return
    import torch.distributed as tdist

    if tdist.is_initialized():
        return
    backend = "nccl" if device.startswith("cuda") else "gloo"
    tdist.init_process_group(backend=backend, timeout=_dt.timedelta(seconds=timeout_s))


def device_for(d: Dist, device: str) -> str:
    """``cuda`` under torchrun means this rank's local GPU."""
    if device == "cuda" and d.distributed:
        return f"cuda:{d.local_rank}"
    return device


def barrier(d: Dist) -> None:
    if d.distributed:
        import torch.distributed as tdist

        tdist.barrier()


def gather_status(d: Dist, ok: bool, message: str) -> list[tuple[int, bool, str]]:
    """Every rank's (rank, ok, message), on every rank."""
    if not d.distributed:
        return [(0, ok, message)]
    import torch.distributed as tdist

    out: list = [None] * d.world
    tdist.all_gather_object(out, (d.rank, ok, message))
    return [tuple(x) for x in out]


def shutdown(d: Dist) -> None:
    if d.distributed:
        import torch.distributed as tdist

        if tdist.is_initialized():
            tdist.destroy_process_group()


def shard_by_video(items: Sequence[T], video_of: Callable[[T], str], cost_of: Callable[[T], float],
                   world: int) -> list[list[int]]:
    """Indices of ``items`` per rank: whole videos, dealt largest first (ties: dataset order) to the rank
    with the least total cost so far (ties: lowest rank). Each rank's indices keep dataset order."""
    videos: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        videos.setdefault(video_of(it), []).append(i)
    order = sorted(videos, key=lambda v: (-sum(cost_of(items[i]) for i in videos[v]), videos[v][0]))
    load = [0.0] * world
    shards: list[list[int]] = [[] for _ in range(world)]
    for v in order:
        r = min(range(world), key=lambda k: (load[k], k))
        shards[r].extend(videos[v])
        load[r] += sum(cost_of(items[i]) for i in videos[v])
    return [sorted(s) for s in shards]


def abort_path(run_dir: Path, rank: int) -> Path:
    return Path(run_dir) / f".abort-{rank}"


def aborted(run_dir: Path) -> list[Path]:
    return sorted(Path(run_dir).glob(".abort-*"))


__all__ = ["Dist", "abort_path", "aborted", "barrier", "device_for", "from_env", "gather_status", "init",
           "shard_by_video", "shutdown"]
