"""Executors: where a report kind's work runs, the results streamed back in input order.

One seam for both kinds of report. A kind hands an executor its `Work` (the classifier's rows
traced and analysed, `run.chunks.TraceWork`; the generation report's prompts answered and
explained, `run.answers.AnswerWork`); `stream(items)` yields one result per item in input order,
and `close()` lets go of whatever the executor started. The process executor runs the work
here, as the report asks for it; the Dask one (`run/cluster.py`) has workers run chunks of it
into the shared cache and reads each chunk back through the work's own `read_back`, so
everything downstream of this seam is the same code, and the site the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from attnreport.core.config import RunConfig
from attnreport.run.chunks import ChunkReport

Log = Callable[[str], None]


class Work(Protocol):
    """A kind's work, as both executors run it."""

    #: what a chunk's items become, for the summary line ("texts traced", "prompts answered")
    what: str

    def local(self, items: Iterable) -> Iterator:
        """The results of `items`, in order, computed in this process."""

    def job(self):
        """The picklable job a worker loads once (``job.load(threads).work(chunk) -> ChunkReport``)."""

    def read_back(self, chunk: list, report: ChunkReport) -> Iterator:
        """A chunk's results, read by the driver from the cache the workers filled."""

    def check_distributed(self) -> None:
        """Refuse, in one line, what cannot run on workers (before any is started)."""


class Executor(Protocol):
    def stream(self, items: Iterable) -> Iterator: ...

    def close(self) -> None: ...


class ProcessExecutor:
    """The work in this process, as the report asks for it (the default)."""

    def __init__(self, work: Work) -> None:
        self.work = work

    def stream(self, items: Iterable) -> Iterator:
        return self.work.local(items)

    def close(self) -> None:
        pass


def _process(run: RunConfig, work: Work, *, log: Log) -> Executor:
    return ProcessExecutor(work)


def _dask(run: RunConfig, work: Work, *, log: Log) -> Executor:
    from attnreport.run.cluster import DaskExecutor

    return DaskExecutor(run, work, log=log)


#: `[run] executor` names -> a function making the executor (`core.config.EXECUTOR_NAMES` lists them)
EXECUTORS: dict[str, Callable[..., Executor]] = {"process": _process, "dask": _dask}


def open_executor(run: RunConfig, work: Work, *, log: Log) -> Executor:
    """The executor `[run]` names for `work`, started (a Dask client connected) before any work is
    done, so an unreachable scheduler stops the build before it has written anything."""
    return EXECUTORS[run.executor](run, work, log=log)
