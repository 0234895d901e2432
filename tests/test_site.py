"""The first site: report.json, pages, relative links, escaping, builds that never lose a site."""

from __future__ import annotations

import fcntl
import json
import re
import signal
import subprocess
import sys
import time

import pytest
from sitebuild import HOSTILE, sample_rows, write_config

from attnreport.core.config import load_config
from attnreport.core.errors import BuildError
from attnreport.core.trace import Trace
from attnreport.pipeline import build


@pytest.fixture
def config(tiny, tmp_path):
    return load_config(write_config(tmp_path / "project", tiny.export("bert"), sample_rows()))


@pytest.fixture
def sceneless(tiny, tmp_path):
    """The same project without 3D scenes (four fifths of a tiny build's time), for the tests of
    how a build replaces its folder: what the site holds plays no part there."""
    extra = "[site]\nscenes = false\n"
    return load_config(write_config(tmp_path / "project", tiny.export("bert"), sample_rows(), extra=extra))


def files(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_report_json_has_the_documented_shape(sample_site):
    site = sample_site.site
    report = json.loads((site / "report.json").read_text())
    assert report["schema"] == 1 and report["generator"].startswith("attnreport ")
    assert report["model"]["layers"] == 2 and report["model"]["heads"] == 4
    assert report["model"]["labels"] == ["alpha", "beta", "gamma"]
    examples = report["examples"]
    assert [e["text"] for e in examples] == [r["text"] for r in sample_rows()]
    for e in examples:
        assert (site / e["page"]).is_file()
        assert len(e["rollout"]) == len(e["tokens"])
        assert abs(sum(e["probabilities"].values()) - 1) < 1e-5
        assert e["prediction"] == max(e["probabilities"], key=e["probabilities"].get)
    m = report["metrics"]
    assert m["labelled"] == len(examples)
    assert sum(map(sum, m["confusion"])) == len(examples)
    correct = sum(e["prediction"] == e["label"] for e in examples)
    assert m["accuracy"] == pytest.approx(correct / len(examples))


def test_pages_link_relatively_and_load_nothing_from_outside(sample_site):
    site = sample_site.site
    assert (site / ".nojekyll").is_file() and (site / "assets" / "plotly-cartesian.min.js").is_file()
    assert (site / "assets" / "plotly-LICENSE.txt").read_text().startswith("MIT License")
    heads = sorted((site / "heads").glob("*.html"))
    assert len(heads) == 2 * 4
    for page in [site / "index.html", *sorted((site / "examples").glob("*.html")), *heads]:
        html = page.read_text()
        for ref in re.findall(r'(?:src|href)="([^"]*)"', html):
            assert not re.match(r"^(?:[a-z]+:|/)", ref), f"{page.name} links outside the site: {ref}"
            target = ref.split("#")[0]
            assert (page.parent / target).resolve().is_file(), f"{page.name}: broken link {ref}"
        assert "http://" not in html and "https://" not in html


def test_hostile_texts_are_escaped_and_slugs_are_safe(sample_site):
    site = sample_site.site
    pages = sorted((site / "examples").glob("*.html"))
    assert len(pages) == len(sample_rows())
    assert all(p.parent == site / "examples" and re.fullmatch(r"[a-z0-9-]+\.html", p.name) for p in pages)
    everything = "".join(p.read_text() for p in [site / "index.html", *pages])
    assert "<script>window" not in everything
    assert not re.search(r'<img(?! class="scene-fallback")', everything)  # only our own images
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in everything
    assert "{{ 7 * 7 }}" in everything  # shown literally, not evaluated
    report = json.loads((site / "report.json").read_text())
    assert [e["text"] for e in report["examples"][3:]] == HOSTILE


def test_failed_build_leaves_the_previous_site_untouched(sceneless, tmp_path):
    config = sceneless
    site = tmp_path / "site"
    build(config, site, progress=False)
    before = files(site)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "example.html.j2").write_text("{{ no_such_variable }}")
    config.site.templates = broken
    with pytest.raises(BuildError, match="example.html.j2.*no_such_variable"):
        build(config, site, progress=False)
    assert files(site) == before
    assert not list(tmp_path.glob(".site.build-*"))


