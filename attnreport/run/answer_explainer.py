"""How a build explains each answer: the generation options a config asks for, the asked
contrasts as token ids, and the explainer (cached by content) that the pipeline and the Dask
workers share, so an answer explained on a worker is the answer the driver would explain.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from attnreport.analysis.answer_attribution import explain_answer
from attnreport.analysis.answer_codec import ANSWER_EXPLANATION_VERSION
from attnreport.analysis.answer_codec import from_json as explanation_from_json
from attnreport.analysis.answer_codec import to_json as explanation_to_json
from attnreport.analysis.generation import AnswerExplainer, prompt_units, segment_members
from attnreport.core.config import ReportConfig
from attnreport.core.generation import GenerationTrace
from attnreport.trace import GenerationOptions, Generator
from attnreport.trace.cache import ResultCache
from attnreport.trace.forced import ForcedAnswer


def generation_options(config: ReportConfig) -> GenerationOptions:
    g = config.generate
    return GenerationOptions(
        max_new_tokens=g.max_new_tokens,
        stop=tuple(g.stop),
        top_k=g.top_k,
        prompt_attention_limit=g.prompt_attention_limit,
        chat_template=g.chat_template,
    )


def foil_tokens(
    generator: Generator, trace: GenerationTrace, asked
) -> tuple[list[tuple[int, int]], list[str]]:
    """A row's asked-for contrasts (step, foil text) as (step, token id) pairs: the foil's first
    token as the tokenizer reads it; and why any was left out (a step beyond the answer)."""
    pairs, skipped = [], []
    for step, text in asked:
        ids = generator.tokenizer.encode(text, add_special_tokens=False).ids
        if step >= trace.steps:
            skipped.append(f"contrast at step {step} with «{text}»: the answer has {trace.steps} tokens")
        elif not ids:
            skipped.append(f"contrast at step {step}: «{text}» has no tokens")
        else:
            pairs.append((step, ids[0]))
    return pairs, skipped


def answer_explainer(
    generator: Generator,
    config: ReportConfig,
    contrasts: dict[str, tuple] | None = None,
    cache_dir: Path | None = None,
) -> AnswerExplainer | None:
    """What made each answer token: attributions over the prompt's units (the words of the last
    user turn, each earlier turn of a chat as one unit; the template's tokens are no unit), each
    coalition teacher-forced through the generator's decoder once; `contrasts` are the rows'
    asked-for contrasts, by prompt id. With `cache_dir`, each answer's explanation is kept in the
    content cache (keyed by the model, the options, the prompt, the answer's tokens and the
    contrasts asked), so a rebuild runs no coalition again."""
    g = config.generate
    if not g.attributions:
        return None
    contrasts = {} if contrasts is None else contrasts  # filled as the rows stream: the same dict
    cache = None
    if cache_dir is not None and generator.use_cache:
        options = {
            "generate": asdict(g),
            "analysis": asdict(config.analysis),
            "generation": generation_options(config).to_dict(),
            "batch_size": config.model.batch_size,
            "version": ANSWER_EXPLANATION_VERSION,
        }
        cache = ResultCache(cache_dir, "answers", generator.model_key(), options)

    def cached(trace: GenerationTrace, views: dict[str, np.ndarray]):
        key = json.dumps([trace.text, trace.ids.tolist(), [list(c) for c in contrasts.get(trace.id, ())]])
        hit = cache.get(key)
        if hit is not None:
            try:
                return explanation_from_json(hit["explanation"])
            except (KeyError, ValueError, TypeError):
                pass  # an entry of another version: computed again and replaced
        result = explain(trace, views)
        with contextlib.suppress(ValueError):  # a value not finite: left uncached, computed again
            # as text inside the entry: the cache sorts keys, and the methods' order is the report's
            cache.put(key, {"explanation": explanation_to_json(result)})
        return result

    def explain(trace: GenerationTrace, views: dict[str, np.ndarray]):
        units = prompt_units(trace, g.attribution_unit, max_tokens=config.analysis.max_attribution_tokens)
        foils, skipped = foil_tokens(generator, trace, contrasts.get(trace.id, ()))
        members, segments = list(units.members), []
        for name, positions in segment_members(trace).items():
            # a chat's earlier turns are always units; the template and the answer so far by option
            if g.segment_units or name.startswith("turn-"):
                members.append(positions)
                segments.append(name)
        model = ForcedAnswer(generator, trace, members, foils=foils, batch_size=config.model.batch_size)
        return explain_answer(
            model,
            units=units,
            options=config.analysis,
            output=g.attribution_output,
            methods=tuple(g.attributions),
            views=views,
            skipped=skipped,
            segments=segments,
        )

    return explain if cache is None else cached
