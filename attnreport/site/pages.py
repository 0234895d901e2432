"""Phase one of a build: gather everything every page needs, before a page is written.

Examples stream through one at a time: each example's bulky page data (its quantised
attentions) is spooled to a file as soon as it is made, so memory holds only the small
per-example entries that report.json needs, however many examples there are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from attnreport.analysis.attribution_methods import METHODS, colour_scale_of
from attnreport.analysis.results import ExampleAnalysis
from attnreport.core.jsonsafe import NonFinite, clean
from attnreport.core.modelcard import ModelCard
from attnreport.core.tokens import display_tokens
from attnreport.scenes.stage import SceneFiles
from attnreport.site.encode import packed_unit, script_json
from attnreport.site.listing import EXAMPLES, Listing
from attnreport.site.neuron import neuron_data
from attnreport.site.report.examples import example_entry
from attnreport.site.slugs import SlugMaker


@dataclass
class ExamplePage:
    slug: str
    #: the example's entry in report.json (`site.report.examples.example_entry`, or an answer's)
    record: dict
    #: the page script's data (tokens, quantised attentions, rollout): script-safe JSON, spooled
    data_file: Path
    previous: str | None = None
    next: str | None = None
    #: the attention-flow scene (and its group)
    scene: SceneFiles | None = None
    #: the page's template: an example's, or a generation's (`site.generation.TEMPLATE`)
    template: str = "example.html.j2"

    @property
    def path(self) -> str:
        """The page, relative to the site root."""
        return page_path(self.slug)


@dataclass
class SitePlan:
    title: str
    card: ModelCard
    #: the report (`site.report.report_document`), which the templates lay out
    report: dict
    examples: list[ExamplePage] = field(default_factory=list)
    #: extra files of the site (site-relative path -> file to copy), e.g. rendered scenes
    files: dict[str, Path] = field(default_factory=dict)
    #: the decision-space scene on the index
    decision_scene: SceneFiles | None = None
    #: other built sites shipped inside this one (e.g. the demo's generation report), linked from the index
    subsites: list[Subsite] = field(default_factory=list)
    #: the counterfactual probes' side-by-side pages (`site.probes.ProbePage`: that module reads
    #: this one, so the type is named, not imported)
    probes: list = field(default_factory=list)
    #: how the index lists the entries (`site.listing.EXAMPLES` or `ANSWERS`), the kind's choice
    listing: Listing = EXAMPLES
    #: what the probes page and the index say of each probe (a template of macros: the kind's
    #: choice, `site.generation.PROBES_TEMPLATE` for prompts), so no template asks the kind
    probes_template: str = "probes_texts.html.j2"


@dataclass
class Subsite:
    """A built site copied into a folder of this one, swapped in with it."""

    title: str
    #: its folder, relative to this site's root
    path: str
    #: the built site to copy
    source: Path


def page_path(slug: str) -> str:
    """An example's page, relative to the site root."""
    return f"examples/{slug}.html"


def head_page(layer: int, head: int) -> str:
    """A head's page, relative to the site root."""
    return f"heads/L{layer}-H{head}.html"


def colour_scale(attribution: dict, scale: float | None = None) -> dict:
    """How an attribution view is coloured: full colour at `scale` (in the output's units; default
    half the output's range), neutral below the attribution's negligible effect. Fixed per output,
    not per example, so equal colours mean equal effects on every page."""
    output = attribution.get("output", "probability")
    full = float(scale) if scale is not None else colour_scale_of(output)
    return {"scale": full, "negligible": float(attribution.get("negligible", 0.0)), "output": output}


def page_data(example: ExampleAnalysis, card: ModelCard, *, attribution_scale: float | None = None) -> dict:
    """The data an example page's scripts draw: token views, quantised attention, rollout."""
    trace, explanation = example.trace, example.explanation
    views = {"rollout": example.rollout_row}
    scales: dict[str, dict] = {}
    errors: dict[str, list[float]] = {}
    # what each view's values run over: "token" (one per token) or a unit kind, whose character
    # spans are in "units" (the same units for every attribution of an example)
    view_unit = {"rollout": "token"}
    units = None
    if explanation is not None:
        for name, a in explanation.attributions.items():
            view_unit[name] = a.get("unit", "token")
            if "units" in a:
                units = [[u["start"], u["stop"]] for u in a["units"]]
        if explanation.flow is not None:
            view_unit["flow"] = "token"
        views.update({name: a["values"] for name, a in explanation.attributions.items()})
        scales = {name: colour_scale(a, attribution_scale) for name, a in explanation.attributions.items()}
        errors = {name: a["std_error"] for name, a in explanation.attributions.items() if "std_error" in a}
        if explanation.flow is not None:
            views["flow"] = explanation.flow
        for name, a in other_views(explanation).items():
            views[name] = a["values"]
            view_unit[name] = a.get("unit", "token")
            scales[name] = colour_scale(a, attribution_scale)
            if "std_error" in a:
                errors[name] = a["std_error"]
    data = {
        "views": views,
        "errors": errors,
        "view_unit": view_unit,
        #: attribution views' fixed colour scales (the others are shaded relative to their peak)
        "scales": scales,
        #: positions of the tokens the tokenizer could not read ([UNK])
        "unknown": list(example.unknown),
        "units": units,
        "text": trace.text,
        "view_notes": view_notes(explanation),
        "tokens": display_tokens(trace.text, trace.tokens, trace.offsets, trace.special),
        "special": trace.special.tolist(),
        "layers": trace.layers,
        "heads": trace.heads,
        "n": trace.n_tokens,
        "attention": packed_unit(example.attentions),
        "rollout_matrix": packed_unit(example.rollout),
        "rollout": example.rollout_row,
        "read_position": card.read_position,
    }
    neuron = neuron_data(trace, card)
    if neuron is not None:  # pages of exports without queries and keys stay as they were
        data["neuron"] = neuron
    return data


