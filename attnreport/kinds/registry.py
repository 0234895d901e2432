"""Which kind of report a build makes, chosen from the config and the model card."""

from __future__ import annotations

from collections.abc import Callable

from attnreport.core.config import ReportConfig
from attnreport.core.errors import ConfigError
from attnreport.core.modelcard import ModelCard
from attnreport.kinds.base import ReportKind
from attnreport.kinds.classification import ClassificationReport
from attnreport.kinds.generation import GenerationReport

#: every kind by name; each entry makes a fresh kind for one build
KINDS: dict[str, Callable[[], ReportKind]] = {
    ClassificationReport.name: ClassificationReport,
    GenerationReport.name: GenerationReport,
}


def choose_kind(config: ReportConfig, card: ModelCard) -> ReportKind:
    """The generation report for `[generate]` (or `[data] prompts`), else the classification
    report; the kind then checks the config against the card (one line if they do not fit).

    A causal LM exported with its generation graphs and given texts is refused rather than given
    the classification report: it has no classes, so every page would explain nothing. (One
    exported with ``--no-generation`` still gets the attention views of that report.)"""
    if card.task == "causal-lm" and card.generation is not None and not config.generate.enabled:
        raise ConfigError(
            f"{config.source or 'config'}: {config.model.path} is a causal LM, whose report explains "
            f"its answers: give [data] prompts (or a file with a prompt column and a [generate] table)"
        )
    kind = KINDS["generation" if config.generate.enabled else "classification"]()
    kind.check(config, card)
    return kind
