"""Run stage: where tracing and the per-example analysis run.

By default in this process, as the traces stream into the analysis; with `[run] executor =
"dask"` on a Dask cluster (a LocalCluster, or a scheduler's address), a generation report's
answers and their explanations included. Either way the driver
gets one `Trace` per row in row order, so the stages after this one are the same code and
the site the same bytes. Executors are registered in `EXECUTORS`; Dask is imported only when
it is chosen (the `attnreport[dask]` extra).
"""

from __future__ import annotations

from attnreport.run.chunks import ChunkJob, ChunkReport, Loaded, work_chunk
from attnreport.run.executor import (
    EXECUTORS,
    GENERATION_EXECUTORS,
    Executor,
    GenerationExecutor,
    ProcessExecutor,
    ProcessGenerationExecutor,
    open_executor,
    open_generation_executor,
)

__all__ = [
    "EXECUTORS",
    "GENERATION_EXECUTORS",
    "GenerationExecutor",
    "ProcessGenerationExecutor",
    "open_generation_executor",
    "ChunkJob",
    "ChunkReport",
    "Executor",
    "Loaded",
    "ProcessExecutor",
    "open_executor",
    "work_chunk",
]
