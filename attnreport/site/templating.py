"""The Jinja environment and themes: user overrides, then the theme, its parents, then the base templates.

Themes and their parent chains are read by `attnreport.core.themes`; this module layers them.
Templates are looked up as in MkDocs: the user's override folder, the theme, its parent, the parent's
parent, ..., the base templates. ``theme.css`` is layered the same way: the root ancestor's
first, then each child's, then the override folder's, so a child only states what it changes.
A template can reach past an override with ``{% extends "!light/base.html.j2" %}`` (a theme's
own file) or ``"!base/base.html.j2"`` (the built-in one), as in Pelican.

Autoescaping is on for every template name (``select_autoescape`` would miss our
``*.html.j2`` names) and undefined names are errors, not empty strings.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from attnreport.core.errors import BuildError
from attnreport.core.resources import bundled
from attnreport.core.themes import theme_chain, theme_folder
from attnreport.site.pages import head_page


def theme_css(theme: str, overrides: Path | None = None, *, themes: Path | None = None) -> str:
    """assets/theme.css: the root ancestor's theme.css first, each child's after it, the override's last,
    so later rules (a child's) win over earlier ones (its parent's)."""
    layers = [
        (name, theme_folder(name, themes=themes) / "theme.css") for name in theme_chain(theme, themes=themes)
    ]
    layers.reverse()
    if overrides is not None:
        layers.append(("[site] templates", Path(overrides) / "theme.css"))
    parts = [
        f"/* ---- {name} ---- */\n{path.read_text(encoding='utf-8').rstrip()}\n"
        for name, path in layers
        if path.is_file()
    ]
    if not parts:
        raise BuildError(f"theme {theme!r}: neither it nor its parents have a theme.css")
    return "\n".join(parts)


#: an effect below this prints as 0.000 at the three decimals the tables show
NO_EFFECT = 5e-4


def effect(x: float | None) -> str:
    """A signed effect at three decimals; one that would print as +0.000 says what it means."""
    if x is None:
        return "–"
    return "no measurable effect" if abs(x) < NO_EFFECT else f"{x:+.3f}"


def environment(
    theme: str, overrides: Path | None = None, *, themes: Path | None = None
) -> jinja2.Environment:
    search = []
    if overrides is not None:
        if not Path(overrides).is_dir():
            raise BuildError(f"{overrides}: [site] templates folder not found")
        search.append(str(overrides))
    chain = theme_chain(theme, themes=themes)
    search += [str(theme_folder(name, themes=themes)) for name in chain]
    search.append(str(bundled("templates")))
    explicit = {f"!{name}": jinja2.FileSystemLoader(str(theme_folder(name, themes=themes))) for name in chain}
    explicit["!base"] = jinja2.FileSystemLoader(str(bundled("templates")))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(search), jinja2.PrefixLoader(explicit)]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["head_page"] = head_page
    env.filters["pct"] = lambda x: "–" if x is None else f"{100 * x:.1f}%"
    env.filters["effect"] = effect
    return env
