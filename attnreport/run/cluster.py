"""The Dask executor: chunks of rows traced and analysed on `distributed` workers.

The driver reads rows in chunks and submits one task per chunk, keeping only a few in
flight, so its memory is bounded by the chunk size whatever the dataset's. Each worker makes
its tracer (and onnxruntime session) once, in `ModelLoader`, with the worker's threads. The
tasks leave their traces and results in the shared cache; the driver waits for the chunks in
row order, never completion order, and reads each back through its own tracer, so the site is
the bytes an in-process build makes. A worker that dies has its task rerun by the scheduler
on another; a retried task rewrites the same cache entries.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from attnreport.analysis.stage import AnalysisStage
from attnreport.core.config import ModelConfig, RunConfig
from attnreport.core.errors import BuildError, ConfigError
from attnreport.core.trace import Trace
from attnreport.run.chunks import ChunkJob, ChunkReport, Loaded, work_chunk
from attnreport.trace import Row

try:
    from distributed import Client, LocalCluster, WorkerPlugin, get_worker
except ImportError as exc:  # the optional extra is missing: `connect` says how to install it
    Client, WorkerPlugin, _MISSING = None, object, exc

Log = Callable[[str], None]


class ModelLoader(WorkerPlugin):
    """On each worker, the job's tracer and analysis stage, made on first use (so a worker whose
    model folder is missing fails its task with the reason, not its start-up)."""

    def __init__(self, job: ChunkJob) -> None:
        self.job = job
        self.threads: int | None = None
        self._loaded: Loaded | None = None
        self._lock = threading.Lock()

    def __getstate__(self):
        return {"job": self.job}

    def __setstate__(self, state):
        self.__init__(state["job"])

    def setup(self, worker) -> None:
        self.threads = worker.state.nthreads

    def loaded(self) -> Loaded:
        with self._lock:
            if self._loaded is None:
                self._loaded = Loaded(self.job, threads=self.threads)
            return self._loaded


def _run_chunk(plugin: str, rows: list[Row]) -> ChunkReport:
    """The task: the worker's loaded model over one chunk."""
    return work_chunk(get_worker().plugins[plugin].loaded(), rows)


def _chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def connect(run: RunConfig, *, log: Log):
    """A client of the scheduler `[run]` names, or of a new LocalCluster; returns (client, cluster)."""
    if Client is None:
        raise ConfigError(
            f"[run] executor = \"dask\" needs Dask's distributed ({_MISSING}): pip install 'attnreport[dask]'"
        )
    cluster = None
    address = run.scheduler
    if not address:
        threads = run.threads_per_worker
        workers = run.workers or max(1, (os.cpu_count() or 1) // threads)
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=threads, processes=True, dashboard_address=":0"
        )
        address = cluster.scheduler_address
    try:
        client = Client(address, timeout=run.connect_timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        if cluster is not None:
            cluster.close()
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"[run] scheduler {address}: cannot reach the Dask scheduler ({reason}); start one with "
            f"`dask scheduler`, or fix [run] scheduler / --scheduler"
        ) from None
    if client.dashboard_link:
        log(f"Dask dashboard: {client.dashboard_link}")
    return client, cluster


class DaskExecutor:
    """Traces by chunks on a Dask cluster; yields them in row order from the shared cache."""

    def __init__(
        self,
        run: RunConfig,
        analysis: AnalysisStage,
        model: ModelConfig,
        cache_dir: Path,
        *,
        source: str,
        log: Log,
    ) -> None:
        self.tracer = analysis.tracer
        self.analysis = analysis
        self.cache_dir = Path(cache_dir).resolve()
        self.chunk_size = run.chunk_size
        self.log = log
        self.reports: list[ChunkReport] = []
        self.client, self.cluster = connect(run, log=log)
        self._closer = weakref.finalize(self, _close, self.client, self.cluster)
        job = ChunkJob(
            folder=self.tracer.folder.resolve(),
            model=model,
            quantized=self.tracer.model_path.name != "model.onnx",
            analysis=analysis.options,
            cache_dir=self.cache_dir,
            key=self.tracer.key,
            source=source,
        )
        self.plugin = f"attnreport-{uuid.uuid4().hex[:12]}"
        self.client.register_plugin(ModelLoader(job), name=self.plugin)
        threads = sum(self.client.nthreads().values()) or 1
        #: chunks in flight: enough to keep every thread busy while the driver reads the oldest
        self.in_flight = 2 * threads + 1

    def traces(self, rows: Iterable[Row]) -> Iterator[Trace]:
        pending: deque = deque()
        for i, chunk in enumerate(_chunks(rows, self.chunk_size)):
            future = self.client.submit(_run_chunk, self.plugin, chunk, key=f"{self.plugin}-{i}", pure=False)
            pending.append((chunk, future))
            if len(pending) >= self.in_flight:
                yield from self._collect(*pending.popleft())
        while pending:
            yield from self._collect(*pending.popleft())
        self._summary()

    def _collect(self, chunk: list[Row], future) -> Iterator[Trace]:
        report = future.result()  # a row's BuildError is raised here, with its line
        del future
        self.reports.append(report)
        self._check_cached(chunk)
        stats = self.tracer.stats
        yield from self.tracer.trace(chunk)
        # the driver read the chunk from the cache: count what the workers ran as the build's
        stats.cached -= report.traced
        stats.traced += report.traced
        stats.windows += report.windows

    def _check_cached(self, chunk: list[Row]) -> None:
        """Every row of a finished chunk is in the cache as the driver sees it, or the cache folder
        is not shared (the driver would silently run the model again)."""
        caches = [c for c in (self.tracer.cache, self.analysis.cache) if c is not None]
        for row in chunk:
            if not all(c.path(row.text).is_file() for c in caches):
                where = f"line {row.line}" if row.line else f"row {row.id!r}"
                raise BuildError(
                    f"{self.cache_dir}: a worker finished {where} but its result is not in this cache "
                    f"folder as the driver sees it; cache_dir must be one folder shared by the driver "
                    f"and every worker, at the same path"
                )

    def _summary(self) -> None:
        if not self.reports:
            return
        pids = {r.pid for r in self.reports}
        seconds = sum(r.seconds for r in self.reports)
        traced = sum(r.traced for r in self.reports)
        self.log(
            f"{len(self.reports)} chunks on {len(pids)} worker processes: {traced} texts traced, "
            f"{sum(r.computed for r in self.reports)} analysed, {seconds:.1f} s of task time"
        )

    def close(self) -> None:
        if self.client.status == "running":
            # a worker gone, or the plugin never reached it: nothing to take down
            with contextlib.suppress(OSError, ValueError, KeyError):
                self.client.unregister_worker_plugin(self.plugin)
        self._closer()


def _close(client, cluster) -> None:
    client.close()
    if cluster is not None:
        cluster.close()
