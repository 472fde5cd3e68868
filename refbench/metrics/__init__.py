"""Scorers. ``from refbench.metrics import jaccard, boundary_f``."""

from refbench.metrics.frame import boundary_f, boundary_radius, jaccard, jaccard_and_boundary

__all__ = ["jaccard", "boundary_f", "jaccard_and_boundary", "boundary_radius"]
