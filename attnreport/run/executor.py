"""Executors: what turns rows into traces, in row order, for the analysis stage.

An executor is a thin seam. `traces(rows)` yields one `Trace` per row in input order (a
generation executor's `generations(prompts, contrasts)` one `GenerationTrace` per prompt);
`close()` lets go of whatever it started. The process executor is the tracer itself; the
Dask one (`run/cluster.py`) has workers run `work_chunk` and reads their chunks back from
the cache, so everything downstream of this seam is the same code in both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

from attnreport.core.config import ModelConfig, ReportConfig, RunConfig
from attnreport.core.generation import GenerationTrace
from attnreport.core.trace import Trace
from attnreport.run.answer_explainer import generation_options
from attnreport.run.stage import AnalysisStage
from attnreport.trace import Generator, Prompt, Row

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


class GenerationExecutor(Protocol):
    def generations(
        self, prompts: Iterable[Prompt], contrasts: dict[str, tuple]
    ) -> Iterator[GenerationTrace]: ...

    def close(self) -> None: ...


class ProcessGenerationExecutor:
    """Answers in this process, as the report asks for them (the default); the answers are
    explained as the report reads them."""

    def __init__(self, generator: Generator, config: ReportConfig) -> None:
        self.generator = generator
        self.options = generation_options(config)

    def generations(
        self, prompts: Iterable[Prompt], contrasts: dict[str, tuple]
    ) -> Iterator[GenerationTrace]:
        return self.generator.generate(prompts, self.options)

    def close(self) -> None:
        pass


def _process_generation(run, generator, config, cache_dir, *, source, log) -> GenerationExecutor:
    return ProcessGenerationExecutor(generator, config)


def _dask_generation(run, generator, config, cache_dir, *, source, log) -> GenerationExecutor:
    from attnreport.run.cluster import DaskGenerationExecutor

    return DaskGenerationExecutor(run, generator, config, cache_dir, source=source, log=log)


#: the same names as `EXECUTORS`, for a generation report: workers answer and explain the prompts
GENERATION_EXECUTORS: dict[str, Callable[..., GenerationExecutor]] = {
    "process": _process_generation,
    "dask": _dask_generation,
}


def open_generation_executor(
    run: RunConfig, generator: Generator, config: ReportConfig, cache_dir: Path, *, source: str, log: Log
) -> GenerationExecutor:
    """The generation executor `[run]` names, started before any work is done."""
    return GENERATION_EXECUTORS[run.executor](run, generator, config, cache_dir, source=source, log=log)
