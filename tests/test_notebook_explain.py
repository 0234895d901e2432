"""attnreport.explain: the pipeline of `attnreport build`, called from a notebook.

Known answers: the site `.save()` writes is the CLI's, byte for byte, for the same options written
as a report.toml; the typed views read report.json's own numbers; a mistake is the CLI's one-line
message. And a real Jupyter kernel (nbclient) runs explain() on two texts: its output, opened in
Chromium, shows the index and, on a click, an example page, drawn, with nothing fetched; its
progress is tqdm's bar; a bad option is one line of ConfigError, with none of our frames.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

import attnreport
from attnreport.cli import main
from attnreport.core.errors import AttnReportError, BuildError, ConfigError
from attnreport.notebook.sitepack import site_files

REPO = Path(__file__).resolve().parent.parent
TEXTS = ["lock my account now", "where is my parcel and when will it arrive"]
PROMPTS = ["the cat sat on", "one two three"]


def tree(folder: Path) -> dict[str, bytes]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


def cli_build(tmp_path: Path, toml: str, name: str = "cli") -> Path:
    config = tmp_path / f"{name}.toml"
    config.write_text(toml, encoding="utf-8")
    assert main(["build", str(config), "-o", str(tmp_path / name), "-q"]) == 0
    return tmp_path / name


def test_save_writes_the_site_the_cli_builds_byte_for_byte(tiny, tmp_path):
    model, cache = tiny.export("bert"), tmp_path / "cache"
    report = attnreport.explain(
        model,
        TEXTS,
        title="Tickets <b>triage</b>",
        cache_dir=str(cache),
        analysis={"attributions": ["occlusion", "shapley"], "explain_classes": 1},
        site={"theme": "dark"},
        progress=False,
    )
    saved = report.save(tmp_path / "saved")
    cli = cli_build(
        tmp_path,
        f'title = "Tickets <b>triage</b>"\ncache_dir = "{cache}"\n[model]\npath = "{model}"\n'
        f"[data]\ntexts = {json.dumps(TEXTS)}\n"
        '[analysis]\nattributions = ["occlusion", "shapley"]\nexplain_classes = 1\n[site]\ntheme = "dark"\n',
    )
    ours, theirs = tree(saved), tree(cli)
    assert sorted(ours) == sorted(theirs) and "examples/1.html" in ours
    assert [name for name in ours if ours[name] != theirs[name]] == []
    assert report.to_json() == (cli / "report.json").read_text(encoding="utf-8")

    # saved again over its own site: replaced; over a folder of the user's: refused, untouched
    (saved / "index.html").write_text("stale", encoding="utf-8")
    report.save(saved)
    assert tree(saved) == theirs
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep", encoding="utf-8")
    with pytest.raises(BuildError, match="not an attnreport site"):
        report.save(mine)
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "keep"


def test_rows_with_labels_are_the_data_file_the_cli_reads(tiny, tmp_path):
    model, cache = tiny.export("bert"), tmp_path / "cache"
    rows = [{"id": "a", "text": TEXTS[0], "label": "alpha"}, {"id": "b", "text": TEXTS[1], "label": "beta"}]
    report = attnreport.explain(model, rows, cache_dir=str(cache), site={"scenes": False}, progress=False)
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cli = cli_build(
        tmp_path,
        f'cache_dir = "{cache}"\n[model]\npath = "{model}"\n'
        '[data]\npath = "rows.jsonl"\n[site]\nscenes = false\n',
    )
    assert tree(report.save(tmp_path / "saved")) == tree(cli)
    assert [e.label for e in report.examples] == ["alpha", "beta"]
    assert report.data["metrics"]["labelled"] == 2


def test_typed_views_read_report_json(tiny, tmp_path):
    report = attnreport.explain(
        tiny.export("bert"), TEXTS, cache_dir=str(tmp_path / "cache"), site={"scenes": False}, progress=False
    )
    raw = json.loads(report.to_json())
    assert report.kind == "classification" and len(report.examples) == 2
    first, entry = report.examples[0], raw["examples"][0]
    assert first.id == "0" and first.text == TEXTS[0] and first.tokens == tuple(entry["tokens"])
    assert first.prediction == entry["prediction"] and first.generation is None
    shapley = first.attributions["shapley"]
    np.testing.assert_array_equal(shapley.values, entry["attributions"]["shapley"]["values"])
    assert shapley.units == first.tokens and shapley.unit == "token" and shapley.exact is True
    assert shapley.target == entry["prediction"] and shapley.output == "probability"
    # read-only: a view is not a second copy to edit
    with pytest.raises(ValueError):
        shapley.values[0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.prediction = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        first.raw["prediction"] = "other"  # type: ignore[index]


def test_a_causal_lm_takes_prompts_and_its_steps_are_typed(tiny, tmp_path):
    report = attnreport.explain(
        tiny.export("gpt2"),
        PROMPTS,
        cache_dir=str(tmp_path / "cache"),
        generate={"max_new_tokens": 5, "attributions": ["occlusion"]},
        site={"scenes": False},
        progress=False,
    )
    assert report.kind == "generation"
    entry = json.loads(report.to_json())["examples"][0]["generation"]
    generation = report.examples[0].generation
    assert generation.prompt == PROMPTS[0] and len(generation.steps) == len(entry["tokens"]) == 5
    step = generation.steps[3]
    assert step.index == 3 and step.token == entry["tokens"][3]
    assert step.probability == entry["steps"][3]["probability"] and step.rank == entry["steps"][3]["rank"]
    assert step.top[0] == (entry["steps"][3]["top"][0]["token"], entry["steps"][3]["top"][0]["probability"])
    occlusion = report.examples[0].attributions["occlusion"]
    assert occlusion is generation.attributions["occlusion"]
    assert occlusion.values.shape == (5, len(occlusion.units))
    assert occlusion.units[:4] == ("the", "cat", "sat", "on")


def _cli_error(tmp_path, toml: str, capsys) -> str:
    config = tmp_path / "bad.toml"
    config.write_text(toml, encoding="utf-8")
    assert main(["build", str(config), "-o", str(tmp_path / "site")]) == 2
    line = capsys.readouterr().err.strip()
    assert line.count("\n") == 0
    return line.split(f"{config}: ", 1)[1]


@pytest.mark.parametrize(
    ("options", "top", "tables"),
    [
        ({"atributions": ["shapley"]}, 'atributions = ["shapley"]\n', ""),
        ({"analysis": {"attributions": ["nope"]}}, "", '[analysis]\nattributions = ["nope"]\n'),
        ({"site": {"theme": "sepia"}}, "", '[site]\ntheme = "sepia"\n'),
        ({"model": {"batch_size": "16"}}, "", ""),
    ],
)
def test_a_mistake_is_the_clis_one_line_message(options, top, tables, tmp_path, capsys):
    """Checked before any model is read: the model folder need not even be an export."""
    model = tmp_path / "model"
    model.mkdir()
    with pytest.raises(ConfigError) as raised:
        attnreport.explain(model, ["a text"], **options)
    message = str(raised.value)
    assert "\n" not in message
    batch = 'batch_size = "16"\n' if "model" in options else ""
    toml = f'{top}[model]\npath = "{model}"\n{batch}[data]\ntexts = ["a text"]\n{tables}'
    cli = _cli_error(tmp_path, toml, capsys)
    assert message.split("config: ", 1)[1] == cli
    # none of our frames below explain(): the traceback ends where the user called it
    frames = [f.co_name for f in _frames(raised.value.__traceback__)]
    assert frames[-1] == "explain"


def _frames(tb):
    while tb is not None:
        yield tb.tb_frame.f_code
        tb = tb.tb_next


def test_a_keyword_of_a_table_names_its_table_and_arguments_are_not_options(tmp_path):
    with pytest.raises(ConfigError, match=r"attributions is an option of \[analysis\] and \[generate\]"):
        attnreport.explain(tmp_path, ["a"], attributions=["shapley"])
    with pytest.raises(ConfigError, match=r"\[data\] texts is explain\(\)'s argument"):
        attnreport.explain(tmp_path, ["a"], data={"texts": ["b"]})
    with pytest.raises(ConfigError, match="list of strings"):
        attnreport.explain(tmp_path, [])
    with pytest.raises(ConfigError, match="does not exist"):
        attnreport.explain(tmp_path / "nowhere", ["a"])
    assert issubclass(ConfigError, AttnReportError)


def test_the_pack_holds_what_the_pages_use(tiny, tmp_path):
    report = attnreport.explain(tiny.export("bert"), TEXTS, cache_dir=str(tmp_path / "cache"), progress=False)
    files = site_files(report.site)
    assert {"index.html", "report.json", "examples/0.html", "assets/plotly-cartesian.min.js"} <= set(files)
    assert "scenes/flow-00001.webp" in files
    # a classification site ships the generation scripts too; its pages never load them
    assert (report.site / "assets/generation.js").is_file() and "assets/generation.js" not in files
    markup = report._repr_html_()
    assert len(markup) < 1_200_000, len(markup)  # plotly's bundle is most of it


def run_kernel(cells: list[str], env: dict[str, str], *, allow_errors: bool = True):
    """The cells (source texts, or a notebook) in a real Jupyter kernel (nbclient) with `env` set,
    errors kept as outputs, saved and read back."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    if isinstance(cells, list):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(c)) for c in cells]
    else:
        nb = cells
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        where = {"metadata": {"path": str(REPO)}}
        nbclient.NotebookClient(
            nb, timeout=300, kernel_name="python3", allow_errors=allow_errors, resources=where
        ).execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nbformat.reads(nbformat.writes(nb), as_version=4)


