"""Runs: the prediction store, torchrun sharding and the run loop (:func:`refbench.runs.runner.run`)."""
