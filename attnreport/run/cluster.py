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

from attnreport.core.config import ModelConfig, ReportConfig, RunConfig
from attnreport.core.errors import BuildError, ConfigError
from attnreport.core.generation import GenerationTrace
from attnreport.core.trace import Trace
from attnreport.run.answer_explainer import generation_options
from attnreport.run.answers import AskedPrompt, GenerationJob
from attnreport.run.chunks import ChunkJob, ChunkReport
from attnreport.run.stage import AnalysisStage
from attnreport.trace import Generator, Prompt, Row

try:
    from distributed import Client, LocalCluster, WorkerPlugin, get_worker
except ImportError as exc:  # the optional extra is missing: `connect` says how to install it
    Client, WorkerPlugin, _MISSING = None, object, exc

Log = Callable[[str], None]


class ModelLoader(WorkerPlugin):
    """On each worker, what the job loads (a tracer and analysis stage, or a generator and answer
    explainer), made on first use (so a worker whose model folder is missing fails its task with
    the reason, not its start-up)."""

    def __init__(self, job) -> None:
        self.job = job
        self.threads: int | None = None
        self._loaded = None
        self._lock = threading.Lock()

    def __getstate__(self):
        return {"job": self.job}

    def __setstate__(self, state):
        self.__init__(state["job"])

    def setup(self, worker) -> None:
        self.threads = worker.state.nthreads

    def loaded(self):
        with self._lock:
            if self._loaded is None:
                self._loaded = self.job.load(self.threads)
            return self._loaded


def _run_chunk(plugin: str, items: list) -> ChunkReport:
    """The task: the worker's loaded model over one chunk (rows, or prompts with their contrasts)."""
    return get_worker().plugins[plugin].loaded().work(items)


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


class ChunkPool:
    """A job's chunks on a Dask cluster: a few in flight, each finished one read back by the
    driver in submission order (never completion order)."""

    def __init__(self, run: RunConfig, job, *, log: Log, what: str) -> None:
        self.chunk_size = run.chunk_size
        self.log = log
        #: what a chunk's items are, for the summary line ("texts traced", "prompts answered")
        self.what = what
        self.reports: list[ChunkReport] = []
        self.client, self.cluster = connect(run, log=log)
        self._closer = weakref.finalize(self, _close, self.client, self.cluster)
        self.plugin = f"attnreport-{uuid.uuid4().hex[:12]}"
        self.client.register_plugin(ModelLoader(job), name=self.plugin)
        threads = sum(self.client.nthreads().values()) or 1
        #: chunks in flight: enough to keep every thread busy while the driver reads the oldest
        self.in_flight = 2 * threads + 1

    def run(self, items: Iterable, read_back: Callable[[list, ChunkReport], Iterator]) -> Iterator:
        """`read_back(chunk, report)`'s results for every chunk of `items`, in order."""
        pending: deque = deque()
        for i, chunk in enumerate(_chunks(items, self.chunk_size)):
            future = self.client.submit(_run_chunk, self.plugin, chunk, key=f"{self.plugin}-{i}", pure=False)
            pending.append((chunk, future))
            if len(pending) >= self.in_flight:
                yield from self._collect(*pending.popleft(), read_back)
        while pending:
            yield from self._collect(*pending.popleft(), read_back)
        self._summary()

    def _collect(self, chunk: list, future, read_back) -> Iterator:
        report = future.result()  # a row's BuildError is raised here, with its line
        del future
        self.reports.append(report)
        yield from read_back(chunk, report)

    def _summary(self) -> None:
        if not self.reports:
            return
        pids = {r.pid for r in self.reports}
        seconds = sum(r.seconds for r in self.reports)
        traced = sum(r.traced for r in self.reports)
        self.log(
            f"{len(self.reports)} chunks on {len(pids)} worker processes: {traced} {self.what}, "
            f"{sum(r.computed for r in self.reports)} analysed, {seconds:.1f} s of task time"
        )

    def close(self) -> None:
        if self.client.status == "running":
            # a worker gone, or the plugin never reached it: nothing to take down
            with contextlib.suppress(OSError, ValueError, KeyError):
                self.client.unregister_worker_plugin(self.plugin)
        self._closer()


def _not_shared(cache_dir: Path, where: str) -> BuildError:
    return BuildError(
        f"{cache_dir}: a worker finished {where} but its result is not in this cache "
        f"folder as the driver sees it; cache_dir must be one folder shared by the driver "
        f"and every worker, at the same path"
    )


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
        job = ChunkJob(
            folder=self.tracer.folder.resolve(),
            model=model,
            quantized=self.tracer.model_path.name != "model.onnx",
            analysis=analysis.options,
            cache_dir=self.cache_dir,
            key=self.tracer.key,
            source=source,
        )
        self.pool = ChunkPool(run, job, log=log, what="texts traced")

    @property
    def reports(self) -> list[ChunkReport]:
        return self.pool.reports

    def traces(self, rows: Iterable[Row]) -> Iterator[Trace]:
        return self.pool.run(rows, self._read_back)

    def _read_back(self, chunk: list[Row], report: ChunkReport) -> Iterator[Trace]:
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
                raise _not_shared(self.cache_dir, f"line {row.line}" if row.line else f"row {row.id!r}")

    def close(self) -> None:
        self.pool.close()


class DaskGenerationExecutor:
    """Answers (and their explanations) by chunks on a Dask cluster; yields the generation traces
    in prompt order, read back from the shared cache by the driver's own generator."""

    def __init__(
        self,
        run: RunConfig,
        generator: Generator,
        config: ReportConfig,
        cache_dir: Path,
        *,
        source: str,
        log: Log,
    ) -> None:
        if not generator.use_cache:
            raise ConfigError(
                '[run] executor = "dask" needs the cache: the workers leave their answers in it'
            )
        self.generator = generator
        self.cache_dir = Path(cache_dir).resolve()
        self.options = generation_options(config)
        job = GenerationJob(
            folder=generator.folder.resolve(),
            config=config,
            cache_dir=self.cache_dir,
            key=generator.model_key(),
            source=source,
        )
        self.pool = ChunkPool(run, job, log=log, what="prompts answered")

    def generations(
        self, prompts: Iterable[Prompt], contrasts: dict[str, tuple]
    ) -> Iterator[GenerationTrace]:
        """One trace per prompt, in order; `contrasts` (by prompt id) is filled as `prompts` stream."""
        items = ((p, tuple(contrasts.get(p.id, ()))) for p in prompts)
        return self.pool.run(items, self._read_back)

    def _read_back(self, chunk: list[AskedPrompt], report: ChunkReport) -> Iterator[GenerationTrace]:
        for prompt, _ in chunk:
            if not self.generator.cache_path(prompt, self.options).is_file():
                raise _not_shared(self.cache_dir, f"prompt {prompt.id!r}")
        stats = self.generator.stats
        yield from self.generator.generate([p for p, _ in chunk], self.options)
        stats.cached -= report.traced
        stats.generated += report.traced

    def close(self) -> None:
        self.pool.close()


def _close(client, cluster) -> None:
    client.close()
    if cluster is not None:
        cluster.close()