def other_views(explanation) -> dict[str, dict]:
    """The views of the other explained classes and of the contrast, by the name the page's view
    list shows ("shapley for urgent", "shapley: complaint rather than urgent"), each its entry
    with the method's name under "method"."""
    views = {}
    for label, methods in explanation.classes.items():
        for method, a in methods.items():
            views[f"{method} for {label}"] = {**a, "method": method}
    c = explanation.contrast
    if c:
        for method in ATTRIBUTION_NAMES:
            if method in c:
                views[f"{method}: {c['a']} rather than {c['b']}"] = {**c[method], "method": method}
    return views


#: the attribution entries a contrast may hold, in the order the page lists them
ATTRIBUTION_NAMES = tuple(METHODS)


def view_notes(explanation) -> dict[str, str]:
    """One line per token view saying what its numbers are."""
    notes = {"rollout": "attention rollout (Abnar & Zuidema 2020) into the read position"}
    if explanation is None:
        return notes
    if explanation.flow is not None:
        notes["flow"] = "attention flow (max-flow, Abnar & Zuidema 2020) into the read position"
    shown = {name: {**a, "method": name} for name, a in explanation.attributions.items()}
    for name, a in {**shown, **other_views(explanation)}.items():
        unit = a.get("unit", "token")
        if unit == "token":
            what = f"{a['output']} of {a['target']!r}, absent tokens replaced by {a['baseline']}"
        else:
            what = (
                f"{a['output']} of {a['target']!r} over {len(a['values'])} {unit}s, every token of "
                f"an absent {unit} replaced by {a['baseline']}"
            )
        if a.get("windows"):
            what += f", run through the {a['windows']} windows the text was traced in"
            read = a.get("windows_read", a["windows"])
            if read < a["windows"]:
                what += f" (the prediction reads the last {read} only: what lies before it scores 0)"
        if a["method"] == "shapley":
            if a["exact"]:
                how = "exact"
            elif a.get("std_error") is not None:
                how = f"sampled ({a['method']}), standard error shown on hover"
            else:
                how = f"estimated ({a['method']}), no standard error (a fit: biased where it fits poorly)"
            notes[name] = f"Shapley values of the {what}; {how}, {a['evaluations']} model evaluations"
        else:
            notes[name] = f"occlusion: drop in the {what} when the {unit} alone is removed"
    return notes


def gather(
    items: Iterable[tuple[ExampleAnalysis, SceneFiles | None]],
    card: ModelCard,
    *,
    spool: Path,
    attribution_scale: float | None = None,
) -> list[ExamplePage]:
    """Every example's page, its data spooled into `spool` (a scratch folder) as it streams by;
    `items` are the analysed examples, each with its flow scene (None without scenes);
    `attribution_scale` is `[site] attribution_scale`."""
    spool = Path(spool)
    spool.mkdir(parents=True, exist_ok=True)
    slug_for = SlugMaker()
    pages = []
    for example, scene in items:
        slug = slug_for(example.trace.id)
        counted = NonFinite()
        data = clean(page_data(example, card, attribution_scale=attribution_scale), counted)
        record = example_entry(example, page_path(slug), page_nonfinite=counted.count)
        if "nonfinite" in record:
            data["nonfinite"] = record["nonfinite"]
        del example
        data_file = spool / f"{len(pages)}.json"
        data_file.write_text(script_json(data), encoding="utf-8")
        pages.append(ExamplePage(slug=slug, record=record, data_file=data_file, scene=scene))
    return link_pages(pages)


def link_pages(pages: list[ExamplePage]) -> list[ExamplePage]:
    """Each page's previous and next page, in report order."""
    for i, page in enumerate(pages):
        page.previous = pages[i - 1].slug if i > 0 else None
        page.next = pages[i + 1].slug if i + 1 < len(pages) else None
    return pages
