"""The Jinja environment and themes: user overrides, then the theme, its parents, then the base templates.

A theme is a folder under ``themes/`` holding a ``theme.css`` and, optionally, templates that
replace the base ones and a ``theme.toml`` naming its parent (``parent = "light"``). Templates
are looked up as in MkDocs: the user's override folder, the theme, its parent, the parent's
parent, ..., the base templates. ``theme.css`` is layered the same way: the root ancestor's
first, then each child's, then the override folder's, so a child only states what it changes.
A template can reach past an override with ``{% extends "!light/base.html.j2" %}`` (a theme's
own file) or ``"!base/base.html.j2"`` (the built-in one), as in Pelican.

Autoescaping is on for every template name (``select_autoescape`` would miss our
``*.html.j2`` names) and undefined names are errors, not empty strings.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import jinja2

from attnreport.core.errors import BuildError
from attnreport.core.resources import bundled

#: keys a theme.toml may hold
THEME_KEYS = ("parent", "description")
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def _themes_root(themes: Path | None) -> Path:
    return bundled("themes") if themes is None else Path(themes)


def available_themes(*, themes: Path | None = None) -> list[str]:
    """The names of the themes in `themes` (default: the shipped ones)."""
    root = _themes_root(themes)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _NAME.fullmatch(p.name))


def theme_folder(theme: str, *, themes: Path | None = None) -> Path:
    root = _themes_root(themes)
    folder = root / theme
    if not _NAME.fullmatch(theme) or not folder.is_dir():
        known = ", ".join(available_themes(themes=root))
        raise BuildError(f"theme {theme!r} not found; known themes: {known}")
    return folder


def theme_parent(theme: str, *, themes: Path | None = None) -> str | None:
    """The parent that `theme` declares in its theme.toml, or None."""
    path = theme_folder(theme, themes=themes) / "theme.toml"
    if not path.is_file():
        return None
    try:
        settings = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BuildError(f"{path}: theme {theme!r} has an unreadable theme.toml: {exc}") from exc
    unknown = sorted(set(settings) - set(THEME_KEYS))
    if unknown:
        raise BuildError(
            f"{path}: theme {theme!r}: unknown key(s) {', '.join(unknown)}; known: {', '.join(THEME_KEYS)}"
        )
    parent = settings.get("parent")
    if parent is not None and not isinstance(parent, str):
        raise BuildError(f"{path}: theme {theme!r}: parent must be a theme name (a string)")
    return parent


def theme_chain(theme: str, *, themes: Path | None = None) -> list[str]:
    """`theme`, its parent, the parent's parent, ...: the order in which they are searched."""
    chain = [theme]
    theme_folder(theme, themes=themes)
    while (parent := theme_parent(chain[-1], themes=themes)) is not None:
        if parent in chain:
            cycle = " -> ".join([*chain[chain.index(parent) :], parent])
            raise BuildError(f"theme {theme!r}: its parents form a cycle ({cycle}); fix a theme.toml")
        if not _NAME.fullmatch(parent) or not (_themes_root(themes) / parent).is_dir():
            known = ", ".join(available_themes(themes=themes))
            raise BuildError(
                f"theme {chain[-1]!r} names parent {parent!r}, which is not a theme"
                f"{f' (needed by {theme!r})' if chain[-1] != theme else ''}; known themes: {known}"
            )
        chain.append(parent)
    return chain


def root_theme(theme: str, *, themes: Path | None = None) -> str:
    """The ancestor with no parent: the scenes take their palette from it (light or dark)."""
    return theme_chain(theme, themes=themes)[-1]


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
    env.globals["head_page"] = lambda layer, head: f"heads/L{layer}-H{head}.html"
    env.filters["pct"] = lambda x: "–" if x is None else f"{100 * x:.1f}%"
    return env
