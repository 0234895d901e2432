"""The 3D viewer (templates/assets/viewer3d.js) in real headless Chromium with software WebGL.

The test page loads what a built page loads for it, in the same order: base.css (the viewer's
look), save.js (its PNG download), viewer3d-gl.js (its drawing side) and viewer3d.js.

An asymmetric scene (three clusters of different colours, a translucent tetrahedron, lines of
different widths, hostile text) is drawn from file:// and from an http sub-path. Where each
point must land is computed here, independently, from the scene's camera; the canvas pixels
there must have the point's colour. Then: hover, click, drag, keys, wheel, reset, 10k points,
and the fallback image without WebGL.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import CHROMIUM, WEBGL_ARGS

from attnreport.testing import (
    BLUE,
    GREEN,
    HOSTILE_LABEL,
    HOSTILE_TEXT,
    LINE,
    LONE,
    RED,
    TRAP,
    many_points,
    script_json,
    synthetic_scene,
    write_page,
)

FIGURE = "figure.scene3d"


# -- the page --------------------------------------------------------------------------------------


def choice_group(one: str, two: str) -> str:
    """Two figures as a scene group with buttons a and b, as templates/scene.html.j2 writes it:
    the first shown, the second hidden."""
    return (
        '<div class="scene3d-group"><div class="scene3d-choices" role="group" aria-label="Layer">'
        '<button type="button" data-choice="a" aria-pressed="true">a</button>'
        '<button type="button" data-choice="b" aria-pressed="false">b</button></div>'
        + one.replace('<figure class="scene3d">', '<figure class="scene3d" data-choice="a">')
        + two.replace('<figure class="scene3d">', '<figure class="scene3d" data-choice="b" hidden>')
        + "</div>"
    )


# -- independent numbers -------------------------------------------------------------------------


def project(scene: dict, xyz, width: float, height: float) -> np.ndarray:
    """Screen positions ``[N, 2]`` (pixels from the top left) through the scene's perspective camera."""
    cam = scene["camera"]
    pos, target, up = (np.asarray(cam[k], dtype=np.float64) for k in ("position", "target", "up"))
    forward = (target - pos) / np.linalg.norm(target - pos)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    true_up = np.cross(right, forward)
    rel = np.asarray(xyz, dtype=np.float64).reshape(-1, 3) - pos
    depth = rel @ forward
    tan_v = np.tan(np.radians(cam["fov"]) / 2)
    x = (rel @ right) / (depth * tan_v * width / height)
    y = (rel @ true_up) / (depth * tan_v)
    return np.stack([(x + 1) / 2 * width, (1 - y) / 2 * height], axis=1)


# -- the browser -----------------------------------------------------------------------------------


@pytest.fixture
def browser(webgl_browser):
    """The session's Chromium with software WebGL (conftest's `WEBGL_ARGS`)."""
    return webgl_browser


def site_url(kind: str, tmp_path: Path, served, scene: dict) -> tuple[str, str]:
    """Write the page and return its URL and the prefix every request must stay under."""
    if kind == "file":
        index = write_page(tmp_path / "file-site", scene)
        return index.as_uri(), index.parent.as_uri() + "/"
    root, base = served
    write_page(root / "site", scene)
    return f"{base}/site/index.html", f"{base}/site/"


def open_page(browser, url: str, prefix: str, *, init_script: str | None = None, scale: float = 1):
    context = browser.new_context(viewport={"width": 900, "height": 800}, device_scale_factor=scale)
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    problems, outside = [], []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: None if r.url.startswith(prefix) else outside.append(r.url))
    page.goto(url)
    page.wait_for_function(f"document.querySelector('{FIGURE}').dataset.state", polling="raf")
    return page, problems, outside


def frames(page) -> int:
    return int(page.get_attribute(FIGURE, "data-frames") or 0)


def after_next_frame(page, before: int) -> None:
    page.wait_for_function(
        f"n => +document.querySelector('{FIGURE}').dataset.frames > n", arg=before, polling="raf"
    )


def pixels(page) -> np.ndarray:
    """The canvas drawing buffer as RGBA ``[h, w, 4]`` (the viewer keeps it: preserveDrawingBuffer)."""
    from PIL import Image

    url = page.eval_on_selector(f"{FIGURE} canvas", "c => c.toDataURL('image/png')")
    data = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


