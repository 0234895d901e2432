"""Report kinds: what differs between a classification report and a generation report, behind
one seam (`ReportKind`), so that the one driver (`attnreport.pipeline.build`) owns what they
share: the model resolved and exported, the cache, the executors, the site target checked before
any model runs, the spool, skipped rows, the site swap.

A kind is chosen from the config (`choose_kind`); it checks the config before the model is
resolved and the model card before the first model run, streams its items through the stages
(on the executor the driver opens for its work), and returns the site plan (its pages and its
`report.json`). Kinds are registered in `KINDS`.
"""

from __future__ import annotations

from attnreport.kinds.base import BuildContext, Log, ReportKind, SkippedRows, count_rows
from attnreport.kinds.classification import ClassificationReport
from attnreport.kinds.generation import GenerationReport
from attnreport.kinds.registry import KINDS, choose_kind

__all__ = [
    "KINDS",
    "BuildContext",
    "ClassificationReport",
    "GenerationReport",
    "Log",
    "ReportKind",
    "SkippedRows",
    "choose_kind",
    "count_rows",
]
