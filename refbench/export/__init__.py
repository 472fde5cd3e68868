"""Submission exporters: the zips that the benchmarks' evaluation servers accept (:mod:`refbench.export.zips`)."""

from refbench.export.zips import FORMATS, ExportReport, export_submission

__all__ = ["FORMATS", "ExportReport", "export_submission"]
