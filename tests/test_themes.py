"""Themes: one reader (core.themes) for the config, the site's templates and theme.css, and the scenes."""

from __future__ import annotations

import re

import pytest
from sitebuild import sample_rows, write_config

from attnreport.core.config import load_config, shipped_themes
from attnreport.core.errors import BuildError
from attnreport.core.themes import (
    available_themes,
    colours_theme,
    parents,
    root_theme,
    theme_chain,
)
from attnreport.pipeline import build
from attnreport.scenes.palette import THEMES as SCENE_THEMES
from attnreport.scenes.palette import scene_theme
from attnreport.site.templating import environment, theme_css


@pytest.fixture
def config(tiny, tmp_path):
    return load_config(write_config(tmp_path / "project", tiny.export("bert"), sample_rows()))


def make_theme(root, name, *, parent=None, css=None, templates=None):
    folder = root / name
    folder.mkdir(parents=True)
    if parent is not None:
        (folder / "theme.toml").write_text(f'parent = "{parent}"\n')
    if css is not None:
        (folder / "theme.css").write_text(css)
    for template, text in (templates or {}).items():
        (folder / template).write_text(text)
    return folder


def test_theme_parents_are_searched_child_first_up_to_the_root(tmp_path):
    make_theme(tmp_path, "grand", css="g")
    make_theme(tmp_path, "parent", parent="grand", css="p")
    make_theme(tmp_path, "child", parent="parent", css="c")
    assert theme_chain("child", themes=tmp_path) == ["child", "parent", "grand"]
    assert theme_chain("grand", themes=tmp_path) == ["grand"]
    assert root_theme("child", themes=tmp_path) == "grand"


def test_override_beats_theme_beats_parent_beats_base_templates(tmp_path):
    themes = tmp_path / "themes"
    parent = make_theme(themes, "parent", css=":root { --fg: #111; }", templates={"base.html.j2": "parent"})
    child = make_theme(
        themes, "child", parent="parent", css=":root { --fg: #222; }", templates={"base.html.j2": "child"}
    )
    (child / "only-child.html.j2").write_text("{% extends '!parent/base.html.j2' %}")
    override = make_theme(tmp_path, "mine", css=":root { --fg: #333; }", templates={"base.html.j2": "mine"})

    def rendered(name="base.html.j2", overrides=override):
        return environment("child", overrides, themes=themes).get_template(name).render()

    assert rendered() == "mine"
    (override / "base.html.j2").unlink()
    assert rendered() == "child"
    assert rendered(overrides=None) == "child"
    (child / "base.html.j2").unlink()
    assert rendered() == "parent"
    assert rendered("only-child.html.j2") == "parent"  # explicit parent, as Pelican's "!simple/..."
    (parent / "base.html.j2").unlink()
    env = environment("child", override, themes=themes)
    assert env.loader.get_source(env, "base.html.j2")[0].startswith("<!doctype html>")  # the base one
    # theme.css: the root's first, each child's after it, the override's last, so later rules win
    css = theme_css("child", override, themes=themes)
    assert css.index("#111") < css.index("#222") < css.index("#333")
    assert "#333" not in theme_css("child", themes=themes)
    (child / "theme.css").unlink()
    assert "#222" not in theme_css("child", themes=themes) and "#111" in theme_css("child", themes=themes)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ({"a": "b", "b": "a"}, r"theme 'a': its parents form a cycle \(a -> b -> a\)"),
        ({"a": "a"}, r"theme 'a': its parents form a cycle \(a -> a\)"),
        ({"a": "b", "b": "c", "c": "b"}, r"theme 'a': its parents form a cycle \(b -> c -> b\)"),
        ({"a": "nope"}, r"theme 'a' names parent 'nope', which is not a theme; known themes: a"),
        ({"a": "b", "b": "../a"}, r"theme 'b' names parent '../a', which is not a theme \(needed by 'a'\)"),
    ],
)
def test_theme_cycles_and_missing_parents_are_build_errors_naming_the_theme(tmp_path, setup, message):
    for name, parent in setup.items():
        make_theme(tmp_path, name, parent=parent, css="x")
    with pytest.raises(BuildError, match=message):
        environment("a", themes=tmp_path)
    with pytest.raises(BuildError, match=message):
        theme_css("a", themes=tmp_path)


