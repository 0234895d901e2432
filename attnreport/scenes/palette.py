"""One colour-blind-safe palette for the 3D scenes and the 2D figures: Okabe & Ito (2008).

Classes take the Okabe-Ito colours in a fixed order (black left out: it vanishes on the dark
theme and is the outline colour of the light one); past seven classes the colours repeat.
Unlabelled examples are grey. This module imports nothing heavy, so the site and its 2D
figures can use it without pyvista.
"""

from __future__ import annotations

from attnreport.core.errors import BuildError
from attnreport.core.themes import colours_theme, theme_parent

#: blue, orange, bluish green, vermillion, reddish purple, sky blue, yellow
CLASS_COLORS: list[str] = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442"]

#: examples without a label
UNLABELLED = "#999999"

#: attention edges and relevance markers in the flow scene (the site's accent and "positive" colours)
EDGE = "#0072B2"
RELEVANCE = "#E69F00"

#: per theme: the background of a scene (the site's panel colour), text and outlines, faint lines
BACKGROUND = {"light": "#ffffff", "dark": "#1b2029"}
FOREGROUND = {"light": "#1d2330", "dark": "#e6e9ef"}
MUTED = {"light": "#5b6475", "dark": "#9aa3b2"}

THEMES = ("light", "dark")


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    """``"#0072B2" -> (0, 114, 178)``."""
    value = color.lstrip("#")
    if len(value) != 6:
        raise ValueError(f"colour {color!r} is not #rrggbb")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def class_color(index: int) -> tuple[int, int, int]:
    """The colour of class ``index`` as 0-255 integers; the palette repeats past seven classes."""
    if index < 0:
        raise ValueError(f"class index must be nonnegative, got {index}")
    return hex_to_rgb(CLASS_COLORS[index % len(CLASS_COLORS)])


def scene_theme(theme: str) -> str:
    """The scene colours (`THEMES`) for a site theme: its own, else the nearest ancestor's
    (`core.themes.colours_theme`), else light's.

    Lenient where the site is strict: a name that is not a shipped theme, or whose chain is
    broken, draws in light. `render` takes any name, including a theme that lives outside
    the shipped folder (passed to the site's templating as ``themes=``), and a build never
    reaches here with a broken theme unnoticed: the config rejects unknown names when it is
    loaded, and the site's templating raises on a broken chain in the same build.
    """
    try:
        return colours_theme(theme, THEMES, parent_of=_parent) or "light"
    except BuildError:  # a cycle of parents
        return "light"


def _parent(theme: str) -> str | None:
    """`theme`'s parent as the one theme reader sees it; None when it is not a shipped theme."""
    try:
        return theme_parent(theme)
    except BuildError:
        return None
