"""One notebook output: a self-contained HTML document with the site's own figure scripts and
styles inlined, wrapped in an ``<iframe srcdoc>`` so that its element ids, scripts and styles
cannot meet the notebook's or another output's.

Inside, the document has the same element ids and JSON-in-a-script layout the site's pages give
those scripts (``headview.js``, ``modelview.js``, ``neuronview.js``, read from the installed
``templates/assets``); ``notebook.js`` glues them to the layer, head and part menus. Data is a
``<script type="application/json">`` read with ``JSON.parse``; tokens are set as text. Nothing is
fetched: no CDN, no network, so the output draws offline and in a saved notebook.
"""

from __future__ import annotations

import html
import uuid
from pathlib import Path

import numpy as np

from attnreport.core.errors import AttnReportError, InputError
from attnreport.core.resources import bundled

#: the site's scripts each view needs, in load order (each adds to window.attnreport)
SCRIPTS = {
    "head": ("save.js", "figure.js", "headview.js"),
    "model": ("save.js", "figure.js", "headview.js", "modelview.js"),
    "neuron": ("save.js", "figure.js", "neuronview.js"),
}
#: BertViz's display_mode values, as our themes
THEMES = {"light": "light", "dark": "dark"}
HTML_ACTIONS = ("view", "return")

#: the page's frame: a notebook cell, not a site page (no header, no 80vh: the frame grows to fit)
_CSS = """
body { margin: 0; padding: .5rem .75rem; background: var(--panel); font-size: 14px; }
.controls { margin: 0 0 .4rem; }
.controls label, .controls button { font-size: .85rem; }
.head-view { max-height: 640px; }
.model-view { max-width: calc(var(--heads) * 96px + 3rem); }
h3 { font-size: 1rem; margin: .8rem 0 .3rem; }
.legend { margin: 0 0 .4rem; }
"""

_HEAD_CONTROLS = """<div class="controls">
  <label>Hide weights below <select id="hv-threshold"></select></label>
  <label id="hv-range-label" hidden>Draw <select id="hv-range"></select></label>
  <button type="button" id="hv-png">Save PNG</button>
  <button type="button" id="hv-svg">Save SVG</button>
</div>
<p id="hv-note" class="legend"></p>
<div id="head-view" class="head-view" tabindex="0" aria-label="Head view"></div>"""

_PART = '<label id="part-label" hidden>Attention <select id="part"></select></label>'

_BODIES = {
    "head": f"""<div class="controls">
  <label>Layer <select id="layer"></select></label>
  <label>Head <select id="head"></select></label>
  {_PART}
</div>
{_HEAD_CONTROLS}""",
    "model": f"""<div class="controls">
  {_PART}
  <button type="button" id="mv-png">Save PNG</button>
  <button type="button" id="mv-svg">Save SVG</button>
  <span class="legend">Every layer (down) and head (across); click one for its head view below.</span>
</div>
<div id="model-view" class="model-view"></div>
<section id="head-section" hidden>
<h3 id="head-title">Head view</h3>
{_HEAD_CONTROLS}
</section>""",
    "neuron": """<div class="controls" id="nv-controls">
  <label>Layer <select id="layer"></select></label>
  <label>Head <select id="head"></select></label>
  <label>Query token <select id="nv-query"></select></label>
  <button type="button" id="nv-png">Save PNG</button>
  <button type="button" id="nv-svg">Save SVG</button>
</div>
<p id="nv-note" class="legend"></p>
<div id="neuron-view" class="neuron-view" aria-label="Neuron view"></div>""",
}


def _asset(name: str) -> str:
    return (bundled("templates") / "assets" / name).read_text(encoding="utf-8")


def _script_text(text: str) -> str:
    """A script's source, safe inside <script>: no ``</script`` can close it early."""
    return text.replace("</script", "<\\/script")


def document(view: str, data: dict, *, theme: str = "light") -> str:
    """The whole HTML document of one output: styles, the view's controls, its data and scripts."""
    from attnreport.site.encode import script_json
    from attnreport.site.templating import theme_css

    css = _asset("base.css") + "\n" + theme_css(theme) + "\n" + _CSS
    scripts = [_asset(name) for name in SCRIPTS[view]]
    scripts.append((Path(__file__).with_name("notebook.js")).read_text(encoding="utf-8"))
    body = "\n".join(f"<script>\n{_script_text(s)}\n</script>" for s in scripts)
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>attnreport {view} view</title>\n<style>\n{css}\n</style>\n</head>\n"
        f'<body data-view="{view}">\n{_BODIES[view]}\n'
        f'<script type="application/json" id="notebook-data">{script_json(data)}</script>\n'
        f"{body}\n</body>\n</html>\n"
    )


def packed(attention: np.ndarray) -> dict:
    """Attention as the site ships it: uint8 (step 1/255), deflated, base64; non-finite as 0."""
    from attnreport.site.encode import packed_unit

    return packed_unit(np.nan_to_num(attention, nan=0.0, posinf=0.0, neginf=0.0))


def frame(view: str, data: dict, *, theme: str = "light", height: int = 480) -> str:
    """The output's HTML: the document in an iframe, under an id no other output has."""
    uid = f"attnreport-{uuid.uuid4().hex}"
    # ASCII throughout (other characters as references): a saved output reads the same whatever
    # encoding the file is opened with
    doc = html.escape(document(view, data, theme=theme), quote=True).encode("ascii", "xmlcharrefreplace")
    return (
        f'<div class="attnreport-output" id="{uid}">'
        f'<iframe id="{uid}-frame" title="attnreport {view} view" srcdoc="{doc.decode()}" '
        f'style="width: 100%; height: {int(height)}px; border: 0; display: block"></iframe></div>'
    )


def theme_of(display_mode: str) -> str:
    if display_mode not in THEMES:
        raise InputError(f"display_mode is {display_mode!r}; expected one of: {', '.join(THEMES)}")
    return THEMES[display_mode]


def check_action(html_action: str) -> None:
    """Checked before any work, so a typo costs nothing."""
    if html_action not in HTML_ACTIONS:
        raise InputError(f"html_action is {html_action!r}; expected one of: {', '.join(HTML_ACTIONS)}")


def deliver(markup: str, html_action: str):
    """Show the output in the notebook ('view'), or return it as an IPython HTML object ('return')."""
    check_action(html_action)
    try:
        from IPython.display import HTML, display
    except ImportError as exc:
        hint = "pip install 'attnreport[notebook]'"
        raise AttnReportError(f"attnreport.notebook needs IPython: {hint}") from exc
    out = HTML(markup)
    if html_action == "return":
        return out
    display(out)
    return None