def canvas_geometry(page) -> dict:
    return page.eval_on_selector(
        f"{FIGURE} canvas",
        "c => { const r = c.getBoundingClientRect();"
        " return {x: r.left, y: r.top, w: r.width, h: r.height, bw: c.width, bh: c.height}; }",
    )


def near_colour(image: np.ndarray, xy, rgb, *, reach: int = 1, tol: int = 2) -> bool:
    c, r = int(xy[0]), int(xy[1])
    patch = image[max(r - reach, 0) : r + reach + 1, max(c - reach, 0) : c + reach + 1].reshape(-1, 4)
    close = (np.abs(patch[:, :3].astype(int) - np.asarray(rgb)).max(axis=1) <= tol) & (patch[:, 3] == 255)
    return bool(close.any())


# -- tests -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["file", "http"])
def test_first_frame_puts_each_colour_where_the_camera_says(browser, tmp_path, served, kind):
    scene = synthetic_scene()
    url, prefix = site_url(kind, tmp_path, served, scene)
    page, problems, outside = open_page(browser, url, prefix)
    assert page.get_attribute(FIGURE, "data-state") == "drawn"
    assert frames(page) >= 1
    assert page.is_visible(f"{FIGURE} canvas") and not page.is_visible(f"{FIGURE} img.scene-fallback")

    geo = canvas_geometry(page)
    assert (geo["bw"], geo["bh"]) == (round(geo["w"]), round(geo["h"]))
    assert abs(geo["w"] / geo["h"] - 4 / 3) < 0.01  # the fallback image's shape
    image = pixels(page)
    assert image.shape == (geo["bh"], geo["bw"], 4)
    assert image[2, 2, 3] == 0  # transparent background: the page shows through

    xyz = np.asarray(scene["points"]["xyz"]).reshape(-1, 3)
    screen = project(scene, xyz, geo["bw"], geo["bh"])
    colors = np.asarray(scene["points"]["color"]).reshape(-1, 3)
    for rgb in (RED, GREEN, BLUE, LONE, TRAP):
        members = np.flatnonzero((colors == rgb).all(axis=1))
        found = [near_colour(image, screen[i], rgb) for i in members]
        assert np.mean(found) >= 0.75, (rgb, found)
        # and the colour is not where the mirror image of the scene would put it
        mirrored = [
            near_colour(image, (geo["bw"] - screen[i][0], screen[i][1]), rgb, reach=0) for i in members
        ]
        assert np.mean(mirrored) < 0.5, rgb
    opaque = image[image[..., 3] == 255][:, :3]
    assert len({tuple(c) for c in opaque}) >= 7  # five point colours, the rings, the line

    # the widest, opaque segment has its colour half-way; the tetrahedron is lit and translucent
    seg = np.asarray(scene["lines"][0]["segments"]).reshape(-1, 2, 3)
    middle = project(scene, seg[0].mean(axis=0), geo["bw"], geo["bh"])[0]
    assert near_colour(image, middle, LINE, reach=1, tol=3)
    tetra = np.asarray(scene["meshes"][0]["vertices"]).reshape(-1, 3).mean(axis=0)
    cx, cy = project(scene, tetra, geo["bw"], geo["bh"])[0].astype(int)
    r, g, b, a = (int(v) for v in image[cy, cx])
    assert 0 < a < 255 and r > g > b, (r, g, b, a)

    # hostile strings are text, nothing ran; the notes are under the canvas
    texts = page.locator(f"{FIGURE} .scene3d-text").all_text_contents()
    assert HOSTILE_TEXT in texts and "PC3 <i>" in texts and "top" in texts
    assert page.locator(f"{FIGURE} .scene3d-notes").inner_text().splitlines() == scene["notes"]
    assert page.locator(f"{FIGURE} img").count() == 1 and page.locator(f"{FIGURE} i, {FIGURE} b").count() == 0
    assert page.evaluate("window.__pwned") is None
    label_top = page.locator(f"{FIGURE} .scene3d-text", has_text="top").bounding_box()
    top = project(scene, [0, 0, 3], geo["w"], geo["h"])[0]  # texts start 4 px right of their point
    assert abs(label_top["x"] - geo["x"] - top[0] - 4) < 2
    assert abs(label_top["y"] + label_top["height"] / 2 - geo["y"] - top[1]) < 2

    if kind == "http":
        page.screenshot(path=str(tmp_path / "viewer-look.png"), full_page=True)
        if os.environ.get("ATTNREPORT_VIEWER_SHOT"):
            shutil.copy(tmp_path / "viewer-look.png", os.environ["ATTNREPORT_VIEWER_SHOT"])
    assert problems == [] and outside == []
    page.context.close()


