"""``refbench run --seed``: what one seed fixes before a model is built.

:func:`seed_everything` seeds Python's :mod:`random`, NumPy's global generator and torch (its CPU generator and
every CUDA device's, through ``torch.manual_seed``), in the run's process and, for a model in its own
environment, in the worker process, before the adapter is constructed and set up. The seed is recorded in
``run.json`` (``config.seed``) and reaches the adapter as ``RunContext.seed``. It does not enter the
fingerprint: the official inference of every bundled model is deterministic (greedy decoding, no sampling), so
stored predictions do not depend on it; an adapter whose output does (sampling, random frame choice) must put
``context.seed`` into its ``fingerprint_state``. It does not make GPU kernels deterministic
(``torch.use_deterministic_algorithms`` stays off).
"""

from __future__ import annotations

import random

#: the default --seed (lmms-eval seeds Python, NumPy and torch with 0 and 1234; refbench uses one seed for all)
DEFAULT_SEED = 0


def seed_everything(seed: int) -> list[str]:
    """Seed :mod:`random`, NumPy's global generator and torch (CPU and CUDA) with ``seed`` (0 <= seed < 2**32);
    returns the names of the generators seeded (torch only where it is installed)."""
    if not (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**32):
        raise ValueError(f"--seed {seed!r}: expected a whole number from 0 to {2**32 - 1}")
    random.seed(seed)
    seeded = ["random"]
    import numpy as np

    np.random.seed(seed)
    seeded.append("numpy")
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return seeded
    torch.manual_seed(seed)  # also seeds every CUDA device (lazily where CUDA is not initialised yet)
    seeded.append("torch")
    return seeded


__all__ = ["DEFAULT_SEED", "seed_everything"]
