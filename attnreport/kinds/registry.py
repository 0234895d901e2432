"""Which kind of report a build makes, chosen from the config and the model card."""

from __future__ import annotations

from collections.abc import Callable

from attnreport.core.config import ReportConfig
from attnreport.kinds.base import ReportKind
from attnreport.kinds.classification import ClassificationReport
from attnreport.kinds.generation import GenerationReport

#: every kind by name; each entry makes a fresh kind for one build
KINDS: dict[str, Callable[[], ReportKind]] = {
    ClassificationReport.name: ClassificationReport,
    GenerationReport.name: GenerationReport,
}


def choose_kind(config: ReportConfig) -> ReportKind:
    """The generation report for `[generate]` (or `[data] prompts`), else the classification
    report, with the kind's checks of the config alone done: the driver calls this before any
    model is resolved, and the kind's `check` against the model card once it is."""
    kind = KINDS["generation" if config.generate.enabled else "classification"]()
    kind.check_config(config)
    return kind