@pytest.mark.parametrize("kind", ["file", "http"])
def test_hover_drag_keys_wheel_reset_and_links(browser, tmp_path, served, kind):
    scene = synthetic_scene()
    url, prefix = site_url(kind, tmp_path, served, scene)
    page, problems, outside = open_page(browser, url, prefix)
    geo = canvas_geometry(page)
    first = pixels(page)
    xyz = np.asarray(scene["points"]["xyz"]).reshape(-1, 3)
    screen = project(scene, xyz, geo["w"], geo["h"]) + [geo["x"], geo["y"]]
    lone, trap = len(xyz) - 2, len(xyz) - 1

    # hover: the label appears literally, next to the point; 20 px away, nothing
    page.mouse.move(*screen[lone])
    tip = page.locator(f"{FIGURE} .scene3d-tip")
    assert tip.is_visible() and tip.text_content() == HOSTILE_LABEL
    page.mouse.move(screen[lone][0] + 20, screen[lone][1] + 20)
    assert not tip.is_visible()
    page.mouse.move(*screen[3])
    assert tip.text_content() in {f"red {i}" for i in range(12)}

    # drag turns the view; reset gives back the first frame to the last bit
    n = frames(page)
    cx, cy = geo["x"] + geo["w"] / 2, geo["y"] + geo["h"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 120, cy + 40, steps=6)
    page.mouse.up()
    after_next_frame(page, n)
    turned = pixels(page)
    assert (turned != first).any(axis=2).mean() > 0.01
    assert page.url == url  # a drag is not a click
    n = frames(page)
    page.click(f"{FIGURE} .scene3d-reset")
    after_next_frame(page, n)
    assert np.array_equal(pixels(page), first)

    # keys (the canvas takes focus) and the wheel
    page.focus(f"{FIGURE} canvas")
    for key in ("ArrowLeft", "ArrowUp", "+", "-"):
        n = frames(page)
        before = pixels(page)
        page.keyboard.press(key)
        after_next_frame(page, n)
        assert (pixels(page) != before).any(), key
    n = frames(page)
    page.keyboard.press("Home")
    after_next_frame(page, n)
    assert np.array_equal(pixels(page), first)
    n = frames(page)
    page.mouse.move(cx, cy)
    page.mouse.wheel(0, -400)
    after_next_frame(page, n)
    zoomed = pixels(page)
    assert (zoomed[..., 3] > 0).mean() > (first[..., 3] > 0).mean()  # closer: the scene covers more
    n = frames(page)
    page.click(f"{FIGURE} .scene3d-reset")
    after_next_frame(page, n)
    assert np.array_equal(pixels(page), first)

    # a javascript: link is not followed; a relative one is, from where the page is
    page.mouse.click(*screen[trap])
    page.wait_for_timeout(200)
    assert page.url == url and page.evaluate("window.__pwned") is None
    page.mouse.click(*screen[lone])
    page.wait_for_url(url.rsplit("/", 1)[0] + "/examples/lone.html")
    assert page.text_content("p") == "lone"
    assert problems == [] and outside == []
    page.context.close()


