"""Themes: the folders under ``themes/``, the parent chain of each, and the colours its scenes use.

The one reader of themes, shared by the config check, the site (templates, ``theme.css``) and
the scenes, so that all three agree on what a theme is and what its parents are. A theme is a
folder whose name is lower-case letters, digits, ``-`` and ``_``; it holds a ``theme.css`` and,
optionally, templates and a ``theme.toml`` naming its parent (``parent = "light"``). A theme's
chain is the theme, its parent, the parent's parent, ... up to a root theme with no parent.

Every mistake (an unknown theme, a parent that is not a theme, a cycle, a bad ``theme.toml``)
is a one-line `BuildError` naming the theme and what to fix.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

from attnreport.core.errors import BuildError
from attnreport.core.resources import bundled

#: keys a theme.toml may hold
THEME_KEYS = ("parent", "description")
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def _root(themes: Path | None) -> Path:
    return bundled("themes") if themes is None else Path(themes)


def _is_theme(name: str, root: Path) -> bool:
    # the name rule keeps a theme.toml from reaching outside the themes folder ("../templates")
    return bool(_NAME.fullmatch(name)) and (root / name).is_dir()


def available_themes(*, themes: Path | None = None) -> list[str]:
    """The names of the themes in the folder `themes` (default: the shipped ones), sorted."""
    root = _root(themes)
    return sorted(p.name for p in root.iterdir() if _is_theme(p.name, root))


def theme_folder(theme: str, *, themes: Path | None = None) -> Path:
    """The folder of `theme`; an unknown theme is an error that lists the known ones."""
    root = _root(themes)
    if not _is_theme(theme, root):
        known = ", ".join(available_themes(themes=root))
        raise BuildError(f"theme {theme!r} not found; known themes: {known}")
    return root / theme


def theme_parent(theme: str, *, themes: Path | None = None) -> str | None:
    """The parent that `theme` declares in its theme.toml, or None (a root theme)."""
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


def parents(theme: str, parent_of: Callable[[str], str | None]) -> Iterator[str]:
    """`theme`, ``parent_of(theme)``, its parent, ... until one whose parent is None.

    Lazy, so a caller that finds what it wants stops reading; a cycle is a `BuildError`
    when the walk reaches it.
    """
    chain = [theme]
    yield theme
    while (parent := parent_of(chain[-1])) is not None:
        if parent in chain:
            cycle = " -> ".join([*chain[chain.index(parent) :], parent])
            raise BuildError(f"theme {theme!r}: its parents form a cycle ({cycle}); fix a theme.toml")
        chain.append(parent)
        yield parent


def theme_chain(theme: str, *, themes: Path | None = None) -> list[str]:
    """`theme`, its parent, the parent's parent, ...: the order in which they are searched.

    Strict: `theme` and every parent must be themes in `themes`.
    """
    root = _root(themes)
    theme_folder(theme, themes=root)

    def checked_parent(name: str) -> str | None:
        parent = theme_parent(name, themes=root)
        if parent is not None and not _is_theme(parent, root):
            needed = f" (needed by {theme!r})" if name != theme else ""
            known = ", ".join(available_themes(themes=root))
            raise BuildError(
                f"theme {name!r} names parent {parent!r}, which is not a theme{needed}; known themes: {known}"
            )
        return parent

    return list(parents(theme, checked_parent))


def root_theme(theme: str, *, themes: Path | None = None) -> str:
    """The ancestor of `theme` with no parent (`theme` itself for a root theme)."""
    return theme_chain(theme, themes=themes)[-1]


def colours_theme(
    theme: str,
    palettes: Collection[str],
    *,
    themes: Path | None = None,
    parent_of: Callable[[str], str | None] | None = None,
) -> str | None:
    """The theme whose colours `theme`'s scenes use: the nearest of its chain (itself first)
    that `palettes` has colours for, or None when none has.

    A child theme restyles the page but not the scenes, so it draws them in its ancestor's
    colours. Parents are read strictly from `themes` (as `theme_chain` does), unless
    `parent_of` says how to find them.
    """
    if parent_of is None:
        chain: Iterator[str] | list[str] = theme_chain(theme, themes=themes)
    else:
        chain = parents(theme, parent_of)
    return next((name for name in chain if name in palettes), None)
