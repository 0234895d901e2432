"""The seam between the driver and a report kind: the context a kind builds in, and the protocol."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from attnreport.core.config import ReportConfig
from attnreport.core.modelcard import ModelCard
from attnreport.site.pages import SitePlan, Subsite
from attnreport.trace import BadRow, read_rows

Log = Callable[[str], None]


class SkippedRows(list):
    """The bad rows a build skipped, each said on stderr as it is met and kept for the index."""

    def __init__(self, log: Log) -> None:
        super().__init__()
        self.log = log

    def __call__(self, bad: BadRow) -> None:
        self.log(f"skipped {bad}")
        self.append(bad)

    def entries(self) -> list[dict]:
        """report.json's `skipped_rows`: the file's name (not the build machine's path), line, reason."""
        return [{"file": Path(b.source).name, "line": b.line, "reason": b.reason} for b in self]


def count_rows(config: ReportConfig, *, prompts: bool = False) -> int:
    """How many rows the build will run, for its progress lines: one read of the file ahead."""
    return sum(1 for _ in read_rows(config.data, on_bad=lambda bad: None, prompts=prompts))


@dataclass
class BuildContext:
    """What the driver hands a kind: the checked config, the exported model and its card, the
    cache, the spool folder for page data (removed by the driver), and where to report."""

    config: ReportConfig
    model_dir: Path
    card: ModelCard
    cache_dir: Path
    spool: Path
    log: Log
    progress: bool
    skipped: SkippedRows
    #: an exported folder for a model path (a Hugging Face folder exported into the cache): the
    #: driver's own rule, for a kind's second model ([compare])
    resolve_model: Callable[[Path], Path]
    #: runs a kind's work (`run.executor.Work`) over its items where `[run]` says (this process or
    #: Dask) and streams the results in input order; the driver owns the executor and closes it
    stream: Callable[[object, Iterable], Iterator]
    #: built sites shipped inside this one (the demo's generation report)
    subsites: list[Subsite] = field(default_factory=list)

    @property
    def where(self) -> str:
        """How messages name the config."""
        return str(self.config.source or "config")


class ReportKind(Protocol):
    """One kind of report. The driver calls `check_config` before the model is resolved, `check`
    once its card is known and before it runs, then `plan` once;
    `stats` is what the build's result reports of the model runs."""

    #: the name the registry and messages use
    name: str

    def check_config(self, config: ReportConfig) -> None:
        """Refuse, in one line, a config this kind cannot build (before the model is resolved)."""

    def check(self, config: ReportConfig, card: ModelCard) -> None:
        """Refuse, in one line, a model this kind cannot explain (before it runs)."""

    def plan(self, ctx: BuildContext) -> SitePlan:
        """Stream the items through the stages; every page and the report's sections."""

    @property
    def stats(self): ...