def test_ten_thousand_points_first_frame_and_redraws(browser, tmp_path, served, record_property):
    timings = {}
    for n in (10_000, 50_000):
        url, prefix = site_url("http", tmp_path / str(n), served, many_points(n))
        start = time.perf_counter()
        page, problems, outside = open_page(browser, url, prefix, init_script=WHEN_DRAWN)
        wall = time.perf_counter() - start
        assert page.get_attribute(FIGURE, "data-state") == "drawn"
        image = pixels(page)
        assert (image[..., 3] == 255).mean() > 0.05
        # the page's clock: navigation start to the first frame, and the viewer's share of it
        drawn, viewer = page.evaluate(
            "[window.__drawnAt,"
            " window.__drawnAt - performance.getEntriesByType('navigation')[0].domInteractive]"
        )
        # redraws: orbit by key, wait for each frame
        per_frame = page.evaluate(
            """async (fig) => {
              const f = document.querySelector(fig), c = f.querySelector('canvas');
              const t0 = performance.now();
              for (let i = 0; i < 20; i++) {
                const n = +f.dataset.frames;
                c.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowLeft', bubbles: true}));
                while (+f.dataset.frames === n) await new Promise(r => requestAnimationFrame(r));
              }
              return (performance.now() - t0) / 20;
            }""",
            FIGURE,
        )
        # hover: every pointer move projects nothing new and scans all points
        geo = canvas_geometry(page)
        per_hover = page.evaluate(
            """([fig, x, y]) => {
              const c = document.querySelector(fig + ' canvas');
              const t0 = performance.now();
              for (let i = 0; i < 50; i++) c.dispatchEvent(new PointerEvent('pointermove',
                {clientX: x + i, clientY: y, pointerType: 'mouse', bubbles: true}));
              return (performance.now() - t0) / 50;
            }""",
            [FIGURE, geo["x"] + geo["w"] / 2, geo["y"] + geo["h"] / 2],
        )
        assert problems == [] and outside == []
        timings[n] = {
            "first_frame_ms": round(drawn, 1),
            "viewer_setup_and_first_frame_ms": round(viewer, 1),
            "goto_until_drawn_wall_ms": round(1000 * wall, 1),
            "redraw_ms": round(per_frame, 1),
            "hover_ms": round(per_hover, 3),
        }
        page.context.close()
    record_property("viewer_timings", timings)
    print("\nviewer timings:", json.dumps(timings, indent=1))
    assert timings[10_000]["first_frame_ms"] < 5000
    assert timings[50_000]["first_frame_ms"] < 15000
    assert timings[10_000]["hover_ms"] < 20


def test_high_dpi_canvas_uses_device_pixels(browser, tmp_path, served):
    url, prefix = site_url("http", tmp_path, served, synthetic_scene())
    page, problems, _ = open_page(browser, url, prefix, scale=2)
    geo = canvas_geometry(page)
    assert (geo["bw"], geo["bh"]) == (round(2 * geo["w"]), round(2 * geo["h"]))
    assert page.get_attribute(FIGURE, "data-state") == "drawn" and problems == []
    page.context.close()


WHEN_DRAWN = """
new MutationObserver(() => {
  const f = document.querySelector('figure.scene3d');
  if (f && f.dataset.state && window.__drawnAt === undefined) window.__drawnAt = performance.now();
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-state']});
"""


def test_sparse_scene_and_top_down_camera_draw(browser, tmp_path, served):
    """Empty parts are fine; a camera looking straight down its up vector still draws."""
    scene = synthetic_scene()
    scene.update(
        points={"xyz": [], "color": [], "size": [], "label": [], "link": [], "outline": [], "highlight": None}
    )
    scene.update(meshes=[], texts=[], notes=[])
    scene["camera"] = {"position": [0, 0, 20], "target": [0, 0, 0], "up": [0, 0, 1], "fov": 40}
    url, prefix = site_url("http", tmp_path, served, scene)
    page, problems, outside = open_page(browser, url, prefix)
    assert page.get_attribute(FIGURE, "data-state") == "drawn"
    assert (pixels(page)[..., 3] > 0).any()
    assert page.locator(f"{FIGURE} .scene3d-note").count() == 0
    page.mouse.move(100, 100)
    assert problems == [] and outside == []
    page.context.close()


