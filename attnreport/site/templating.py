"""The Jinja environment: user overrides, then the theme, then the base templates.

Autoescaping is on for every template name (``select_autoescape`` would miss our
``*.html.j2`` names) and undefined names are errors, not empty strings.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from attnreport.core.errors import BuildError
from attnreport.core.resources import bundled


def theme_folder(theme: str) -> Path:
    folder = bundled("themes") / theme
    if not folder.is_dir():
        known = sorted(p.name for p in bundled("themes").iterdir() if p.is_dir())
        raise BuildError(f"theme {theme!r} not found; known themes: {', '.join(known)}")
    return folder


def environment(theme: str, overrides: Path | None = None) -> jinja2.Environment:
    search = []
    if overrides is not None:
        if not Path(overrides).is_dir():
            raise BuildError(f"{overrides}: [site] templates folder not found")
        search.append(str(overrides))
    search.append(str(theme_folder(theme)))
    search.append(str(bundled("templates")))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["head_page"] = lambda layer, head: f"heads/L{layer}-H{head}.html"
    env.filters["pct"] = lambda x: "–" if x is None else f"{100 * x:.1f}%"
    return env
