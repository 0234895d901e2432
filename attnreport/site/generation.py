"""A generation report's pages: each prompt's answer, token by token, with what each token looked at.

Like the example pages, the bulky data (every step's attention rows, quantised) is spooled as
each prompt streams by; only the report's small entry stays in memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from attnreport.analysis.answer_glance import open_step
from attnreport.analysis.attention_views import DEFAULT_VIEW, VIEWS
from attnreport.analysis.attribution_methods import colour_scale_of
from attnreport.analysis.generation import SEGMENTS, GenerationAnalysis, segment_members, segment_name
from attnreport.analysis.sinks import SINK_RULE
from attnreport.core.jsonsafe import NonFinite, clean
from attnreport.core.tokens import display_tokens
from attnreport.scenes.stage import SceneFiles
from attnreport.site.encode import packed_unit, script_json
from attnreport.site.pages import ExamplePage, link_pages, page_path
from attnreport.site.report.answers import generation_entry
from attnreport.site.slugs import SlugMaker

#: the template of a generation page
TEMPLATE = "generation.html.j2"
#: what the probes page and the index say of a generation report's probes (`SitePlan.probes_template`)
PROBES_TEMPLATE = "probes_prompts.html.j2"


def attribution_data(result: GenerationAnalysis) -> dict | None:
    """What the page colours by attribution: each unit's prompt tokens, and per method the values
    of every answer token, of its contrast with the runner-up, and of the whole answer."""
    ex, g = result.explanation, result.trace
    if ex is None or not ex.attributions:
        return None
    members = [] if ex.units is None else [m.tolist() for m in ex.units.members]
    segments = segment_members(g)
    members += [segments[name].tolist() for name in ex.segments]
    texts = [] if ex.units is None else [u["text"] for u in ex.units.to_list(g.text)]
    return {
        "unit": ex.units.kind if ex.units is not None else "custom",
        "units": texts + [segment_name(g, name) for name in ex.segments],
        "members": members,
        "output": ex.output,
        "baseline": ex.baseline,
        "scale": colour_scale_of(ex.output),
        "evaluations": ex.evaluations,
        "foils": [g.top_tokens[t][f] if f >= 0 else None for t, f in enumerate(ex.foils.tolist())],
        "asked": [{"step": t, "foil": foil} for t, _, foil in ex.requested],
        "skipped": ex.skipped,
        "methods": {
            name: {
                "values": a.values,
                "stderr": a.std_error,
                "answer": a.answer,
                "answer_stderr": a.answer_std_error,
                "contrasts": a.contrasts,
                "asked": a.requested,
                "exact": a.exact,
                "estimator": a.method,
            }
            for name, a in ex.attributions.items()
        },
        "faithfulness": ex.faithfulness,
        "token_faithfulness": ex.token_faithfulness,
    }


def generation_data(result: GenerationAnalysis) -> dict:
    """What a generation page's script draws: the tokens, every step's scores and alternatives,
    its attention rows (by layer and head) and rollout row, and the logit lens."""
    g = result.trace
    raw = result.views.get("attention")
    data = {
        "n": g.n_prompt,
        "steps": g.steps,
        "layers": g.layers,
        "heads": g.heads,
        "prompt": display_tokens(g.text, g.prompt_tokens, g.prompt_offsets, g.special),
        "special": g.special.tolist(),
        "from_template": g.from_template.tolist(),
        "answer": list(g.tokens),
        "probability": g.probability,
        "entropy": g.entropy,
        "rank": g.rank,
        "top": [
            [{"token": tok, "probability": float(p)} for tok, p in zip(toks, ps, strict=True)]
            for toks, ps in zip(g.top_tokens, g.top_probabilities, strict=True)
        ],
        "attention": packed_unit(g.attentions),
        "rollout": None if raw is None or raw.rollout is None else packed_unit(raw.rollout),
        "views": {
            name: {
                "label": VIEWS[name].label,
                "description": VIEWS[name].description,
                "folds_sinks": VIEWS[name].folds_sinks,
                # the raw view's rows are `attention` and `rollout` above
                "attention": None if name == "attention" else packed_unit(view.rows),
                "rollout": None if name == "attention" or view.rollout is None else packed_unit(view.rollout),
            }
            for name, view in result.views.items()
        },
        "default_view": result.default_view,
        "default_aggregate": DEFAULT_VIEW[1],
        "open_step": open_step(result),
        "sinks": None
        if result.sinks is None
        else {"layers": result.sinks.layers, "share": result.sinks.share, "rule": SINK_RULE},
        "looked_at": result.looked_at,
        "segments": {"names": list(SEGMENTS), "shares": result.segments},
        "forced": g.forced,
        "attribution": attribution_data(result),
    }
    if g.lens_probability is not None:
        data["lens"] = {
            "probability": g.lens_probability,
            "rank": g.lens_rank,
            "top_token": [[tokens[0] for tokens in layer] for layer in g.lens_top_tokens],
            "top_probability": g.lens_top_probabilities[..., 0],
        }
    return data


def gather_generation(
    results: Iterable[tuple[GenerationAnalysis, SceneFiles | None]], *, spool: Path
) -> list[ExamplePage]:
    """Every prompt's page, its data spooled into `spool` as it streams by; `results` are the
    analysed answers, each with its flow scene (None without one)."""
    spool = Path(spool)
    spool.mkdir(parents=True, exist_ok=True)
    slug_for = SlugMaker()
    pages = []
    for result, scene in results:
        slug = slug_for(result.trace.id)
        counted = NonFinite()
        data = clean(generation_data(result), counted)
        record = generation_entry(result, page_path(slug), page_nonfinite=counted.count)
        if "nonfinite" in record:
            data["nonfinite"] = record["nonfinite"]
        del result
        data_file = spool / f"{len(pages)}.json"
        data_file.write_text(script_json(data), encoding="utf-8")
        pages.append(
            ExamplePage(slug=slug, record=record, data_file=data_file, template=TEMPLATE, scene=scene)
        )
    return link_pages(pages)