def test_a_group_sets_up_only_the_shown_scene_and_buttons_switch(browser, tmp_path, served):
    """Two scenes in a group: the hidden one is not parsed or drawn until its button is pressed;
    then it is drawn where its camera says and the first is hidden. The first frame is marked."""
    first, second = synthetic_scene(), synthetic_scene()
    second["title"], second["notes"] = "second scene", ["second"]
    second["points"]["color"] = [c for _ in range(len(second["points"]["size"])) for c in GREEN]
    root, base = served
    folder = root / "group"
    write_page(folder, first)
    html = (folder / "index.html").read_text(encoding="utf-8")
    start, end = html.index('<figure class="scene3d">'), html.index("</figure>") + len("</figure>")
    one = html[start:end]
    two = one.replace(script_json(first), script_json(second))
    group = choice_group(one, two)
    (folder / "index.html").write_text(html[:start] + group + html[end:], encoding="utf-8")
    page, problems, outside = open_page(browser, f"{base}/group/index.html", f"{base}/group/")
    a, b = f"{FIGURE}[data-choice=a]", f"{FIGURE}[data-choice=b]"
    assert page.get_attribute(a, "data-state") == "drawn"
    assert page.get_attribute(b, "data-state") is None and page.get_attribute(b, "data-setup") is None
    assert page.evaluate("performance.getEntriesByName('scene3d:first-frame').length") == 1
    page.click("button[data-choice=b]")
    page.wait_for_function(f"document.querySelector('{b}').dataset.state === 'drawn'", polling="raf")
    assert not page.is_visible(a) and page.is_visible(f"{b} canvas")
    assert page.get_attribute("button[data-choice=b]", "aria-pressed") == "true"
    assert page.get_attribute("button[data-choice=a]", "aria-pressed") == "false"
    assert page.locator(f"{b} .scene3d-note").all_text_contents() == ["second"]
    url = page.eval_on_selector(f"{b} canvas", "c => c.toDataURL('image/png')")
    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGBA"))
    geo = page.eval_on_selector(f"{b} canvas", "c => ({w: c.width, h: c.height})")
    xyz = np.asarray(second["points"]["xyz"]).reshape(-1, 3)[:12]  # the "red" cluster, now green
    screen = project(second, xyz, geo["w"], geo["h"])
    assert sum(near_colour(image, xy, GREEN) for xy in screen) >= 9
    assert page.evaluate("performance.getEntriesByName('scene3d:first-frame').length") == 2
    page.click("button[data-choice=a]")
    assert page.is_visible(f"{a} canvas") and not page.is_visible(b)
    assert problems == [] and outside == []
    page.context.close()


NO_WEBGL = """
const getContext = HTMLCanvasElement.prototype.getContext;
HTMLCanvasElement.prototype.getContext = function (type, ...rest) {
  return /webgl/i.test(type) ? null : getContext.call(this, type, ...rest);
};
"""


def test_without_webgl_the_still_image_stays(browser, playwright, tmp_path, served):
    url, prefix = site_url("http", tmp_path, served, synthetic_scene())
    page, problems, outside = open_page(browser, url, prefix, init_script=NO_WEBGL)
    disabled = playwright.chromium.launch(executable_path=CHROMIUM, args=[*WEBGL_ARGS, "--disable-webgl"])
    try:
        page2, problems2, _ = open_page(disabled, url, prefix)
        for p in (page, page2):
            assert p.get_attribute(FIGURE, "data-state") == "fallback"
            assert p.is_visible(f"{FIGURE} img.scene-fallback")
            assert p.eval_on_selector(f"{FIGURE} img.scene-fallback", "i => i.naturalWidth") == 64
            assert not p.is_visible(f"{FIGURE} canvas")
            assert "WebGL" in p.text_content(f"{FIGURE} .scene3d-fallback-note")
            assert p.locator(f"{FIGURE} .scene3d-note").all_text_contents() == synthetic_scene()["notes"]
            assert p.evaluate("window.__pwned") is None
        assert problems == [] and problems2 == [] and outside == []
    finally:
        disabled.close()
    page.context.close()


