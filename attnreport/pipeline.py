"""The stages chained: config -> model folder -> traces -> page plan -> site.

The CLI calls these; each step is a stage's own function, so this module only wires.
Over 400 lines because both kinds of report (classification, generation) are wired here, with the
optional stages each can add (compare, probes, variants, executors): one place reads in what order
the stages run and which ones a config turns on.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attnreport.analysis.answers import answer_explainer, generation_options
from attnreport.analysis.generation import AnswerExplainer, analyse_generation
from attnreport.analysis.options import check_generate_options, check_options
from attnreport.analysis.results import AnalysisResults, ExampleSummary, Summaries, describe
from attnreport.analysis.stage import AnalysisStage, CompareStage
from attnreport.analysis.tally import ExampleTally
from attnreport.analysis.variants import AnswerSide, VariantComparison, answer_side, compare_variant
from attnreport.core.config import ModelConfig, ProbeConfig, ReportConfig
from attnreport.core.errors import ConfigError, InputError
from attnreport.core.files import sha256_file, sha256_folder
from attnreport.core.generation import GenerationTrace
from attnreport.core.modelcard import ModelCard, is_exported
from attnreport.core.progress import counted, note
from attnreport.core.trace import Trace
from attnreport.probing import ProbeStage, answer_probes, probe_variants
from attnreport.run import open_executor, open_generation_executor
from attnreport.scenes.stage import DecisionPoint, SceneStage
from attnreport.site.build import spool_folder, write_site
from attnreport.site.generation import gather_generation
from attnreport.site.pages import ExamplePage, SitePlan, Subsite, gather
from attnreport.site.probes import gather_probes
from attnreport.site.report import report_document
from attnreport.trace import BadRow, Generator, Prompt, Tracer, TraceStats, read_rows
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


def resolve_model(path: Path, cache_dir: Path, *, with_qk: bool = False, log: Log = _stderr) -> Path:
    """An exported folder as it is; a Hugging Face folder or a GGUF file exported into the cache first
    (with queries and keys when `with_qk`, in a folder of its own), a GGUF file keyed by its hash."""
    path = Path(path)
    if is_exported(path):
        return path
    gguf = path.is_file() and path.suffix.lower() == ".gguf"
    if not gguf and not (path / "config.json").is_file():
        raise ConfigError(
            f"{path}: [model] path is neither an attnreport export (attnreport.json + model.onnx), "
            f"a Hugging Face folder (config.json) nor a .gguf file; check the path"
        )
    key = "gguf-" + sha256_file(path)[:24] if gguf else checkpoint_key(path)
    target = Path(cache_dir) / "models" / (key + ("-qk" if with_qk else ""))
    if is_exported(target):
        log(f"using the cached export of {path}")
        return target
    if not _installed("torch"):
        raise ConfigError(
            f"{path}: a Hugging Face folder or GGUF file must be exported first, which needs torch: "
            f"pip install torch==2.13.0 'attnreport[export]', or run `attnreport export` elsewhere"
        )
    from attnreport.export import export_model

    export_model(path, target, with_qk=with_qk, log=log)
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
        qk_max_tokens=options.neuron_view_max_tokens,
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
    """The index's decision-space scene (with its per-layer choices and, with data groups, the
    points coloured by group), every example a point."""
    points = [
        DecisionPoint(
            label=row.label,
            prediction=row.prediction,
            text=row.text,
            link=page.path,
            group=page.record.get("group"),
        )
        for row, page in zip(results.rows, pages, strict=True)
    ]
    column = results.data_groups.column if results.data_groups is not None else ""
    return scenes.decisions(
        results.decision_space, results.layer_spaces, points, layers=layers, group_column=column
    )


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
    explain: AnswerExplainer | None = None,
    variants: VariantPlan | None = None,
    skipped_rows: list[dict] | None = None,
    probes: list[ProbeConfig] | None = None,
    scenes: SceneStage | None = None,
) -> SitePlan:
    """A generation report's plan from generation traces: each prompt's page and entry; `explain`
    attributes each answer (`answer_explainer`); `variants` sets prompts and their variants side
    by side, among them the rewrites of `probes` (`probing.probe_variants`); `scenes` draws each
    answer's attention flow (None: no scenes)."""
    rows: list[ExampleSummary] = []
    sides: dict[str, AnswerSide] = {}

    def analysed():
        for trace in traces:
            rows.append(ExampleSummary(trace.id, trace.prompt, trace.label, None))
            result = analyse_generation(trace, explain)
            if variants is not None and trace.id in variants.ids:
                sides[trace.id] = answer_side(result, unit=variants.unit)
            yield result, (scenes.answer_flow(result) if scenes is not None else None)

    pages = gather_generation(analysed(), spool=spool)
    comparisons = variants.compare(sides, [r.id for r in rows]) if variants is not None else None
    results = AnalysisResults(
        rows=rows, metrics=None, summaries=Summaries({}, {}), heads=[], distance_profile=None
    )
    report = report_document(
        title=title,
        card=card,
        entries=[p.record for p in pages],
        results=results,
        kind="generation",
        variants=comparisons,
        skipped_rows=skipped_rows,
        answer_probes=answer_probes(probes, comparisons or []) if probes else None,
    )
    files = dict(scenes.files) if scenes is not None else {}
    return SitePlan(title=title, card=card, report=report, examples=pages, files=files)


