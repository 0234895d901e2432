"""The counterfactual probes' pages: a list of probes, and a page per shown pair, side by side.

Both texts of a pair are shaded by attributions to the same class (the one predicted for the
original, and the counterfactual's where it differs), so equal colours on the two sides mean the
same thing; each side's data is a slice of an example page's (`pages.page_data`), spooled like it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import markupsafe

from attnreport.analysis.probes import ProbeResult
from attnreport.core.jsonsafe import clean
from attnreport.core.modelcard import ModelCard
from attnreport.site.encode import script_json
from attnreport.site.pages import SitePlan, page_data
from attnreport.site.slugs import SlugMaker

#: the keys of an example page's data that a side of a probe page draws (the token view's)
SIDE_KEYS = ("unknown", "units", "text", "tokens", "special")


@dataclass
class ProbePage:
    """One shown pair's page: both texts, their predictions and attributions."""

    slug: str
    #: the probe's name and the original's id: the key of the pair's entry in report.json
    probe: str
    id: str
    #: the page script's data, spooled
    data_file: Path

    @property
    def path(self) -> str:
        return probe_page(self.slug)


def probe_page(slug: str) -> str:
    """A pair's page, relative to the site root."""
    return f"probes/{slug}.html"


def _named_views(example, card: ModelCard, *, attribution_scale: float | None) -> dict:
    """An example's token views by the class they explain ("shapley for urgent"), with rollout."""
    data = page_data(example, card, attribution_scale=attribution_scale)
    own = example.prediction.label if example.prediction is not None else None
    out = {"views": {}, "errors": {}, "view_unit": {}, "scales": {}, "view_notes": {}}
    for name in data["views"]:
        shown = name
        if example.explanation is not None and name in example.explanation.attributions:
            shown = f"{name} for {own}"
        elif name != "rollout" and " for " not in name:
            continue  # flow and the contrast: not the same question on both sides
        out["views"][shown] = data["views"][name]
        for key in ("errors", "view_unit", "scales", "view_notes"):
            if name in data[key]:
                out[key][shown] = data[key][name]
    return {**out, **{key: data[key] for key in SIDE_KEYS}}


def side_data(example, card: ModelCard, classes: list[str], *, attribution_scale: float | None) -> dict:
    """One side of a pair: its token views for `classes` (and rollout), as the token view reads them."""
    data = _named_views(example, card, attribution_scale=attribution_scale)
    keep = {name for name in data["views"] if name == "rollout" or name.rsplit(" for ", 1)[-1] in classes}
    for key in ("views", "errors", "view_unit", "scales", "view_notes"):
        data[key] = {name: value for name, value in data[key].items() if name in keep}
    return data


def gather_probes(
    results: list[ProbeResult], card: ModelCard, *, spool: Path, attribution_scale: float | None = None
) -> list[ProbePage]:
    """Every shown pair's page, its data spooled into `spool`."""
    folder = Path(spool) / "probes"
    folder.mkdir(parents=True, exist_ok=True)
    slug_for = SlugMaker()
    pages = []
    for result in results:
        for pair in result.shown():
            original, counterfactual = result.sides[pair.id]
            classes = [result.labels[pair.predicted], result.labels[pair.predicted_after]]
            data = {
                "classes": list(dict.fromkeys(classes)),
                "sides": [
                    side_data(side, card, classes, attribution_scale=attribution_scale)
                    for side in (original, counterfactual)
                ],
            }
            page = ProbePage(
                slug=slug_for(f"{result.name}-{pair.id}"),
                probe=result.name,
                id=pair.id,
                data_file=folder / f"{len(pages)}.json",
            )
            page.data_file.write_text(script_json(clean(data)), encoding="utf-8")
            pages.append(page)
    return pages


def write_probe_pages(plan: SitePlan, folder: Path, render: Callable[..., str]) -> None:
    """probes.html (every probe) and each shown pair's page into the site being built; `render`
    is the build's (template name, **context) -> HTML."""
    entries = plan.report["probes"]
    (folder / "probes.html").write_text(render("probes.html.j2", root=""), encoding="utf-8", newline="\n")
    pairs = {(e["name"], x["id"]): (e, x) for e in entries for x in e["examples"]}
    (folder / "probes").mkdir(exist_ok=True)
    for page in plan.probes:
        probe, pair = pairs[page.probe, page.id]
        data = markupsafe.Markup(page.data_file.read_text(encoding="utf-8"))
        html = render("probe.html.j2", root="../", probe=probe, pair=pair, page_data=data)
        (folder / page.path).write_text(html, encoding="utf-8", newline="\n")
