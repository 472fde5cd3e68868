"""Scoring over processes: same results, same order, errors surface, zips reopened in the workers."""

from __future__ import annotations

import os

import pytest

from refbench.evaluate import parallel


def _pid_square(x: int) -> tuple[int, int]:
    if x == 13:
        raise ValueError("thirteen")
    return x * x, os.getpid()


def test_map_ordered_keeps_order_and_uses_processes():
    items = list(range(12))
    seen = []
    out = parallel.map_ordered(items, _pid_square, lambda d, n: seen.append((d, n)), workers=2,
                               group=lambda x: x // 3)
    assert [v for v, _ in out] == [x * x for x in items]
    if parallel.can_fork():
        assert len({pid for _, pid in out[1:]} - {os.getpid()}) >= 1
    assert seen[-1] == (12, 12) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_map_ordered_threads_and_serial_give_the_same():
    items = list(range(9))
    a = parallel.map_ordered(items, lambda x: x + 1, workers=1)
    b = parallel.map_ordered(items, lambda x: x + 1, workers=3, processes=False)
    assert a == b == [x + 1 for x in items]


def test_map_ordered_reraises_the_workers_error():
    with pytest.raises(ValueError, match="thirteen"):
        parallel.map_ordered(list(range(20)), _pid_square, workers=2)


def test_child_init_runs_in_each_worker(tmp_path):
    if not parallel.can_fork():
        pytest.skip("no fork")
    marker = tmp_path / "inits"

    def init() -> None:
        with open(marker, "a") as fh:
            fh.write(f"{os.getpid()}\n")

    parallel.map_ordered(list(range(8)), _pid_square, workers=2, child_init=init)
    pids = marker.read_text().split()
    assert 1 <= len(pids) <= 2 and str(os.getpid()) not in pids