@dataclass
class VariantPlan:
    """Which answers a generation report keeps for its variants page, and how it pairs them."""

    #: the prompts and variants involved
    ids: frozenset[str]
    #: the unit a side's prompt is cut into when it has no attributions
    unit: str
    #: the pairs, from the kept sides by id and every prompt's id
    compare: Callable[[dict[str, AnswerSide], list[str]], list[VariantComparison]]


def variant_plan(generator: Generator, config: ReportConfig) -> VariantPlan | None:
    """Each `[[variants]]` pair, with the base prompt's answer read under the variant prompt
    (teacher-forced) for the change in its log-probability."""
    if not config.variants:
        return None
    ids = frozenset(v.of for v in config.variants) | frozenset(v.id for v in config.variants)

    def compare(sides: dict[str, AnswerSide], seen: list[str]) -> list[VariantComparison]:
        missing = [v.of for v in config.variants if v.of not in sides]
        if missing:
            own = {v.id for v in config.variants}
            known = ", ".join([i for i in seen if i not in own][:5]) or "none"
            raise ConfigError(
                f"{config.source or 'config'}: [[variants]] of = {missing[0]!r}: no prompt has that id "
                f"(ids: {known})"
            )
        forced = [Prompt(f"{v.id}/base-answer", v.prompt, tuple(sides[v.of].ids)) for v in config.variants]
        options = generation_options(config)
        out = []
        for v, trace in zip(config.variants, generator.generate(forced, options), strict=True):
            with np.errstate(divide="ignore"):
                under = float(np.log(trace.probability.astype(np.float64)).sum()) if trace.steps else None
            out.append(
                compare_variant(
                    sides[v.of], sides[v.id], id=v.id, name=v.name, base_answer_under_variant=under
                )
            )
        return out

    return VariantPlan(ids=ids, unit=config.generate.attribution_unit, compare=compare)


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
    if config.probes:  # each matched prompt, rewritten, is a variant of it
        rows = read_rows(config.data, prompts=True, on_bad=lambda bad: None)  # said once, below
        config = dataclasses.replace(
            config, variants=[*config.variants, *probe_variants(config.probes, rows)]
        )
    contrasts: dict[str, tuple] = {}
    skipped = SkippedRows(log)
    total = count_rows(config, prompts=True) if progress else None

    def prompts_of(rows):
        for r in rows:
            if r.contrast:
                contrasts[r.id] = r.contrast
            yield Prompt(r.id, r.text, r.completion, r.label)

    variants = [Prompt(v.id, v.prompt, None, f"variant of {v.of}") for v in config.variants]
    rows = read_rows(config.data, prompts=True, on_bad=skipped)
    prompts = itertools.chain(prompts_of(rows), variants)
    source = str(config.data.path or "[data] prompts")
    executor = open_generation_executor(config.run, generator, config, cache_dir, source=source, log=log)
    traces = executor.generations(prompts, contrasts)
    traces = counted(traces, stage="generating", total=total, unit="prompt", enabled=progress)
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    spool = spool_folder(out)
    shutil.rmtree(spool, ignore_errors=True)
    try:
        explain = answer_explainer(generator, config, contrasts, cache_dir)
        plan = plan_from_generations(
            traces,
            generator.card,
            title=config.title,
            spool=spool,
            explain=explain,
            variants=variant_plan(generator, config),
            skipped_rows=skipped.entries(),
            probes=config.probes,
            scenes=SceneStage(spool, config.site.theme, example_glb=config.site.example_glb)
            if config.site.scenes
            else None,
        )
        if not plan.examples:
            raise InputError(f"{config.data.path or '[data] prompts'}: no usable rows; check the data file")
        log(f"answered {generator.stats.generated} prompts, {generator.stats.cached} from the cache")
        site = write_site(
            plan, out, theme=config.site.theme, overrides=config.site.templates, progress=progress
        )
    finally:
        shutil.rmtree(spool, ignore_errors=True)
        executor.close()
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
    check_generate_options(config.generate, where=str(config.source or "config"))
    cache_dir = config.cache_dir or default_cache_dir()
    model_dir = resolve_model(config.model.path, cache_dir, with_qk=config.model.with_qk, log=log)
    if config.generate.enabled:
        if config.data.group_column:
            raise ConfigError(
                f"{config.source or 'config'}: [data] group_column groups a classification report's "
                "examples; a generation report does not group its prompts yet: remove it"
            )
        return build_generation(config, model_dir, cache_dir, out, log=log, progress=progress)
    tracer = make_tracer(model_dir, config.model, cache_dir, quantized=config.model.quantized)
    skipped = SkippedRows(log)
    total = count_rows(config) if progress else None
    rows = read_rows(config.data, on_bad=skipped)
    analysis = AnalysisStage(tracer, config.analysis, cache_dir, group_column=config.data.group_column)
    source = str(config.data.path or "[data] texts")
    executor = open_executor(config.run, analysis, config.model, cache_dir, source=source, log=log)
    traces = counted(executor.traces(rows), stage="tracing", total=total, enabled=progress)
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    spool = spool_folder(out)
    shutil.rmtree(spool, ignore_errors=True)
    comparison = compare_stage(tracer, config, cache_dir, log=log) if config.compare.enabled else None
    if comparison is not None:
        traces = comparison.stream(traces)
    probes = ProbeStage(analysis, config.probes) if config.probes else None
    if probes is not None:
        traces = probes.stream(traces)
    try:
        scenes = SceneStage(spool, config.site.theme, example_glb=config.site.example_glb)
        examples = counted(analysis.stream(traces), stage=ANALYSIS_STAGE, total=total, enabled=progress)
        if config.site.scenes:
            items = counted(scenes.stream(examples), stage="scenes", total=total, enabled=progress)
        else:
            items = ((e, None) for e in examples)
        pages = gather(items, tracer.card, spool=spool, attribution_scale=config.site.attribution_scale)
        if not pages:
            raise InputError(f"{config.data.path or '[data] texts'}: no usable rows; check the data file")
        if progress:
            log("dataset: head patterns, attention by distance, decision space")
        results = analysis.finish(comparison)
        started = time.perf_counter()
        probed = probes.results() if probes is not None else None
        if probed:
            matched = sum(p.matched for p in probed)
            log(f"probes: {matched} texts matched, run again in {time.perf_counter() - started:.1f} s")
        probe_pages = gather_probes(
            probed or [], tracer.card, spool=spool, attribution_scale=config.site.attribution_scale
        )
        decision_scene = None
        if config.site.scenes and results.decision_space is not None:
            decision_scene = _decision_scene(scenes, results, pages, tracer.card.layers)
        report = report_document(
            title=config.title,
            card=tracer.card,
            entries=[p.record for p in pages],
            results=results,
            skipped_rows=skipped.entries(),
            probes=probed,
            probe_pages={(p.probe, p.id): p.path for p in probe_pages},
        )
        plan = SitePlan(
            title=config.title,
            card=tracer.card,
            report=report,
            examples=pages,
            files=dict(scenes.files),
            decision_scene=decision_scene,
            subsites=list(subsites or []),
            probes=probe_pages,
        )
        log(f"traced {tracer.stats.traced} texts, {tracer.stats.cached} from the cache")
        site = write_site(
            plan, out, theme=config.site.theme, overrides=config.site.templates, progress=progress
        )
    finally:
        shutil.rmtree(spool, ignore_errors=True)
        executor.close()
    return BuildResult(
        site=site, examples=len(pages), stats=tracer.stats, model=model_dir, skipped=len(skipped)
    )
