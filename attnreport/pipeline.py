"""The stages chained: config -> model folder -> traces -> page plan -> site.

The CLI calls these; each step is a stage's own function, so this module only wires.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from attnreport.analysis.generation import analyse_generation
from attnreport.analysis.options import check_options
from attnreport.analysis.results import AnalysisResults, ExampleSummary, Summaries, describe
from attnreport.analysis.stage import AnalysisStage, CompareStage
from attnreport.analysis.tally import ExampleTally
from attnreport.core.config import ModelConfig, ReportConfig
from attnreport.core.errors import ConfigError, InputError
from attnreport.core.files import sha256_folder
from attnreport.core.generation import GenerationTrace
from attnreport.core.modelcard import ModelCard, is_exported
from attnreport.core.progress import counted, note
from attnreport.core.trace import Trace
from attnreport.scenes.stage import DecisionPoint, SceneStage
from attnreport.site.build import spool_folder, write_site
from attnreport.site.generation import gather_generation
from attnreport.site.pages import ExamplePage, SitePlan, Subsite, gather
from attnreport.site.report import report_document
from attnreport.trace import BadRow, GenerationOptions, Generator, Prompt, Tracer, TraceStats, read_rows
from attnreport.trace.cache import default_cache_dir

Log = Callable[[str], None]

#: the per-example analysis, as the progress lines name it (its slow part: the attributions)
ANALYSIS_STAGE = "attributions"


def _stderr(message: str) -> None:
    note(message, stream=sys.stderr)


@dataclass
class BuildResult:
    site: Path
    examples: int
    stats: TraceStats
    model: Path
    #: rows of the data file skipped as bad (`[data] on_bad_row = "skip"`), listed on the index
    skipped: int = 0


def checkpoint_key(folder: Path) -> str:
    """A key for a Hugging Face folder: its config, tokenizer and weight files' hashes."""
    return sha256_folder(folder, (".json", ".safetensors", ".bin", ".txt", ".model"))[:24]


def _installed(module: str) -> bool:
    """Whether `module` can be imported, without importing it (torch is export/'s alone)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_model_paths(config: ReportConfig) -> None:
    """A model folder that does not exist is said first, before the options and the data are read:
    any later message about it (not an export, no config.json) would hide the plain cause."""
    where = config.source or "config"
    for section, path in (("model", config.model.path), ("compare", config.compare.path)):
        if path is not None and not Path(path).exists():
            raise ConfigError(f"{where}: [{section}] path {path} does not exist; check the path")


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


def resolve_model(path: Path, cache_dir: Path, *, log: Log = _stderr) -> Path:
    """An exported folder as it is; a Hugging Face folder exported into the cache first."""
    path = Path(path)
    if is_exported(path):
        return path
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"{path}: [model] path is neither an attnreport export (attnreport.json + model.onnx) "
            f"nor a Hugging Face folder (config.json); check the path"
        )
    target = Path(cache_dir) / "models" / checkpoint_key(path)
    if is_exported(target):
        log(f"using the cached export of {path}")
        return target
    if not _installed("torch"):
        raise ConfigError(
            f"{path}: a Hugging Face folder must be exported first, which needs torch: "
            f"pip install torch==2.13.0 'attnreport[export]', or run `attnreport export` elsewhere"
        )
    from attnreport.export import export_model

    export_model(path, target, log=log)
    return target


def make_tracer(folder: Path, options: ModelConfig, cache_dir: Path, *, quantized: bool) -> Tracer:
    """A tracer over the exported model in `folder` with the [model] options of the config."""
    return Tracer(
        folder,
        quantized=quantized,
        batch_size=options.batch_size,
        window=options.window,
        stride=options.stride,
        cache_dir=cache_dir,
    )


def compare_stage(tracer: Tracer, config: ReportConfig, cache_dir: Path, *, log: Log) -> CompareStage:
    """The second model of [compare] (or the int8 export of the first) over the same rows."""
    other = config.compare
    folder = resolve_model(other.path, cache_dir, log=log) if other.path else tracer.folder
    second = make_tracer(folder, config.model, cache_dir, quantized=other.quantized)
    rows = read_rows(config.data, on_bad=lambda bad: None)  # bad rows were reported once
    name = other.name or ("int8" if other.quantized and not other.path else str(folder.name))
    return CompareStage(tracer, second, rows, name=name)


def _decision_scene(scenes: SceneStage, results: AnalysisResults, pages: list[ExamplePage], layers: int):
    """The index's decision-space scene (with its per-layer choices), every example a point."""
    points = [
        DecisionPoint(label=row.label, prediction=row.prediction, text=row.text, link=page.path)
        for row, page in zip(results.rows, pages, strict=True)
    ]
    return scenes.decisions(results.decision_space, results.layer_spaces, points, layers=layers)


def plan_from_traces(traces: Iterable[Trace], card: ModelCard, *, title: str, spool: Path) -> SitePlan:
    """A site plan from traces alone, with no model at hand: each page's attention, rollout and
    prediction, and the metrics; no attributions, head atlas or decision space (they run the model)."""
    tally = ExampleTally(card.labels)

    def examples():
        for trace in traces:
            example = describe(trace, card)
            tally.add(example)
            yield example, None

    pages = gather(examples(), card, spool=spool)
    report = report_document(
        title=title, card=card, entries=[p.record for p in pages], results=tally.results()
    )
    return SitePlan(title=title, card=card, report=report, examples=pages)


