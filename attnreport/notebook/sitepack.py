"""A built site as one notebook output: every file its pages use, deflated into one frame.

The site's pages link each other and their assets relatively, and a notebook output has no
folder to be relative to. So the output is an ``<iframe srcdoc>`` (isolated from the notebook and
other outputs, like `page.frame`) holding the site's files as one deflated, base64 blob and a
table of contents, and ``sitepack.js``: it inflates the blob (the browser's own
``DecompressionStream``), and shows a page in an inner ``srcdoc`` frame with its scripts and
styles inlined and its images as ``data:`` addresses of those files; a link to another page of
the site shows that page (Back and Index buttons above it), a link to another file downloads it.
Nothing is served, nothing fetched from outside: the output works offline, in a saved notebook,
and in a page opened from a file (where ``blob:`` addresses are refused).

Why not each page inlined whole: every example page loads plotly's bundle (1.5 MB), so pages
inlined one by one would carry it once each; packed, the site's files are in the output once,
deflated (the bundle is then 0.66 MB of base64), and a page is assembled when it is shown.

Only what the pages reference goes in (the site copies every asset, e.g. the generation scripts
into a classification site): the pages, `report.json`, and the files their ``src`` and ``href``
attributes name.
"""

from __future__ import annotations

import base64
import html
import json
import posixpath
import re
import uuid
import zlib
from pathlib import Path

from attnreport.notebook.page import _script_text

#: a page's references: the value of every src and href attribute, as the site writes them
_REFERENCE = re.compile(r"""\b(?:src|href)="([^"]*)\"""")
#: the files every pack holds beside what the pages reference
_ALWAYS = ("index.html", "report.json")
TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".webp": "image/webp",
    ".png": "image/png",
    ".glb": "model/gltf-binary",
    ".txt": "text/plain",
}


def _referenced(site: Path, page: str) -> set[str]:
    """The site files `page` (a path relative to the site) names in its attributes."""
    text = (site / page).read_text(encoding="utf-8")
    found = set()
    for value in _REFERENCE.findall(text):
        target = html.unescape(value).split("#", 1)[0].split("?", 1)[0]
        if not target or re.match(r"^[a-z][a-z0-9+.-]*:|^/", target, re.I):
            continue
        path = posixpath.normpath(posixpath.join(posixpath.dirname(page), target))
        if not path.startswith("../") and (site / path).is_file():
            found.add(path)
    return found


def site_files(site: Path) -> list[str]:
    """The files of the built `site` that its pages can show or use, sorted."""
    site = Path(site)
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    files = set(pages) | {name for name in _ALWAYS if (site / name).is_file()}
    for page in pages:
        files |= _referenced(site, page)
    return sorted(files)


def pack(site: Path) -> tuple[dict, str]:
    """The table of contents (path -> [offset, length, type]) and the deflated files, base64."""
    site = Path(site)
    table, chunks, offset = {}, [], 0
    for name in site_files(site):
        data = (site / name).read_bytes()
        table[name] = [offset, len(data), TYPES.get(Path(name).suffix.lower(), "application/octet-stream")]
        chunks.append(data)
        offset += len(data)
    blob = zlib.compress(b"".join(chunks), 9)
    return table, base64.b64encode(blob).decode("ascii")


_CSS = """
html, body { margin: 0; height: 100%; font: 13px system-ui, sans-serif; background: #fff; color: #222; }
body { display: flex; flex-direction: column; }
nav { display: flex; gap: .5rem; align-items: center; padding: .25rem .5rem; border-bottom: 1px solid #ddd; }
nav code { color: #555; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
#page { flex: 1; border: 0; width: 100%; }
"""


def document(site: Path, *, title: str = "attnreport report") -> str:
    """The output's document: the packed site and the script that shows its pages."""
    table, data = pack(site)
    script = (Path(__file__).with_name("sitepack.js")).read_text(encoding="utf-8")
    contents = json.dumps(table, ensure_ascii=True, sort_keys=True).replace("<", "\\u003c")
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        '<nav><button type="button" id="back" disabled>Back</button>'
        '<button type="button" id="home">Index</button><code id="where"></code></nav>\n'
        f'<iframe id="page" title="{html.escape(title, quote=True)}"></iframe>\n'
        f'<script type="application/json" id="site-files">{contents}</script>\n'
        f'<script type="application/octet-stream" id="site-data">{data}</script>\n'
        f"<script>\n{_script_text(script)}\n</script>\n</body>\n</html>\n"
    )


def frame(site: Path, *, title: str = "attnreport report", height: int = 720) -> str:
    """The notebook output's HTML: the packed site in an iframe, under an id no other output has."""
    uid = f"attnreport-{uuid.uuid4().hex}"
    doc = html.escape(document(site, title=title), quote=True).encode("ascii", "xmlcharrefreplace")
    return (
        f'<div class="attnreport-output attnreport-report" id="{uid}">'
        f'<iframe id="{uid}-frame" title="{html.escape(title, quote=True)}" srcdoc="{doc.decode()}" '
        f'style="width: 100%; height: {int(height)}px; border: 1px solid #ddd; display: block">'
        "</iframe></div>"
    )
