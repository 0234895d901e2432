"""Tracing and per-example analysis on Dask: a real `distributed.LocalCluster` (two worker
processes, one thread each), the same site byte for byte as an in-process build, a worker
killed with SIGKILL mid-build, an unreachable scheduler, a row that fails on a worker."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from sitebuild import sample_rows, write_config

from attnreport.cli import main
from attnreport.core.config import EXECUTOR_NAMES, load_config
from attnreport.core.errors import BuildError, ConfigError
from attnreport.pipeline import build
from attnreport.run import EXECUTORS

distributed = pytest.importorskip("distributed")

TICKET = "my card was charged twice for the parcel that never arrived so please refund it today"
WORDS = TICKET.split()
#: the hostile sample rows and longer ones, whose attributions take a while (the kill needs a window)
ROWS = sample_rows() + [
    {"id": f"long{i}", "text": " ".join(WORDS[i:] + WORDS[:i]), "label": "gamma"} for i in range(7)
]
#: the same per-example analysis in every build here, so the sites can be compared byte for byte.
#: No scenes: they are drawn on the driver from the results it reads back from the cache, which is
#: a cached rebuild (test_site checks that one byte for byte, scenes and all), and they are slow
ANALYSIS = "[analysis]\nevaluations_per_token = 24\n[site]\nscenes = false\n"


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_table(**options) -> str:
    return "[run]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in options.items())


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes with one thread each, shared by the tests of this module."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as local,
        distributed.Client(local, set_as_default=False) as client,
    ):
        yield local, client


@pytest.fixture(scope="module")
def reference(tiny, tmp_path_factory):
    """The in-process build of ROWS: what every Dask build must match."""
    root = tmp_path_factory.mktemp("reference")
    config = load_config(write_config(root / "p", tiny.export("bert"), ROWS, extra=ANALYSIS))
    return files(build(config, root / "site", progress=False).site)


def dask_config(tiny, folder: Path, rows=ROWS, **run):
    return load_config(write_config(folder, tiny.export("bert"), rows, extra=ANALYSIS + run_table(**run)))


def test_every_executor_name_is_registered():
    assert set(EXECUTORS) == set(EXECUTOR_NAMES)


def test_run_options_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="executor = 'ray'; choose one of process, dask"):
        load_config(write_config(tmp_path, tmp_path, ROWS, extra=run_table(executor="ray")))
    with pytest.raises(ConfigError, match=r"\[run\] chunk_size = 0; give a whole number >= 1"):
        load_config(write_config(tmp_path, tmp_path, ROWS, extra=run_table(chunk_size=0)))


def test_cluster_build_is_byte_identical_and_a_local_rebuild_reads_its_cache(
    cluster, reference, tiny, tmp_path
):
    local, _ = cluster
    logged = []
    config = dask_config(
        tiny, tmp_path / "p", executor="dask", scheduler=local.scheduler_address, chunk_size=3
    )
    result = build(config, tmp_path / "site", progress=False, log=logged.append)
    assert files(result.site) == reference
    # the workers ran the model: the driver made no session and read every trace from the cache
    assert result.stats.traced == len(ROWS) and result.stats.sessions == 0
    assert any("chunks on" in line and f"{len(ROWS)} analysed" in line for line in logged)
    config.run.executor = "process"
    again = build(config, tmp_path / "local", progress=False)
    assert again.stats.traced == 0 and again.stats.sessions == 0
    assert files(again.site) == reference


def test_a_worker_killed_mid_build_loses_nothing(cluster, reference, tiny, tmp_path):
    local, client = cluster
    client.wait_for_workers(2, timeout=60)
    pids = client.run(os.getpid)
    config = dask_config(
        tiny, tmp_path / "p", executor="dask", scheduler=local.scheduler_address, chunk_size=1
    )
    killed = {}

    def kill_a_busy_worker():
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            processing = client.processing()  # one snapshot: the task may finish between two calls
            busy = [a for a, keys in processing.items() if any("attnreport" in k for k in keys)]
            if busy and len(list((tmp_path / "p" / "cache").rglob("*.json"))) >= 2:
                killed["address"], killed["tasks"] = busy[0], processing[busy[0]]
                os.kill(pids[busy[0]], signal.SIGKILL)
            time.sleep(0.01)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    try:
        result = build(config, tmp_path / "site", progress=False)
    finally:
        killer.join()
    assert killed.get("tasks"), "no worker was caught running a chunk"
    with pytest.raises(ProcessLookupError):
        os.kill(pids[killed["address"]], 0)  # it really died
    assert result.examples == len(ROWS)
    assert files(result.site) == reference
    client.wait_for_workers(2, timeout=60)  # the nanny brought a fresh worker up


def test_an_unreachable_scheduler_is_one_line_and_leaves_the_site(reference, tiny, tmp_path, capsys):
    site = tmp_path / "site"
    site.mkdir()
    for name, data in reference.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(data)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    config = write_config(tmp_path / "p", tiny.export("bert"), ROWS, extra=run_table(connect_timeout=1))
    code = main(["build", str(config), "-o", str(site), "-q", "--scheduler", address])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and address in err[0] and "cannot reach the Dask scheduler" in err[0]
    assert files(site) == reference
    assert not list(tmp_path.glob(".site.*"))


def test_a_row_that_fails_on_a_worker_is_named_with_its_line(tiny, tmp_path):
    """A lone surrogate reads as text but the tracer refuses it, on the worker; the build
    (on a LocalCluster it starts itself) stops naming the file and line."""
    rows = ROWS[:2] + [{"id": "broken", "text": "refund \ud800 please", "label": "alpha"}] + ROWS[2:4]
    config = dask_config(tiny, tmp_path / "p", ROWS[:1], executor="dask", workers=1, chunk_size=2)
    # JSON's \ud800 escape: the file is valid UTF-8, the text it decodes to is not encodable
    config.data.path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="ascii")
    failed = r"data\.jsonl:3: row 'broken' failed on a worker \(InputError: line 3"
    with pytest.raises(BuildError, match=failed):
        build(config, tmp_path / "site", progress=False, log=lambda m: None)
    assert not (tmp_path / "site").exists()


#: prompts of the copy circuit; the first asks why its second answer token is not w7
PROMPTS = [
    {"id": "a", "prompt": "w0 w5 w9 w2 w30 w11 w12 w5 w9", "contrast": [{"step": 1, "token": "w7"}]},
    {"id": "b", "prompt": "w0 w7 w3 w21 w7"},
    {"id": "c", "prompt": "w0 w4 w8 w4"},
]


def generation_config(model: Path, folder: Path, **run):
    from attnreport.core.config import DataConfig, GenerateConfig, ModelConfig, ReportConfig, RunConfig

    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "prompts.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in PROMPTS), encoding="utf-8")
    return ReportConfig(
        title="copy circuit",
        model=ModelConfig(path=model),
        data=DataConfig(path=data),
        generate=GenerateConfig(enabled=True, max_new_tokens=4),
        run=RunConfig(**run),
        cache_dir=folder / "cache",
    )


def test_a_generation_report_on_the_cluster_is_the_in_process_report(
    cluster, copy_model, tmp_path, monkeypatch
):
    import attnreport.run.answer_explainer as answers

    local, _ = cluster
    reference = build(generation_config(copy_model, tmp_path / "local"), tmp_path / "one", progress=False)
    driver_runs = []

    class Counted(answers.ForcedAnswer):  # in this process only: the workers run their own
        def __call__(self, masks):
            driver_runs.append(len(masks))
            return super().__call__(masks)

    monkeypatch.setattr(answers, "ForcedAnswer", Counted)
    logged = []
    config = generation_config(
        copy_model, tmp_path / "dask", executor="dask", scheduler=local.scheduler_address, chunk_size=1
    )
    result = build(config, tmp_path / "two", progress=False, log=logged.append)
    # relative paths: the data file sits in another folder in each build
    one, two = files(reference.site), files(result.site)
    assert one.keys() == two.keys() and all(one[k] == two[k] for k in one)
    # the workers answered and explained every prompt; the driver read them from the cache
    assert result.stats.generated == len(PROMPTS) and result.stats.cached == 0
    assert driver_runs == []  # not one coalition ran on the driver: the explanations came from the workers
    assert any(f"{len(PROMPTS)} prompts answered" in line and "3 chunks" in line for line in logged)
    report = json.loads(two["report.json"])
    assert report["examples"][0]["generation"]["contrasts"]  # the asked contrast travelled to the worker
    assert any(c["source"] == "asked" for c in report["examples"][0]["generation"]["contrasts"])
