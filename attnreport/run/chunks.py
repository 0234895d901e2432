"""The unit of distributed work: one chunk of rows traced and analysed into the cache.

A chunk's traces and per-example results (attributions, flow, faithfulness) are written to
the content-addressed cache the local build uses; nothing large travels back, only a
`ChunkReport`. The driver then reads the chunk from the cache in row order, so the bytes it
builds from are the bytes a local rebuild would read. A task that runs twice (its worker
died) writes the same entries again, atomically: retrying is always safe.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from attnreport.analysis.results import describe
from attnreport.core.config import AnalysisConfig, ModelConfig
from attnreport.core.errors import BuildError, ConfigError
from attnreport.run.stage import AnalysisStage
from attnreport.trace import Row, Tracer


@dataclass(frozen=True)
class ChunkJob:
    """What a worker needs to rebuild the driver's tracer and analysis: plain, picklable values."""

    folder: Path
    model: ModelConfig
    quantized: bool
    analysis: AnalysisConfig
    cache_dir: Path
    #: the driver's `Tracer.key`: a worker whose model files hash differently refuses to run
    key: str
    #: how rows are named in messages: the data file, or "[data] texts"
    source: str

    def load(self, threads: int | None) -> Loaded:
        return Loaded(self, threads=threads)


@dataclass
class ChunkReport:
    """What came back from a chunk: counts and time, never traces."""

    rows: int
    traced: int
    windows: int
    computed: int
    #: wall time inside the task (the model's time and the analysis'), seconds
    seconds: float
    pid: int


class Loaded:
    """A worker's tracer and analysis stage for one job, made once per worker process.

    onnxruntime gets the worker's threads, and chunks on one worker run one at a time, so a
    worker with t threads runs one session with t threads, never t sessions with t each.
    """

    def __init__(self, job: ChunkJob, *, threads: int | None) -> None:
        m = job.model
        self.job = job
        self.tracer = Tracer(
            job.folder,
            quantized=job.quantized,
            batch_size=m.batch_size,
            window=m.window,
            stride=m.stride,
            cache_dir=job.cache_dir,
            threads=threads,
            qk_max_tokens=m.neuron_view_max_tokens,
        )
        if self.tracer.key != job.key:
            raise ConfigError(
                f"{job.folder}: the model files on worker pid {os.getpid()} differ from the driver's; "
                f"every worker must see the same exported model at the same path"
            )
        self.analysis = AnalysisStage(self.tracer, job.analysis, job.cache_dir)
        self.lock = threading.Lock()

    def work(self, rows: list[Row]) -> ChunkReport:
        return work_chunk(self, rows)


def _row_failed(source: str, row: Row, exc: BaseException) -> BuildError:
    where = f"{source}:{row.line}" if row.line else f"{source}[{row.id}]"
    return BuildError(
        f"{where}: row {row.id!r} failed on a worker ({type(exc).__name__}: {exc}); fix or remove the row"
    )


def work_chunk(loaded: Loaded, rows: list[Row]) -> ChunkReport:
    """Trace `rows` and run their per-example analysis, leaving both in the cache. A row that
    fails is named with its line (a BuildError), never dropped."""
    with loaded.lock:
        start = time.perf_counter()
        stats = loaded.tracer.stats
        traced, windows, computed = stats.traced, stats.windows, loaded.analysis.computed
        card = loaded.tracer.card
        traces = loaded.tracer.trace(rows)
        for row in rows:
            try:
                trace = next(traces)
            except Exception:  # one row broke the batch: find it and name it
                raise _failing_row(loaded, rows) from None
            try:
                loaded.analysis.explain(trace, describe(trace, card).rollout_row)
            except Exception as exc:
                raise _row_failed(loaded.job.source, row, exc) from None
        return ChunkReport(
            rows=len(rows),
            traced=stats.traced - traced,
            windows=stats.windows - windows,
            computed=loaded.analysis.computed - computed,
            seconds=time.perf_counter() - start,
            pid=os.getpid(),
        )


def _failing_row(loaded: Loaded, rows: list[Row]) -> BaseException:
    """The error of the first row that fails alone (rows before it are cached on the way)."""
    for row in rows:
        try:
            list(loaded.tracer.trace([row]))
        except Exception as exc:
            return _row_failed(loaded.job.source, row, exc)
    return BuildError(f"{loaded.job.source}: a chunk of {len(rows)} rows failed, but no row fails alone")
