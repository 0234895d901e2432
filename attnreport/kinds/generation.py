"""The generation report: each prompt answered (or its given answer read) by a causal LM, every
answer token explained; prompts asked again in other words (`[[variants]]`, and the rewrites of
`[[probes]]`) set side by side."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from attnreport.analysis.answer_heads import AnswerHead, AnswerHeadAtlas, AnswerHeadThresholds
from attnreport.analysis.generation import AnswerExplainer, analyse_generation
from attnreport.analysis.probes import AnswerProbe
from attnreport.analysis.variants import AnswerSide, VariantComparison, answer_side, compare_variant
from attnreport.core.config import ProbeConfig, ReportConfig
from attnreport.core.errors import ConfigError, InputError
from attnreport.core.generation import GenerationTrace
from attnreport.core.modelcard import ModelCard
from attnreport.core.progress import counted
from attnreport.kinds.base import BuildContext, count_rows
from attnreport.kinds.probes import answer_probes, probe_variants
from attnreport.run import AnswerWork
from attnreport.run.answer_explainer import answer_explainer, generation_options
from attnreport.scenes.stage import SceneStage
from attnreport.site.generation import PROBES_TEMPLATE, gather_generation
from attnreport.site.listing import ANSWERS
from attnreport.site.pages import SitePlan
from attnreport.site.report import report_document
from attnreport.site.report.head_patterns import head_patterns_section
from attnreport.site.report.probes import answer_probe_entry
from attnreport.site.report.variants import variant_entry
from attnreport.trace import Generator, Prompt, read_rows


@dataclass
class VariantPlan:
    """Which answers a generation report keeps for its variants page, and how it pairs them."""

    #: the prompts and variants involved
    ids: frozenset[str]
    #: the unit a side's prompt is cut into when it has no attributions
    unit: str
    #: the pairs, from the kept sides by id and every prompt's id
    compare: Callable[[dict[str, AnswerSide], list[str]], list[VariantComparison]]


def variant_plan(
    generator: Generator, config: ReportConfig, histories: dict[str, tuple] | None = None
) -> VariantPlan | None:
    """Each `[[variants]]` pair, with the base prompt's answer read under the variant prompt
    (teacher-forced) for the change in its log-probability; `histories` holds the earlier turns
    of the chat rows by id (a variant of a chat's last turn is asked in the same chat)."""
    histories = {} if histories is None else histories
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
        forced = [
            Prompt(f"{v.id}/base-answer", v.prompt, tuple(sides[v.of].ids), None, histories.get(v.of, ()))
            for v in config.variants
        ]
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


def generation_report(
    *,
    title: str,
    card: ModelCard,
    entries: list[dict],
    variants: list[VariantComparison] | None = None,
    probes: list[AnswerProbe] | None = None,
    skipped_rows: list[dict] | None = None,
    heads: list[AnswerHead] | None = None,
    thresholds: AnswerHeadThresholds | None = None,
) -> dict:
    """report.json of a generation report: an answer per prompt in `entries`, with `variants`
    (prompts asked again in other words, side by side), `probes` (the rewrites of `[[probes]]`)
    and `heads`, the answers' head atlas (`analysis.answer_heads`) under `head_patterns`."""
    pages = {e["id"]: e["page"] for e in entries}
    sections = {
        # schema 1 has these in every report: a generation report has no metrics, no dataset means
        # of a classifier's attributions and no classifier's head atlas (its own is `head_patterns`)
        "metrics": {},
        "analysis": {"faithfulness": {}, "agreement_with_occlusion": {}},
        "heads": [],
    }
    if heads:
        sections["head_patterns"] = head_patterns_section(
            heads, thresholds or AnswerHeadThresholds(), pages, layers=card.layers, prompts=len(entries)
        )
    if variants:
        sections["variants"] = [variant_entry(v, pages) for v in variants]
    if probes is not None:
        sections["probes"] = [answer_probe_entry(p, pages) for p in probes]
    return report_document(
        kind=GenerationReport.name,
        title=title,
        card=card,
        examples=entries,
        sections=sections,
        skipped_rows=skipped_rows,
    )


def plan_from_generations(
    traces: Iterable[GenerationTrace],
    card: ModelCard,
    *,
    title: str,
    spool,
    explain: AnswerExplainer | None = None,
    variants: VariantPlan | None = None,
    skipped_rows: list[dict] | None = None,
    probes: list[ProbeConfig] | None = None,
    scenes: SceneStage | None = None,
) -> SitePlan:
    """A generation report's plan from generation traces: each prompt's page and entry; `explain`
    attributes each answer (`answer_explainer`); `variants` sets prompts and their variants side
    by side, among them the rewrites of `probes` (`kinds.probes.probe_variants`); `scenes` draws
    each answer's attention flow (None: no scenes)."""
    ids: list[str] = []
    sides: dict[str, AnswerSide] = {}
    atlas = AnswerHeadAtlas()

    def analysed():
        for trace in traces:
            ids.append(trace.id)
            result = analyse_generation(trace, explain)
            atlas.add(trace, result.sinks)
            if variants is not None and trace.id in variants.ids:
                sides[trace.id] = answer_side(result, unit=variants.unit)
            yield result, (scenes.answer_flow(result) if scenes is not None else None)

    pages = gather_generation(analysed(), spool=spool)
    comparisons = variants.compare(sides, ids) if variants is not None else None
    report = generation_report(
        title=title,
        card=card,
        entries=[p.record for p in pages],
        variants=comparisons,
        probes=answer_probes(probes, comparisons or []) if probes else None,
        skipped_rows=skipped_rows,
        heads=atlas.heads() if len(atlas) else None,
        thresholds=atlas.thresholds,
    )
    files = dict(scenes.files) if scenes is not None else {}
    return SitePlan(
        title=title,
        card=card,
        report=report,
        examples=pages,
        files=files,
        listing=ANSWERS,
        probes_template=PROBES_TEMPLATE,
    )


class GenerationReport:
    """Prompts through a causal LM's generation graphs, answered, explained and drawn one by one."""

    name = "generation"

    def __init__(self) -> None:
        self.generator: Generator | None = None

    def check_config(self, config: ReportConfig) -> None:
        if config.data.group_column:
            raise ConfigError(
                f"{config.source or 'config'}: [data] group_column groups a classification report's "
                "examples; a generation report does not group its prompts yet: remove it"
            )

    def check(self, config: ReportConfig, card: ModelCard) -> None:
        where = config.source or "config"
        if not card.causal:
            raise ConfigError(
                f"{where}: [generate] needs a causal LM, and {config.model.path} is a {card.task} model "
                f"({card.architecture}); remove [generate] / [data] prompts for a classification report"
            )

    @property
    def stats(self):
        return self.generator.stats if self.generator is not None else None

    def plan(self, ctx: BuildContext) -> SitePlan:
        config, log, progress, cache_dir = ctx.config, ctx.log, ctx.progress, ctx.cache_dir
        self.generator = generator = Generator(
            ctx.model_dir, batch_size=config.model.batch_size, cache_dir=cache_dir
        )
        if config.probes:  # each matched prompt, rewritten, is a variant of it
            rows = read_rows(config.data, prompts=True, on_bad=lambda bad: None)  # said once, below
            config = dataclasses.replace(
                config, variants=[*config.variants, *probe_variants(config.probes, rows)]
            )
        #: the contrasts each row asked for, by prompt id, filled as the rows stream (the explainer
        #: reads them when the prompt's answer comes back)
        contrasts: dict[str, tuple] = {}
        #: the earlier turns of the chat rows, by id, filled as the rows stream (their variants,
        #: asked after every row, are asked in the same chat)
        histories: dict[str, tuple] = {}
        # the bar counts what is generated: the rows, then the variants (probes' rewrites included)
        total = count_rows(config, prompts=True) + len(config.variants) if progress else None
        streamed = [0]

        def asked(rows):
            for r in rows:
                streamed[0] += 1
                if r.contrast:
                    contrasts[r.id] = r.contrast
                if r.history:
                    histories[r.id] = r.history
                yield Prompt(r.id, r.text, r.completion, r.label, r.history), tuple(r.contrast)

        variants = (
            (Prompt(v.id, v.prompt, None, f"variant of {v.of}", histories.get(v.of, ())), ())
            for v in config.variants
        )  # lazy: read after the rows, when `histories` is full
        rows = read_rows(config.data, prompts=True, on_bad=ctx.skipped)
        items = itertools.chain(asked(rows), variants)
        source = str(config.data.path or "[data] prompts")
        work = AnswerWork(generator, config, cache_dir, source=source)
        traces = ctx.stream(work, items)
        traces = counted(traces, stage="generating", total=total, unit="prompt", enabled=progress)
        explain = answer_explainer(generator, config, contrasts, cache_dir)
        plan = plan_from_generations(
            traces,
            generator.card,
            title=config.title,
            spool=ctx.spool,
            explain=explain,
            variants=variant_plan(generator, config, histories),
            skipped_rows=ctx.skipped.entries(),
            probes=config.probes,
            scenes=SceneStage.for_build(ctx) if config.site.scenes else None,
        )
        if not plan.examples:
            raise InputError(f"{config.data.path or '[data] prompts'}: no usable rows; check the data file")
        stats = generator.stats
        log(
            f"answered {streamed[0]} prompts and {len(config.variants)} variants "
            f"(answers {stats.generated} generated, {stats.cached} from the cache)"
        )
        return plan
