"""The analysis layer over finished runs: ``refbench compare`` (paired bootstrap), ``refbench report`` (one HTML
page), ``refbench fuse`` (majority vote of runs' masks) and the notebook API (:mod:`refbench.api`).

Nothing here imports torch at module import; each command imports what it needs when it runs.
"""
