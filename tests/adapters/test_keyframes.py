from __future__ import annotations

import pytest

from refbench.adapters.keyframes import first, key_frames, uniform


def test_first_and_uniform():
    assert first(100, 5) == [0, 1, 2, 3, 4] and first(3, 5) == [0, 1, 2]
    assert uniform(100, 5) == [0, 25, 50, 74, 99]  # round(i * 99 / 4), half up: 24.75 -> 25, 74.25 -> 74
    assert uniform(9, 5) == [0, 2, 4, 6, 8] and uniform(4, 5) == [0, 1, 2, 3] and uniform(7, 1) == [0]
    assert uniform(11, 5) == [0, 3, 5, 8, 10]  # 2.5 -> 3, 7.5 -> 8
    for t in range(1, 60):
        u = uniform(t, 5)
        assert u == sorted(set(u)) and u[0] == 0 and u[-1] == t - 1 and len(u) == min(t, 5)
    with pytest.raises(ValueError, match="unknown policy"):
        key_frames("random", 10, 5)