def plan_from_generations(
    traces: Iterable[GenerationTrace],
    card: ModelCard,
    *,
    title: str,
    spool: Path,
    skipped_rows: list[dict] | None = None,
) -> SitePlan:
    """A generation report's plan from generation traces: each prompt's page and entry."""
    rows: list[ExampleSummary] = []

    def analysed():
        for trace in traces:
            rows.append(ExampleSummary(trace.id, trace.prompt, trace.label, None))
            yield analyse_generation(trace)

    pages = gather_generation(analysed(), spool=spool)
    results = AnalysisResults(
        rows=rows, metrics=None, summaries=Summaries({}, {}), heads=[], distance_profile=None
    )
    report = report_document(
        title=title,
        card=card,
        entries=[p.record for p in pages],
        results=results,
        kind="generation",
        skipped_rows=skipped_rows,
    )
    return SitePlan(title=title, card=card, report=report, examples=pages)


def generation_options(config: ReportConfig) -> GenerationOptions:
    g = config.generate
    return GenerationOptions(
        max_new_tokens=g.max_new_tokens,
        stop=tuple(g.stop),
        top_k=g.top_k,
        prompt_attention_limit=g.prompt_attention_limit,
        chat_template=g.chat_template,
    )


def build_generation(
    config: ReportConfig, model_dir: Path, cache_dir: Path, out: Path, *, log: Log, progress: bool
) -> BuildResult:
    """A generation report: each prompt answered (or its given answer read) by the causal LM."""
    card = ModelCard.load(model_dir)
    where = config.source or "config"
    if not card.causal:
        raise ConfigError(
            f"{where}: [generate] needs a causal LM, and {model_dir} is a {card.task} model "
            f"({card.architecture}); remove [generate] / [data] prompts for a classification report"
        )
    generator = Generator(model_dir, batch_size=config.model.batch_size, cache_dir=cache_dir)
    skipped = SkippedRows(log)
    total = count_rows(config, prompts=True) if progress else None
    rows = read_rows(config.data, prompts=True, on_bad=skipped)
    prompts = (Prompt(r.id, r.text, r.completion, r.label) for r in rows)
    traces = generator.generate(prompts, generation_options(config))
    traces = counted(traces, stage="generating", total=total, unit="prompt", enabled=progress)
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    spool = spool_folder(out)
    shutil.rmtree(spool, ignore_errors=True)
    try:
        plan = plan_from_generations(
            traces, generator.card, title=config.title, spool=spool, skipped_rows=skipped.entries()
        )
        if not plan.examples:
            raise InputError(f"{config.data.path or '[data] prompts'}: no usable rows; check the data file")
        log(f"answered {generator.stats.generated} prompts, {generator.stats.cached} from the cache")
        site = write_site(
            plan, out, theme=config.site.theme, overrides=config.site.templates, progress=progress
        )
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    return BuildResult(
        site=site,
        examples=len(plan.examples),
        stats=generator.stats,
        model=model_dir,
        skipped=len(skipped),
    )


def build(
    config: ReportConfig,
    out: Path,
    *,
    log: Log = _stderr,
    progress: bool = True,
    subsites: list[Subsite] | None = None,
) -> BuildResult:
    """Build the site for `config` into `out`, replacing a previous site only when done; `subsites`
    are built sites shipped inside it (linked from its index)."""
    check_model_paths(config)
    check_options(config.analysis, where=str(config.source or "config"))
    cache_dir = config.cache_dir or default_cache_dir()
    model_dir = resolve_model(config.model.path, cache_dir, log=log)
    if config.generate.enabled:
        return build_generation(config, model_dir, cache_dir, out, log=log, progress=progress)
    tracer = make_tracer(model_dir, config.model, cache_dir, quantized=config.model.quantized)
    skipped = SkippedRows(log)
    total = count_rows(config) if progress else None
    rows = read_rows(config.data, on_bad=skipped)
    traces = counted(tracer.trace(rows), stage="tracing", total=total, enabled=progress)
    analysis = AnalysisStage(tracer, config.analysis, cache_dir)
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    spool = spool_folder(out)
    shutil.rmtree(spool, ignore_errors=True)
    comparison = compare_stage(tracer, config, cache_dir, log=log) if config.compare.enabled else None
    if comparison is not None:
        traces = comparison.stream(traces)
    try:
        scenes = SceneStage(spool, config.site.theme, example_glb=config.site.example_glb)
        examples = counted(analysis.stream(traces), stage=ANALYSIS_STAGE, total=total, enabled=progress)
        if config.site.scenes:
            items = counted(scenes.stream(examples), stage="scenes", total=total, enabled=progress)
        else:
            items = ((e, None) for e in examples)
        pages = gather(items, tracer.card, spool=spool)
        if not pages:
            raise InputError(f"{config.data.path or '[data] texts'}: no usable rows; check the data file")
        if progress:
            log("dataset: head patterns, attention by distance, decision space")
        results = analysis.finish(comparison)
        decision_scene = None
        if config.site.scenes and results.decision_space is not None:
            decision_scene = _decision_scene(scenes, results, pages, tracer.card.layers)
        report = report_document(
            title=config.title,
            card=tracer.card,
            entries=[p.record for p in pages],
            results=results,
            skipped_rows=skipped.entries(),
        )
        plan = SitePlan(
            title=config.title,
            card=tracer.card,
            report=report,
            examples=pages,
            files=dict(scenes.files),
            decision_scene=decision_scene,
            subsites=list(subsites or []),
        )
        log(f"traced {tracer.stats.traced} texts, {tracer.stats.cached} from the cache")
        site = write_site(
            plan, out, theme=config.site.theme, overrides=config.site.templates, progress=progress
        )
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    return BuildResult(
        site=site, examples=len(pages), stats=tracer.stats, model=model_dir, skipped=len(skipped)
    )
