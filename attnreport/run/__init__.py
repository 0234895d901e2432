"""Run stage: where tracing and the per-example analysis run.

By default in this process, as the traces stream into the analysis; with `[run] executor =
"dask"` on a Dask cluster (a LocalCluster, or a scheduler's address). Each report kind hands
the executor its `Work` (`TraceWork`: rows traced and analysed; `AnswerWork`: prompts answered
and explained); either way the driver gets one result per item in input order, so the stages
after this one are the same code and the site the same bytes. Executors are registered in
`EXECUTORS`; Dask is imported only when it is chosen (the `attnreport[dask]` extra).
"""

from __future__ import annotations

from attnreport.run.answers import AnswerWork, GenerationJob
from attnreport.run.chunks import ChunkJob, ChunkReport, Loaded, TraceWork, work_chunk
from attnreport.run.executor import EXECUTORS, Executor, ProcessExecutor, Work, open_executor

__all__ = [
    "EXECUTORS",
    "AnswerWork",
    "ChunkJob",
    "ChunkReport",
    "Executor",
    "GenerationJob",
    "Loaded",
    "ProcessExecutor",
    "TraceWork",
    "Work",
    "open_executor",
    "work_chunk",
]
