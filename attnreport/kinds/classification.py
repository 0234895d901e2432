"""The classification report: one `Trace` per text, each page explaining the prediction, and the
dataset's views (head atlas, decision space, metrics, data groups, compare, probes)."""

from __future__ import annotations

import time

from attnreport.analysis.probes import ProbeResult
from attnreport.analysis.results import AnalysisResults, describe
from attnreport.analysis.tally import ExampleTally
from attnreport.core.config import ModelConfig, ReportConfig
from attnreport.core.errors import ConfigError, InputError
from attnreport.core.modelcard import ModelCard
from attnreport.core.progress import counted
from attnreport.kinds.base import BuildContext, count_rows
from attnreport.kinds.probes import ProbeStage
from attnreport.run import TraceWork
from attnreport.run.stage import AnalysisStage, CompareStage
from attnreport.scenes.stage import DecisionPoint, SceneStage
from attnreport.site.pages import ExamplePage, SitePlan, gather
from attnreport.site.probes import gather_probes
from attnreport.site.report import report_document
from attnreport.site.report.dataset import (
    analysis_section,
    comparison_section,
    decision_sections,
    heads_section,
    with_points,
)
from attnreport.site.report.examples import unknown_tokens_section
from attnreport.site.report.metrics import groups_section, metrics_section
from attnreport.site.report.probes import probe_entry
from attnreport.trace import Tracer, read_rows

#: the per-example analysis, as the progress lines name it (its slow part: the attributions)
ANALYSIS_STAGE = "attributions"


def make_tracer(folder, options: ModelConfig, cache_dir, *, quantized: bool) -> Tracer:
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


def classification_report(
    *,
    title: str,
    card: ModelCard,
    entries: list[dict],
    results: AnalysisResults,
    skipped_rows: list[dict] | None = None,
    probes: list[ProbeResult] | None = None,
    probe_pages: dict[tuple[str, str], str] | None = None,
) -> dict:
    """report.json of a classification report: the examples' `entries` (each with its point in the
    decision space, where there is one), the metrics and the dataset-level analysis in `results`;
    `probes` are the counterfactual probes, their shown pairs' pages in `probe_pages` by (probe, id)."""
    sections = {
        "metrics": metrics_section(results, entries),
        "analysis": analysis_section(results),
        "heads": heads_section(results.heads),
        **unknown_tokens_section(entries),
    }
    examples = entries
    space = results.decision_space
    if space is not None:
        sections.update(decision_sections(space, results.layer_spaces, card.layers))
        examples = with_points(entries, space)
    if results.comparison is not None:
        sections["compare"] = comparison_section(results.comparison)
    if results.token_groups is not None:
        sections["token_groups"] = results.token_groups
    if results.data_groups is not None:
        sections["groups"] = groups_section(results.data_groups)
    if probes is not None:
        pages = {e["id"]: e["page"] for e in entries}
        sections["probes"] = [probe_entry(p, probe_pages or {}, pages) for p in probes]
    return report_document(
        kind=ClassificationReport.name,
        title=title,
        card=card,
        examples=examples,
        sections=sections,
        skipped_rows=skipped_rows,
    )


def plan_from_traces(traces, card: ModelCard, *, title: str, spool) -> SitePlan:
    """A site plan from traces alone, with no model at hand: each page's attention, rollout and
    prediction, and the metrics; no attributions, head atlas or decision space (they run the model)."""
    tally = ExampleTally(card.labels)

    def examples():
        for trace in traces:
            example = describe(trace, card)
            tally.add(example)
            yield example, None

    pages = gather(examples(), card, spool=spool)
    report = classification_report(
        title=title, card=card, entries=[p.record for p in pages], results=tally.results()
    )
    return SitePlan(title=title, card=card, report=report, examples=pages)


def closest_label(name: str, labels: list[str]) -> str | None:
    """The model's label `name` means, when it differs only in case or surrounding space."""
    wanted = name.strip().casefold()
    return next((label for label in labels if label.strip().casefold() == wanted), None)


