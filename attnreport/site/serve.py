"""`attnreport serve`: preview a built site on 127.0.0.1, and nothing outside it.

Only for looking at a site before publishing it; the site itself needs no server.
Requests that resolve outside the site folder (``..``, symlinks) get 404.
"""

from __future__ import annotations

import functools
import http.server
import os
from pathlib import Path

from attnreport.core.errors import BuildError


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    def send_head(self):
        root = Path(self.directory).resolve()
        try:
            candidate = Path(self.translate_path(self.path)).resolve()
        except (ValueError, OSError):  # a NUL byte (``/%00``), a name the file system refuses
            candidate = None
        if candidate is None or (candidate != root and root not in candidate.parents):
            self.send_error(404, "File not found")
            return None
        return super().send_head()

    def list_directory(self, path):
        """A folder without an index.html is not listed: this serves the site, not a file browser."""
        self.send_error(404, "File not found")
        return None

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        if os.environ.get("ATTNREPORT_SERVE_LOG"):
            super().log_message(format, *args)


def make_server(site: Path, *, host: str = "127.0.0.1", port: int = 8000) -> http.server.ThreadingHTTPServer:
    site = Path(site).resolve()
    if not 0 <= port <= 65535:
        raise BuildError(f"--port {port}: not a port; choose one from 1024 to 65535 (0: any free one)")
    if not (site / "index.html").is_file():
        raise BuildError(f"{site}: no index.html here; build a site first with `attnreport build`")
    handler = functools.partial(SiteHandler, directory=str(site))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except (OSError, OverflowError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise BuildError(f"cannot listen on {host}:{port} ({reason}); choose another --port") from exc