def test_save_png_holds_the_view_its_background_and_its_labels(browser, tmp_path, served):
    from PIL import Image

    scene = synthetic_scene()
    url, prefix = site_url("file", tmp_path, served, scene)
    page, problems, outside = open_page(browser, url, prefix)
    geo = canvas_geometry(page)
    with page.expect_download() as info:
        page.click(f"{FIGURE} button.scene3d-save")
    download = info.value
    assert download.suggested_filename == f"{scene['kind']}.png"
    path = tmp_path / "saved.png"
    download.save_as(path)
    saved = np.asarray(Image.open(path).convert("RGBA"))
    assert saved.shape == (geo["bh"], geo["bw"], 4)
    assert (saved[..., 3] == 255).all()  # opaque: the page's background is painted in
    # the points are where the live canvas has them
    xyz = np.asarray(scene["points"]["xyz"]).reshape(-1, 3)
    screen = project(scene, xyz, geo["bw"], geo["bh"])
    colors = np.asarray(scene["points"]["color"]).reshape(-1, 3)
    red = np.flatnonzero((colors == RED).all(axis=1))
    assert np.mean([near_colour(saved, screen[i], RED) for i in red]) >= 0.75
    # a label: ink inside the box the page shows it in, none in the live canvas there
    box = page.locator(f"{FIGURE} .scene3d-text", has_text="top").bounding_box()
    x0, y0 = int(box["x"] - geo["x"]), int(box["y"] - geo["y"])
    x1, y1 = x0 + int(box["width"]), y0 + int(box["height"])
    background = saved[2, 2, :3].astype(int)
    inked = np.abs(saved[y0:y1, x0:x1, :3].astype(int) - background).max(axis=-1) > 60
    assert inked.mean() > 0.03
    # ...and that ink is the label's, not the WebGL pixels' (the canvas over the same background)
    live = pixels(page)[y0:y1, x0:x1].astype(float)
    alpha = live[..., 3:] / 255
    composite = live[..., :3] * alpha + background * (1 - alpha)
    assert (np.abs(saved[y0:y1, x0:x1, :3] - composite).max(axis=-1) > 60).mean() > 0.03
    assert problems == [] and outside == []
    page.context.close()


def test_an_example_page_link_rings_its_point_on_the_index(browser, tmp_path, served):
    scene = synthetic_scene()
    links = scene["points"]["link"]
    target = next(i for i, link in enumerate(links) if link and not link.startswith("javascript"))
    url, prefix = site_url("file", tmp_path, served, scene)
    from urllib.parse import quote

    page, problems, outside = open_page(browser, f"{url}#show={quote(links[target])}", prefix)
    assert page.get_attribute(FIGURE, "data-highlight") == str(target)
    label = scene["points"]["label"][target]
    texts = page.locator(f"{FIGURE} .scene3d-text").all_text_contents()
    assert label[:59] in " ".join(texts)
    plain, _, _ = open_page(browser, url, prefix)
    assert plain.get_attribute(FIGURE, "data-highlight") is None
    # the ring is drawn: the highlighted point's sprite is wider than in the page without it
    geo = canvas_geometry(page)
    x, y = project(scene, np.asarray(scene["points"]["xyz"]).reshape(-1, 3)[target], geo["bw"], geo["bh"])[0]
    ringed, bare = pixels(page), pixels(plain)
    window = (slice(int(y) - 12, int(y) + 13), slice(int(x) - 12, int(x) + 13))
    assert (ringed[window][..., 3] > 0).sum() > (bare[window][..., 3] > 0).sum()
    assert problems == [] and outside == []
    page.context.close()
    plain.context.close()


def test_the_still_image_of_a_shown_scene_loads_for_print_though_lazy(browser, tmp_path, served):
    """With WebGL the still image is hidden, and `loading="lazy"` would never fetch it; a printout
    shows it, so after load the shown scene's image is fetched (a hidden choice's is not, until
    its button is pressed), and print media show it, loaded."""
    root, base = served
    folder = root / "lazy"
    write_page(folder, synthetic_scene())
    html = (folder / "index.html").read_text(encoding="utf-8")
    start, end = html.index('<figure class="scene3d">'), html.index("</figure>") + len("</figure>")
    one = html[start:end].replace('class="scene-fallback"', 'class="scene-fallback" loading="lazy"')
    two = one.replace('src="scene.webp"', 'src="second.webp"')
    shutil.copy(folder / "scene.webp", folder / "second.webp")
    group = choice_group(one, two)
    css = (  # the print rule of templates/assets/base.css
        "<style>@media print { figure.scene3d canvas { display: none !important; } "
        "figure.scene3d img.scene-fallback { display: block !important; } }</style>"
    )
    page_html = html[:start] + group + html[end:]
    (folder / "index.html").write_text(page_html.replace("</head>", css + "</head>"), encoding="utf-8")
    fetched = []
    context = browser.new_context(viewport={"width": 900, "height": 800})
    page = context.new_page()
    page.on("request", lambda r: fetched.append(r.url.rsplit("/", 1)[-1]))
    page.goto(f"{base}/lazy/index.html", wait_until="load")
    a, b = f"{FIGURE}[data-choice=a]", f"{FIGURE}[data-choice=b]"
    page.wait_for_function(f"document.querySelector('{a}').dataset.state === 'drawn'", polling="raf")
    page.wait_for_function(f"document.querySelector('{a} img').naturalWidth === 64")
    assert not page.is_visible(f"{a} img") and "second.webp" not in fetched
    page.emulate_media(media="print")
    assert page.is_visible(f"{a} img") and not page.is_visible(f"{a} canvas")
    page.emulate_media(media="screen")
    page.click("button[data-choice=b]")
    page.wait_for_function(f"document.querySelector('{b} img').naturalWidth === 64")
    assert "second.webp" in fetched
    context.close()