def check_labels(config: ReportConfig, card: ModelCard, log) -> None:
    """The data's labels against the model's, before any model runs (one read of the rows ahead,
    as `count_rows`): rows whose label the model lacks are left out of the accuracy, so say which
    labels and the model's own name for each where only the case differs; when no labelled row
    matches, the accuracy would be silently empty: a one-line error unless ``[data]
    unknown_labels = "go_on"``."""
    if not card.labels:
        return
    counts: dict[str, int] = {}
    for row in read_rows(config.data, on_bad=lambda bad: None):
        if row.label is not None:
            counts[row.label] = counts.get(row.label, 0) + 1
    unknown = sorted(name for name in counts if name not in card.labels)
    if not unknown:
        return
    hints = []
    for name in unknown:
        near = closest_label(name, card.labels)
        hints.append(f"{name!r} ({counts[name]} rows{f'; did you mean {near!r}?' if near else ''})")
    where = config.data.path or "[data] texts"
    message = (
        f"{where}: labels the model does not have: {', '.join(hints)}; the model's labels: "
        f"{', '.join(card.labels)}"
    )
    if len(unknown) == len(counts) and config.data.unknown_labels == "fail":
        raise InputError(
            f'{message}; no row can be scored: fix the labels, or set [data] unknown_labels = "go_on"'
        )
    log(f"{message}; those rows are left out of the accuracy")


class ClassificationReport:
    """Texts through a classifier (or any encoder): traced, analysed and drawn one at a time."""

    name = "classification"

    def __init__(self) -> None:
        self.tracer: Tracer | None = None

    def check_config(self, config: ReportConfig) -> None:
        """Nothing beyond what `ReportConfig.validate` and the options' checks say."""

    def check(self, config: ReportConfig, card: ModelCard) -> None:
        """A causal LM exported with its generation graphs is refused rather than given this report:
        it has no classes, so every page would explain nothing. (One exported with
        ``--no-generation`` still gets this report's attention views.)"""
        if card.task == "causal-lm" and card.generation is not None:
            raise ConfigError(
                f"{config.source or 'config'}: {config.model.path} is a causal LM, whose report explains "
                f"its answers: give [data] prompts (or a file with a prompt column and a [generate] table)"
            )

    @property
    def stats(self):
        return self.tracer.stats if self.tracer is not None else None

    def _compare(self, ctx: BuildContext) -> CompareStage:
        """The second model of [compare] (or the int8 export of the first) over the same rows."""
        config, tracer = ctx.config, self.tracer
        other = config.compare
        folder = ctx.resolve_model(other.path) if other.path else tracer.folder
        second = make_tracer(folder, config.model, ctx.cache_dir, quantized=other.quantized)
        rows = read_rows(config.data, on_bad=lambda bad: None)  # bad rows were reported once
        name = other.name or ("int8" if other.quantized and not other.path else str(folder.name))
        return CompareStage(tracer, second, rows, name=name)

    def plan(self, ctx: BuildContext) -> SitePlan:
        config, log, progress, spool = ctx.config, ctx.log, ctx.progress, ctx.spool
        self.tracer = tracer = make_tracer(
            ctx.model_dir, config.model, ctx.cache_dir, quantized=config.model.quantized
        )
        check_labels(config, tracer.card, log)
        total = count_rows(config) if progress else None
        rows = read_rows(config.data, on_bad=ctx.skipped)
        analysis = AnalysisStage(
            tracer, config.analysis, ctx.cache_dir, group_column=config.data.group_column
        )
        source = str(config.data.path or "[data] texts")
        work = TraceWork(analysis, config.model, ctx.cache_dir, source=source)
        traces = counted(ctx.stream(work, rows), stage="tracing", total=total, enabled=progress)
        comparison = self._compare(ctx) if config.compare.enabled else None
        if comparison is not None:
            traces = comparison.stream(traces)
        probes = ProbeStage(analysis, config.probes) if config.probes else None
        if probes is not None:
            traces = probes.stream(traces)
        scenes = SceneStage.for_build(ctx)
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
        report = classification_report(
            title=config.title,
            card=tracer.card,
            entries=[p.record for p in pages],
            results=results,
            skipped_rows=ctx.skipped.entries(),
            probes=probed,
            probe_pages={(p.probe, p.id): p.path for p in probe_pages},
        )
        # two counts that add up: texts the model ran on now, and texts whose trace was already kept
        log(f"texts: {tracer.stats.traced} run through the model, {tracer.stats.cached} read from the cache")
        return SitePlan(
            title=config.title,
            card=tracer.card,
            report=report,
            examples=pages,
            files=dict(scenes.files),
            decision_scene=decision_scene,
            subsites=list(ctx.subsites),
            probes=probe_pages,
        )
