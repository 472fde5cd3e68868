"""Per-sample scoring over several processes, results in input order.

Scoring is many small numpy calls, so threads serialise on the GIL; processes scale. On platforms with
``fork`` (Linux) the worker processes are forked from the evaluating one, so they inherit its loaded
annotations, open prediction source and scoring function without pickling them (copy-on-write); only the
per-sample results travel back. Consecutive items of one group (one video) go to one task, so a worker's
per-video caches (the GT words of a video's objects) are hit. Elsewhere, or on a GPU device (CUDA does not
survive ``fork``), the items run on threads.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import threading
from concurrent.futures import FIRST_EXCEPTION, Executor, ProcessPoolExecutor, ThreadPoolExecutor, wait
from typing import Any, Callable, Hashable, Sequence

Progress = Callable[[int, int], None]

_JOBS: dict[int, tuple[Callable[[Any], Any], Sequence[Any], Callable[[], None] | None]] = {}
_IDS = itertools.count()


def _child_init(job: int) -> None:
    try:
        import torch

        torch.set_num_threads(1)  # one process per core
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    init = _JOBS[job][2]
    if init is not None:
        init()


def _task(job: int, lo: int, hi: int) -> list[Any]:
    fn, items, _init = _JOBS[job]
    return [fn(items[i]) for i in range(lo, hi)]


def default_workers() -> int:
    """min(8, usable CPUs)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n))


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def map_ordered(
    items: Sequence[Any],
    fn: Callable[[Any], Any],
    progress: Progress | None = None,
    workers: int | None = None,
    *,
    group: Callable[[Any], Hashable] | None = None,
    child_init: Callable[[], None] | None = None,
    processes: bool = True,
) -> list[Any]:
    """``[fn(x) for x in items]`` on ``workers`` processes (default :func:`default_workers`; threads where
    ``processes`` is False or ``fork`` is missing). The first item runs here first, so that loaders fill
    their caches once before the workers are forked. ``group``: items with one key in a row form one task.
    ``child_init``: called once in every worker process (e.g. to reopen a zip). The first exception is
    re-raised, the rest cancelled."""
    n = len(items)
    out: list[Any] = [None] * n
    if n == 0:
        return out
    out[0] = fn(items[0])
    done = 1
    if progress:
        progress(done, n)
    n_workers = workers if workers is not None else default_workers()
    ranges: list[tuple[int, int]] = []
    lo = 1
    for i in range(2, n + 1):
        if i == n or group is None or group(items[i]) != group(items[i - 1]):
            ranges.append((lo, i))
            lo = i
    if n_workers <= 1 or not ranges or (len(ranges) == 1 and not processes):
        for i in range(1, n):
            out[i] = fn(items[i])
            if progress:
                progress(i + 1, n)
        return out
    if len(ranges) < 2 * n_workers and group is not None:
        # few groups: contiguous chunks instead, so every worker has work and mostly one video's items
        size = -(-(n - 1) // (2 * n_workers))
        ranges = [(i, min(n, i + size)) for i in range(1, n, size)]
    use_processes = processes and can_fork()
    job = next(_IDS)
    _JOBS[job] = (fn, items, child_init)
    pool: Executor
    if use_processes:
        pool = ProcessPoolExecutor(max_workers=min(n_workers, len(ranges)), mp_context=multiprocessing.get_context(
            "fork"), initializer=_child_init, initargs=(job,))
    else:
        pool = ThreadPoolExecutor(max_workers=min(n_workers, len(ranges)))
    lock = threading.Lock()
    try:
        futures = {pool.submit(_task, job, a, b): (a, b) for a, b in ranges}
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for fut in finished:
                exc = fut.exception()
                if exc is not None:
                    for p in pending:
                        p.cancel()
                    raise exc
                a, b = futures[fut]
                out[a:b] = fut.result()
                with lock:
                    done += b - a
                    if progress:
                        progress(done, n)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        del _JOBS[job]
    return out


__all__ = ["can_fork", "default_workers", "map_ordered"]