def test_killed_build_leaves_the_previous_site_and_is_cleaned_up(sceneless, tmp_path):
    config = sceneless
    site = tmp_path / "site"
    build(config, site, progress=False)
    before = files(site)
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "example.html.j2").write_text("{% for i in range(10**9) %}{% endfor %}")
    code = (
        "import sys; from attnreport.core.config import load_config; from attnreport.pipeline import build\n"
        f"c = load_config({str(config.source)!r})\n"
        f"c.site.templates = __import__('pathlib').Path({str(slow)!r})\n"
        f"build(c, __import__('pathlib').Path({str(site)!r}), progress=False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not list(tmp_path.glob(".site.build-*/index.html")) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(tmp_path.glob(".site.build-*")), "the build was not caught mid-way"
    assert files(site) == before
    config.site.templates = None
    build(config, site, progress=False)
    assert not list(tmp_path.glob(".site.build-*")) and not list(tmp_path.glob(".site.old-*"))
    assert not list(tmp_path.glob(".site.spool-*"))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no lock beside it


def test_second_concurrent_build_stops_with_a_clear_message(sceneless, tmp_path):
    config = sceneless
    site = tmp_path / "site"
    from attnreport.core.files import lock_path

    lock_path(site).parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path(site), "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(BuildError, match="another attnreport build is writing"):
            build(config, site, progress=False)
    assert not site.exists()


def test_refuses_to_replace_a_folder_that_is_not_a_site(sceneless, tmp_path):
    config = sceneless
    precious = tmp_path / "docs"
    precious.mkdir()
    (precious / "notes.md").write_text("mine")
    with pytest.raises(BuildError, match="not an attnreport site"):
        build(config, precious, progress=False)
    assert (precious / "notes.md").read_text() == "mine"


def test_rebuild_is_served_from_cache_and_byte_identical(config, tmp_path):
    first = build(config, tmp_path / "a", progress=False)
    second = build(config, tmp_path / "b", progress=False)
    assert second.stats.traced == 0 and second.stats.sessions == 0
    assert files(first.site) == files(second.site)


def test_gather_streams_traces_and_keeps_none_of_them(tiny, tmp_path):
    """Memory stays flat: by the time a trace is made, the ones before it are gone."""
    import gc
    import weakref

    from attnreport.kinds.classification import plan_from_traces
    from attnreport.trace import Tracer

    tracer = Tracer(tiny.export("bert"), cache_dir=tmp_path / "cache")
    stored = [t.to_bytes() for t in tracer.trace_texts([r["text"] for r in sample_rows()])]
    refs = []

    def stream():
        for data in stored:
            gc.collect()
            # the loop variable in gather may still hold the latest one; none before it
            assert all(r() is None for r in refs[:-1]), "gather kept an earlier trace alive"
            trace = Trace.from_bytes(data)
            refs.append(weakref.ref(trace))
            yield trace
            del trace

    plan = plan_from_traces(stream(), tracer.card, title="t", spool=tmp_path / "spool")
    assert len(plan.examples) == len(stored)
    assert all(p.data_file.is_file() for p in plan.examples)


def test_builds_are_byte_identical_across_hash_seeds_and_time_zones(tiny, tmp_path):
    import os

    sites = []
    for seed, tz in [("1", "UTC"), ("4242", "Asia/Kolkata")]:
        project = tmp_path / f"p{seed}"
        config = write_config(project, tiny.export("bert"), sample_rows())
        code = (
            "import sys; from attnreport.cli import main; "
            f"sys.exit(main(['build', {str(config)!r}, '-o', {str(project / 'site')!r}, '-q']))"
        )
        env = dict(os.environ, PYTHONHASHSEED=seed, TZ=tz)
        subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True, timeout=300)
        sites.append(files(project / "site"))
    assert sites[0].keys() == sites[1].keys()
    different = [name for name in sites[0] if sites[0][name] != sites[1][name]]
    assert different == []


def test_the_vendored_plotly_names_no_server_it_could_load_from():
    """plotly.js carries two defaults pointing at Plotly's servers (map outlines, Chart Studio);
    templates/vendor/README.md empties them. Any other address must be one nothing fetches: XML
    namespaces, and links and licence credits in messages and comments."""
    import re

    from attnreport.core.resources import bundled

    text = (bundled("templates") / "vendor" / "plotly-cartesian.min.js").read_text(encoding="utf-8")
    assert 'topojsonURL:{valType:"string",noBlank:!0,dflt:""}' in text
    assert 'plotlyServerURL:{valType:"string",dflt:""}' in text
    hosts = set(re.findall(r"https?://([^/\"'\s)<>]+)", text))
    never_fetched = {"www.w3.org", "plotly.com", "github.com", "feross.org", "syntheti.cc"}
    never_fetched.add("getify.mit-license.org")
    assert hosts <= never_fetched, sorted(hosts - never_fetched)


def test_a_text_that_is_not_valid_unicode_is_named_by_its_line(sceneless, tmp_path):
    """JSON's \\ud800 escape decodes to a lone surrogate: a bad row named by its line when the data
    is read (skipped and listed, or with on_bad_row = "fail" refused, the previous site as it was),
    never a traceback after the analysis."""
    config = sceneless
    from attnreport.core.errors import InputError

    site = tmp_path / "site"
    build(config, site, progress=False)
    before = files(site)
    rows = [{"id": "a", "text": "refund please", "label": "alpha"}, {"id": "b", "text": "x \ud800 y"}]
    config.data.path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="ascii")
    config.data.on_bad_row = "fail"
    with pytest.raises(InputError, match=r":2: column 'text' holds a lone surrogate \(not text\)"):
        build(config, site, progress=False)
    assert files(site) == before
    config.data.on_bad_row = "skip"
    build(config, site, progress=False)
    (skipped,) = json.loads((site / "report.json").read_text())["skipped_rows"]
    assert skipped["line"] == 2 and "lone surrogate" in skipped["reason"]
