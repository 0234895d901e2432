"""The unit of distributed work of a generation report: a chunk of prompts answered and explained.

A worker answers each prompt (the KV-cache decoder) and explains every answer token (the
teacher-forced coalitions, the expensive part), leaving both in the content cache: the
generation under ``generations/``, the explanation under ``answers/``. The driver then reads
the chunk back through its own generator and explainer, which find both in the cache, so the
site is the bytes an in-process build writes. As with classification chunks, only counts
travel back, and a retried task rewrites the same entries.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from attnreport.analysis.generation import analyse_generation
from attnreport.core.config import ReportConfig
from attnreport.core.errors import BuildError, ConfigError
from attnreport.run.answer_explainer import answer_explainer, generation_options
from attnreport.run.chunks import ChunkReport
from attnreport.trace import Generator, Prompt

#: a prompt and the contrasts its row asked for ((step, foil text) pairs)
AskedPrompt = tuple[Prompt, tuple]


@dataclass(frozen=True)
class GenerationJob:
    """What a worker needs to rebuild the driver's generator and explainer."""

    folder: Path
    config: ReportConfig
    cache_dir: Path
    #: the driver's `Generator.model_key()`: a worker whose graphs hash differently refuses
    key: str
    source: str

    def load(self, threads: int | None) -> LoadedGeneration:
        return LoadedGeneration(self, threads=threads)


class LoadedGeneration:
    """A worker's generator and answer explainer, made once per worker process."""

    def __init__(self, job: GenerationJob, *, threads: int | None) -> None:
        self.job = job
        self.generator = Generator(
            job.folder, batch_size=job.config.model.batch_size, cache_dir=job.cache_dir, threads=threads
        )
        if self.generator.model_key() != job.key:
            raise ConfigError(
                f"{job.folder}: the model files on worker pid {os.getpid()} differ from the driver's; "
                f"every worker must see the same exported model at the same path"
            )
        self.options = generation_options(job.config)
        #: the asked contrasts of the prompts seen, by id: the explainer reads them as the driver's does
        self.contrasts: dict[str, tuple] = {}
        self.explain = answer_explainer(self.generator, job.config, self.contrasts, job.cache_dir)
        self.lock = threading.Lock()

    def work(self, items: list[AskedPrompt]) -> ChunkReport:
        """Answer and explain `items`, leaving both in the cache; a prompt that fails is named."""
        with self.lock:
            start = time.perf_counter()
            stats = self.generator.stats
            generated = stats.generated
            for prompt, asked in items:
                self.contrasts[prompt.id] = asked
            prompts = [prompt for prompt, _ in items]
            traces = self.generator.generate(prompts, self.options)
            for prompt in prompts:
                try:
                    analyse_generation(next(traces), self.explain)
                except Exception as exc:
                    raise BuildError(
                        f"{self.job.source}[{prompt.id}]: a worker failed while answering prompt "
                        f"{prompt.id!r} ({type(exc).__name__}: {exc}); fix or remove the row"
                    ) from None
            return ChunkReport(
                rows=len(items),
                traced=stats.generated - generated,
                windows=0,
                computed=len(items) if self.explain is not None else 0,
                seconds=time.perf_counter() - start,
                pid=os.getpid(),
            )
