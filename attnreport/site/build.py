"""Phase two of a build: render every page into a fresh folder beside the target, then swap.

A build that fails or is killed leaves the previous site exactly as it was; the next
build removes the leftovers (`core.files.replace_folder`). A lock stops two builds
writing the same site at once.
"""

from __future__ import annotations

import glob
import json
import shutil
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import jinja2
import markupsafe

from attnreport import __version__
from attnreport.core.errors import BuildError
from attnreport.core.files import (
    folder_lock,
    guard_output,
    process_alive,
    replace_folder,
    scratch_folder,
    scratch_pid,
)
from attnreport.core.progress import counted
from attnreport.core.resources import bundled
from attnreport.scenes.stage import SceneFiles
from attnreport.site.encode import script_json, script_safe
from attnreport.site.headpages import head_contexts
from attnreport.site.listing import PAGE_ROWS, compare_order
from attnreport.site.pages import SitePlan, head_page
from attnreport.site.probes import write_probe_pages
from attnreport.site.report import REPORT_FILE, write_report
from attnreport.site.templating import environment, theme_css

#: written last into every site: the generator and the top-level names it wrote, so that a
#: rebuild replaces a folder only when everything in it is ours
MARKER = ".attnreport-site"
#: what sites built before the marker hold at their top level (they carry a report.json whose
#: generator is attnreport); a folder with anything else in it is not replaced
LEGACY_ENTRIES = frozenset(
    {
        REPORT_FILE,
        "index.html",
        ".nojekyll",
        "assets",
        "examples",
        "heads",
        "compare.html",
        "variants.html",
        "probes.html",
        "probes",
        "generation",
    }
)
#: a generation report's head atlas (`report.json`'s `head_patterns`)
HEAD_PATTERNS_PAGE = "head-patterns.html"
#: plotly.js's cartesian bundle (it has the heatmap, at a third of the full bundle's size) and its licence,
#: vendored in templates/vendor (see the README there)
PLOTLY = ("plotly-cartesian.min.js", "plotly-LICENSE.txt")


def spool_folder(target: Path) -> Path:
    """Scratch space for one build's page data, beside the target; removed by the build."""
    return scratch_folder(Path(target).resolve(), "spool")


def _remove_dead_spools(target: Path) -> None:
    """A killed build's page data; a spool whose build still runs is being filled (the pipeline
    makes it before the lock is taken), this process's own included."""
    for stale in target.parent.glob(f".{glob.escape(target.name)}.spool-*"):
        pid = scratch_pid(stale, target, "spool")
        if pid is not None and not process_alive(pid):
            shutil.rmtree(stale, ignore_errors=True)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def site_entries(folder: Path) -> tuple[bool, list[str]]:
    """Whether `folder` is an attnreport site (our marker, or a report.json whose generator is
    attnreport), and the top-level names in it that no attnreport build wrote."""
    names = sorted(p.name for p in Path(folder).iterdir())
    marker = _read_json(Path(folder) / MARKER)
    if isinstance(marker, dict) and isinstance(marker.get("entries"), list):
        known = {str(n) for n in marker["entries"]} | {MARKER}
        return True, [n for n in names if n not in known]
    report = _read_json(Path(folder) / REPORT_FILE)
    generator = report.get("generator") if isinstance(report, dict) else None
    if isinstance(generator, str) and generator.startswith("attnreport "):
        return True, [n for n in names if n not in LEGACY_ENTRIES]
    return False, names


def check_site_target(target: Path, *, inputs: Iterable[Path | None] = ()) -> Path:
    """Refuse `target` unless replacing it loses nothing of the user's (`core.files.guard_output`):
    a non-empty folder must be a site and hold only what an attnreport build wrote there. Returns
    it resolved. The pipeline calls this before any model runs, and `write_site` again at the swap."""
    target = Path(target).resolve()
    site, foreign = site_entries(target) if target.is_dir() else (False, [])
    guard_output(target, inputs=inputs, ours=site, what="site", error=BuildError)
    if site and foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise BuildError(
            f"{target}: holds {shown}, which attnreport did not write; move them out or choose "
            f"another folder, so nothing of yours is replaced"
        )
    return target


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
    common = {
        "title": plan.title,
        "report": plan.report,
        "card": plan.card.to_dict(),
        "probes_template": plan.probes_template,
    }
    subsites = [{"title": sub.title, "href": f"{sub.path}/index.html"} for sub in plan.subsites]
    decision = _scene_context(plan.decision_scene)
    columns = plan.listing.columns(plan.report["examples"])
    listing = markupsafe.Markup(script_json(columns))
    index = _page(
        env,
        "index.html.j2",
        root="",
        scene=decision,
        columns=columns,
        listing_template=plan.listing.template,
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
    if "head_patterns" in plan.report:  # a generation report's head atlas
        _write(folder / HEAD_PATTERNS_PAGE, _page(env, "head_patterns.html.j2", root="", **common))
    if "probes" in plan.report:
        write_probe_pages(plan, folder, lambda name, **c: _page(env, name, **c, **common))
    write_report(folder, plan.report)
    _write(folder / ".nojekyll", "")
    entries = sorted(p.name for p in folder.iterdir()) + [MARKER]
    marker = {"generator": f"attnreport {__version__}", "entries": sorted(entries)}
    _write(folder / MARKER, json.dumps(marker, indent=1) + "\n")


def write_site(
    plan: SitePlan,
    target: Path,
    *,
    theme: str = "light",
    overrides: Path | None = None,
    progress: bool = False,
    inputs: Iterable[Path | None] = (),
) -> Path:
    """Render `plan` and swap it in at `target`; returns the target. `inputs` are the files and
    folders this build read (config, data, templates, model, cache): a target holding one is
    refused."""
    target = check_site_target(target, inputs=inputs)
    busy = BuildError(f"{target}: another attnreport build is writing this site; wait for it to finish")
    with folder_lock(target, busy=busy):
        _remove_dead_spools(target)
        with replace_folder(target) as fresh:
            _render(plan, fresh, theme=theme, overrides=overrides, progress=progress)
    return target
