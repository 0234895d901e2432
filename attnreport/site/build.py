"""Phase two of a build: render every page into a fresh folder beside the target, then swap.

A build that fails or is killed leaves the previous site exactly as it was; the next
build removes the leftovers (`core.files.replace_folder`). A lock stops two builds
writing the same site at once.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

import jinja2
import markupsafe

from attnreport.core.errors import BuildError
from attnreport.core.files import folder_lock, process_alive, replace_folder, scratch_folder
from attnreport.core.progress import counted
from attnreport.core.resources import bundled
from attnreport.scenes.stage import SceneFiles
from attnreport.site.encode import script_json, script_safe
from attnreport.site.headpages import head_contexts
from attnreport.site.listing import PAGE_ROWS, compare_order, example_columns
from attnreport.site.pages import SitePlan, head_page
from attnreport.site.probes import write_probe_pages
from attnreport.site.report import REPORT_FILE, write_report
from attnreport.site.templating import environment, theme_css

#: a folder holding it is an attnreport site, which a build may replace
MARKER = REPORT_FILE
#: plotly.js's cartesian bundle (it has the heatmap, at a third of the full bundle's size) and its licence,
#: vendored in templates/vendor (see the README there)
PLOTLY = ("plotly-cartesian.min.js", "plotly-LICENSE.txt")


def spool_folder(target: Path) -> Path:
    """Scratch space for one build's page data, beside the target; removed by the build."""
    return scratch_folder(Path(target).resolve(), "spool")


def _remove_dead_spools(target: Path) -> None:
    """A killed build's page data; a spool whose build still runs is being filled (the pipeline
    makes it before the lock is taken)."""
    for stale in target.parent.glob(f".{target.name}.spool-*"):
        if not process_alive(stale.name.rsplit("-", 1)[-1]):
            shutil.rmtree(stale, ignore_errors=True)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")


def _scene_context(scene: SceneFiles | None) -> dict | None:
    """What a template needs of a scene: its JSON (spooled by the scenes stage, made script-safe
    here), its files and legend, and the scenes of its group."""
    if scene is None:
        return None
    text = script_safe(scene.data.read_text(encoding="utf-8"))
    return {
        "title": scene.title,
        "json": markupsafe.Markup(text),
        "image": scene.image,
        "glb": scene.glb,
        "legend": scene.legend,
        "key": scene.key,
        "name": scene.name,
        "default": scene.default,
        "choose": scene.choose,
        "choices": [_scene_context(choice) for choice in scene.choices],
    }


def _page(env: jinja2.Environment, name: str, **context) -> str:
    try:
        return env.get_template(name).render(**context)
    except jinja2.TemplateError as exc:
        where = getattr(exc, "filename", None) or name
        raise BuildError(f"{where}: {type(exc).__name__}: {exc}; fix the template") from exc


def _render(plan: SitePlan, folder: Path, *, theme: str, overrides: Path | None, progress: bool) -> None:
    env = environment(theme, overrides)
    assets = folder / "assets"
    assets.mkdir(parents=True)
    for name in PLOTLY:  # the partial bundle with the heatmap, and its licence
        shutil.copyfile(bundled("templates") / "vendor" / name, assets / name)
    for source in sorted((bundled("templates") / "assets").iterdir()):
        shutil.copyfile(source, assets / source.name)
    _write(assets / "theme.css", theme_css(theme, overrides))
    common = {"title": plan.title, "report": plan.report, "card": plan.card.to_dict()}
    subsites = [{"title": sub.title, "href": f"{sub.path}/index.html"} for sub in plan.subsites]
    decision = _scene_context(plan.decision_scene)
    columns = example_columns(plan.report["examples"])
    listing = markupsafe.Markup(script_json(columns))
    index = _page(
        env,
        "index.html.j2",
        root="",
        scene=decision,
        columns=columns,
        listing=listing,
        page_rows=PAGE_ROWS,
        subsites=subsites,
        **common,
    )
    _write(folder / "index.html", index)
    for sub in plan.subsites:
        shutil.copytree(sub.source, folder / sub.path)
    for relative, source in sorted(plan.files.items()):
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, folder / relative)
    for page in counted(plan.examples, stage="writing", unit="page", enabled=progress):
        data = markupsafe.Markup(page.data_file.read_text(encoding="utf-8"))
        scene = _scene_context(page.scene)
        html = _page(env, page.template, root="../", page=page, page_data=data, scene=scene, **common)
        _write(folder / "examples" / f"{page.slug}.html", html)
    pages = {e["id"]: e for e in plan.report["examples"]}
    heads = plan.report.get("heads", [])
    contexts = head_contexts(heads, plan.examples)
    for head in heads:
        typical = [pages[i] for i in head["typical"] if i in pages]
        context = contexts[head["layer"], head["head"]]
        pictures = markupsafe.Markup(script_json([asdict(p) for p in context.pictures]))
        html = _page(
            env,
            "head.html.j2",
            root="../",
            head=head,
            typical=typical,
            previous_head=context.previous,
            next_head=context.next,
            pictures=pictures,
            pictured=len(context.pictures),
            **common,
        )
        _write(folder / head_page(head["layer"], head["head"]), html)
    if "compare" in plan.report:
        rows = compare_order(plan.report["compare"]["examples_detail"])
        html = _page(env, "compare.html.j2", root="", pages=pages, rows=rows, **common)
        _write(folder / "compare.html", html)
    if "variants" in plan.report:
        _write(folder / "variants.html", _page(env, "variants.html.j2", root="", **common))
    if "probes" in plan.report:
        write_probe_pages(plan, folder, lambda name, **c: _page(env, name, **c, **common))
    write_report(folder, plan.report)
    _write(folder / ".nojekyll", "")


def write_site(
    plan: SitePlan,
    target: Path,
    *,
    theme: str = "light",
    overrides: Path | None = None,
    progress: bool = False,
) -> Path:
    """Render `plan` and swap it in at `target`; returns the target."""
    target = Path(target).resolve()
    if target.exists() and not target.is_dir():
        raise BuildError(f"{target}: exists and is not a folder; choose another output path")
    if target.is_dir() and any(target.iterdir()) and not (target / MARKER).is_file():
        raise BuildError(
            f"{target}: exists, is not empty and is not an attnreport site; "
            f"choose an empty or new folder so nothing of yours is replaced"
        )
    busy = BuildError(f"{target}: another attnreport build is writing this site; wait for it to finish")
    with folder_lock(target, busy=busy):
        _remove_dead_spools(target)
        with replace_folder(target) as fresh:
            _render(plan, fresh, theme=theme, overrides=overrides, progress=progress)
    return target