def kernel_env() -> dict[str, str]:
    """The kernel imports this checkout's attnreport, whatever is installed."""
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def open_report(browser, tmp_path, markup: str):
    """The output's HTML opened from a file in Chromium, every request and error recorded; returns
    the page, the output's frame and a function giving the frame of the page shown."""
    path = tmp_path / "output.html"
    path.write_text(f"<!doctype html><html><body>{markup}</body></html>", encoding="utf-8")
    page = browser.new_page()
    problems, requests = [], []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    outer = next(f for f in page.frames if f.parent_frame == page.main_frame)
    outer.wait_for_selector("body[data-ready=true][data-page='index.html']", state="attached")

    def shown():
        return next(f for f in page.frames if f.parent_frame == outer)

    return page, outer, shown, problems, requests


def test_explain_in_a_real_kernel_shows_the_site_inline_offline(tiny, browser, tmp_path):
    model, cache = tiny.export("bert"), tmp_path / "cache"
    nb = run_kernel(
        [
            f"""
            import attnreport
            report = attnreport.explain({str(model)!r}, {TEXTS!r}, cache_dir={str(cache)!r})
            report
            """,
            'report.examples[0].attributions["shapley"].values.round(6).tolist()',
            "' '.join(report.examples[1].tokens)",
            "attnreport.explain(report.site, ['a'], atributions=['shapley'])",
            f"report.save({str(tmp_path / 'saved')!r}).name",
        ],
        kernel_env(),
    )
    build, values, tokens, bad, saved = nb.cells
    html = [o for o in build.outputs if "text/html" in o.get("data", {})]
    assert len(html) == 1 and html[0].output_type == "execute_result"
    markup = html[0].data["text/html"]
    # progress: tqdm's bars (the notebook widget with ipywidgets, else its text bar), not log lines
    stderr = "".join(o.text for o in build.outputs if o.output_type == "stream" and o.name == "stderr")
    widgets = [o for o in build.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widgets or re.search(r"100%\|[^\n]*\| 2/2", stderr), stderr

    raw = json.loads((tmp_path / "saved" / "report.json").read_text(encoding="utf-8"))
    assert saved.outputs[0].data["text/plain"] == "'saved'"
    expected = np.round(raw["examples"][0]["attributions"]["shapley"]["values"], 6).tolist()
    assert json.loads(values.outputs[0].data["text/plain"]) == expected
    assert tokens.outputs[0].data["text/plain"] == repr(" ".join(raw["examples"][1]["tokens"]))

    # a bad option: one line of ConfigError, and no frame of attnreport's internals in the traceback
    (error,) = bad.outputs
    assert error.output_type == "error" and error.ename == "ConfigError"
    assert error.evalue.startswith("config: unknown option 'atributions'; known options: analysis,")
    trace = "\n".join(error.traceback)
    assert "core/config.py" not in trace and "pipeline.py" not in trace

    # the output opened in Chromium: the index, then an example page and a head page on a click
    page, outer, shown, problems, requests = open_report(browser, tmp_path, markup)
    index = shown()
    assert index.title() == raw["title"]
    assert index.locator("a[href='examples/1.html']").count() >= 1
    index.click("a[href='examples/1.html']")
    outer.wait_for_selector("body[data-page='examples/1.html']", state="attached")
    example = shown()
    example.wait_for_selector("#head-view svg line", state="attached")
    assert example.locator("#heatmap .main-svg").count() >= 1  # plotly drew the heatmap
    assert example.evaluate("document.styleSheets.length") >= 2
    example.click("a[href='../index.html']")
    outer.wait_for_selector("body[data-page='index.html']", state="attached")
    shown().click("a[href='heads/L1-H2.html']")
    outer.wait_for_selector("body[data-page='heads/L1-H2.html']", state="attached")
    # a head page's link opens the example on that head: the address's #layer=&head= is read
    shown().click("a[href='../examples/0.html#layer=1&head=2']")
    outer.wait_for_selector("body[data-page='examples/0.html#layer=1&head=2']", state="attached")
    example = shown()
    example.wait_for_selector("#head-view svg line", state="attached")
    assert example.eval_on_selector_all("#layer, #head", "ss => ss.map(s => s.value)") == ["1", "2"]
    example.select_option("#head", "3")  # the page writes its address, and stays
    assert example.evaluate("location.hash") == "#layer=1&head=3"
    outer.click("#back")
    outer.wait_for_selector("body[data-page='heads/L1-H2.html']", state="attached")
    outer.click("#back")
    outer.wait_for_selector("body[data-page='index.html']", state="attached")
    # the scenes' images are the site's own files
    image = shown().eval_on_selector("img.scene-fallback", "i => [i.naturalWidth, i.src.slice(0, 16)]")
    assert image[0] > 0 and image[1] == "data:image/webp;"
    outside = [u for u in requests if not u.startswith(("data:", "about:", Path(tmp_path).as_uri()))]
    assert problems == [] and outside == []
    page.close()


def test_the_example_notebook_runs_from_its_stripped_form(tiny, tmp_path):
    """examples/notebook.ipynb, as the repository holds it (no outputs), on the tiny checkpoints:
    both parts draw, and the report is saved as a site."""
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(REPO / "examples" / "notebook.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    env = {
        **kernel_env(),
        "ATTNREPORT_CHECKPOINT": str(tiny.checkpoint("bert")),
        "ATTNREPORT_LM": str(tiny.checkpoint("gpt2")),
        "ATTNREPORT_CACHE": str(tmp_path / "cache"),
        "ATTNREPORT_SITE": str(tmp_path / "site"),
    }
    done = run_kernel(nb, env, allow_errors=False)
    outputs = [o for c in done.cells for o in c.get("outputs", [])]
    html = [o.data["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert sum('class="attnreport-output"' in h for h in html) == 2  # head_view, model_view
    assert sum("attnreport-report" in h for h in html) == 1  # explain()
    saved = json.loads((tmp_path / "site" / "report.json").read_text(encoding="utf-8"))
    assert saved["kind"] == "classification" and len(saved["examples"]) == 2
    # the causal LM's step 3: its token, probability and top alternatives
    (step,) = [o.data["text/plain"] for o in done.cells[-1].outputs if o.output_type == "execute_result"]
    assert re.fullmatch(r"\('.*', 0\.\d+, \(\('.*', 0\.\d+\),.*\)\)", step, re.S), step