def test_theme_toml_mistakes_and_unknown_themes_are_named(tmp_path):
    folder = make_theme(tmp_path, "a", css="x")
    (folder / "theme.toml").write_text('parnt = "light"\n')
    with pytest.raises(BuildError, match=r"theme 'a': unknown key\(s\) parnt"):
        theme_chain("a", themes=tmp_path)
    (folder / "theme.toml").write_text("parent = \n")
    with pytest.raises(BuildError, match="theme 'a' has an unreadable theme.toml"):
        theme_chain("a", themes=tmp_path)
    with pytest.raises(BuildError, match="theme 'b' not found; known themes: a"):
        theme_chain("b", themes=tmp_path)
    with pytest.raises(BuildError, match="not found"):
        theme_chain("../templates")


def _contrast(a: str, b: str) -> float:
    def luminance(colour):
        channels = [int(colour.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted([luminance(a), luminance(b)], reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_every_shipped_theme_resolves_to_a_scene_palette():
    assert {"light", "dark", "high-contrast"} <= set(available_themes())
    assert root_theme("high-contrast") == "light"
    for name in available_themes():
        assert root_theme(name) in SCENE_THEMES, name


@pytest.mark.parametrize("theme", ["light", "dark", "high-contrast"])
def test_every_shipped_theme_builds(config, tmp_path, theme):
    config.site.theme = theme
    config.site.scenes = False  # the scenes take their palette from the root theme (see the pipeline)
    site = build(config, tmp_path / "site", progress=False).site
    css = (site / "assets" / "theme.css").read_text()
    variables = {}
    for name, value in re.findall(r"--([a-z-]+):\s*(#[0-9a-f]{6})", css):
        variables[name] = value  # the last declaration wins, as in the browser
    for text in ("fg", "muted", "link"):
        ratio = _contrast(variables[text], variables["panel"])
        assert ratio >= (7 if theme == "high-contrast" else 4.5), (theme, text, ratio)
    if theme == "high-contrast":
        assert css.index("/* ---- light ---- */") < css.index("/* ---- high-contrast ---- */")
        assert "outline: 4px solid" in css
    page = (site / "examples").glob("*.html").__next__().read_text()
    assert 'id="head-view"' in page and "assets/theme.css" in page


def test_config_site_and_scenes_read_the_same_themes():
    """The three former readers: the config's list, the site's chain and the scenes' colours."""
    assert shipped_themes() == available_themes()
    for name in available_themes():
        chain = theme_chain(name)
        assert f"---- {chain[-1]} ----" in theme_css(name)
        assert scene_theme(name) == colours_theme(name, SCENE_THEMES) == root_theme(name), name


def test_scenes_take_the_nearest_ancestors_colours_and_the_site_stays_strict(tmp_path):
    make_theme(tmp_path, "dark", css="d")
    make_theme(tmp_path, "dusk", parent="dark", css="u")
    make_theme(tmp_path, "night", parent="dusk", css="n")
    make_theme(tmp_path, "sepia", css="s")  # a root theme the scenes have no colours for
    assert colours_theme("night", SCENE_THEMES, themes=tmp_path) == "dark"
    assert colours_theme("dark", SCENE_THEMES, themes=tmp_path) == "dark"
    assert colours_theme("sepia", SCENE_THEMES, themes=tmp_path) is None
    make_theme(tmp_path, "broken", parent="nope", css="b")
    with pytest.raises(BuildError, match="theme 'broken' names parent 'nope'"):
        colours_theme("broken", SCENE_THEMES, themes=tmp_path)
    with pytest.raises(BuildError, match="theme 'nowhere' not found; known themes: broken, dark, dusk"):
        colours_theme("nowhere", SCENE_THEMES, themes=tmp_path)
    # the scenes' own reading is lenient: a name that is not a shipped theme draws in light
    assert scene_theme("nowhere") == "light" and scene_theme("../themes") == "light"


def test_the_walk_stops_where_it_finds_what_it_wants():
    """Lazy: past the first theme with colours, no parent is read, so a cycle beyond it is harmless."""
    table = {"a": "b", "b": "dark", "dark": "c", "c": "dark"}
    assert colours_theme("a", SCENE_THEMES, parent_of=table.get) == "dark"
    with pytest.raises(BuildError, match=r"theme 'a': its parents form a cycle \(dark -> c -> dark\)"):
        list(parents("a", table.get))