def label_boxes(page) -> tuple[dict, list[dict]]:
    """The stage's box and every shown label's (text, kind, box), in CSS pixels."""
    stage = page.eval_on_selector(
        f"{FIGURE} .scene3d-stage",
        "s => { const r = s.getBoundingClientRect();"
        " return {x0: r.left, y0: r.top, x1: r.right, y1: r.bottom}; }",
    )
    shown = page.eval_on_selector_all(
        f"{FIGURE} .scene3d-text",
        """els => els.filter(e => !e.hidden).map(e => { const r = e.getBoundingClientRect();
            return {text: e.textContent, kind: e.className, x0: r.left, y0: r.top, x1: r.right, y1: r.bottom,
                    clipped: e.scrollWidth > e.clientWidth + 1}; })""",
    )
    return stage, shown


def crowded_scene() -> dict:
    """A flow-like scene: long axis names at the edges and a row of token labels closer together
    than they are wide, the layout's hard case."""
    scene = synthetic_scene()
    scene["axes"]["labels"] = ["token position", "layer", "hidden-state PC1"]
    scene["texts"] = [{"xyz": [-3 + 0.3 * i, -3, -3], "text": f"token{i:02d}"} for i in range(20)]
    return scene


@pytest.mark.parametrize("make", [synthetic_scene, crowded_scene])
def test_labels_lie_inside_the_canvas_and_never_overlap(browser, tmp_path, served, make):
    scene = make()
    url, prefix = site_url("file", tmp_path, served, scene)
    page, problems, outside = open_page(browser, url, prefix)
    stage, shown = label_boxes(page)
    texts = [b["text"] for b in shown]
    for name in scene["axes"]["labels"]:
        assert name in texts  # every axis name, whole
    assert not any(t.count(",") == 2 for t in texts)  # no bare "x, y, z" corner
    assert int(page.get_attribute(FIGURE, "data-labels-shown")) == len(shown)
    for i, a in enumerate(shown):
        assert stage["x0"] <= a["x0"] and a["x1"] <= stage["x1"] + 0.5, a
        assert stage["y0"] <= a["y0"] and a["y1"] <= stage["y1"] + 0.5, a
        for b in shown[i + 1 :]:
            apart = a["x1"] <= b["x0"] or b["x1"] <= a["x0"] or a["y1"] <= b["y0"] or b["y1"] <= a["y0"]
            assert apart, (a, b)
    if make is crowded_scene:
        tokens = [t for t in texts if t.startswith("token")]
        assert "token00" in tokens and 3 <= len(tokens) < 20  # some shown, the crowded rest left out
    # a turn lays them out again: still inside and apart
    before = frames(page)
    page.keyboard.press("Tab")
    page.focus(f"{FIGURE} canvas")
    page.keyboard.press("ArrowLeft")
    after_next_frame(page, before)
    stage, shown = label_boxes(page)
    for i, a in enumerate(shown):
        assert stage["x0"] <= a["x0"] and a["x1"] <= stage["x1"] + 0.5
        for b in shown[i + 1 :]:
            assert a["x1"] <= b["x0"] or b["x1"] <= a["x0"] or a["y1"] <= b["y0"] or b["y1"] <= a["y0"]
    assert problems == [] and outside == []
    page.context.close()
