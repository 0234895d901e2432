"""Executors: what turns rows into traces, in row order, for the analysis stage.

An executor is a thin seam. `traces(rows)` yields one `Trace` per row in input order;
`close()` lets go of whatever it started. The process executor is the tracer itself; the
Dask one (`run/cluster.py`) has workers run `work_chunk` and reads their chunks back from
the cache, so everything downstream of this seam is the same code in both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

from attnreport.analysis.stage import AnalysisStage
from attnreport.core.config import ModelConfig, RunConfig
from attnreport.core.trace import Trace
from attnreport.trace import Row

Log = Callable[[str], None]


class Executor(Protocol):
    def traces(self, rows: Iterable[Row]) -> Iterator[Trace]: ...

    def close(self) -> None: ...


class ProcessExecutor:
    """Traces in this process, as the analysis asks for them (the default)."""

    def __init__(self, analysis: AnalysisStage) -> None:
        self.tracer = analysis.tracer

    def traces(self, rows: Iterable[Row]) -> Iterator[Trace]:
        return self.tracer.trace(rows)

    def close(self) -> None:
        pass


def _process(run, analysis, model, cache_dir, *, source, log) -> Executor:
    return ProcessExecutor(analysis)


def _dask(run, analysis, model, cache_dir, *, source, log) -> Executor:
    from attnreport.run.cluster import DaskExecutor

    return DaskExecutor(run, analysis, model, cache_dir, source=source, log=log)


#: `[run] executor` names -> a function making the executor (`core.config.EXECUTOR_NAMES` lists them)
EXECUTORS: dict[str, Callable[..., Executor]] = {"process": _process, "dask": _dask}


def open_executor(
    run: RunConfig, analysis: AnalysisStage, model: ModelConfig, cache_dir: Path, *, source: str, log: Log
) -> Executor:
    """The executor `[run]` names, started (a Dask client connected) before any work is done, so
    an unreachable scheduler stops the build before it has written anything."""
    return EXECUTORS[run.executor](run, analysis, model, cache_dir, source=source, log=log)
