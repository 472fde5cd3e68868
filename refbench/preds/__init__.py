"""Readers of stored model predictions (span files, RES mask files); each raises PredictionError on bad input."""
