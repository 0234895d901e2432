"""The stages chained: config -> model folder -> traces -> page plan -> site.

The CLI calls these; each step is a stage's own function, so this module only wires.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from attnreport.analysis.stage import AnalysisStage, CompareStage
from attnreport.core.config import ReportConfig
from attnreport.core.errors import ConfigError, InputError
from attnreport.core.jsonsafe import clean
from attnreport.core.modelcard import is_exported
from attnreport.scenes.stage import SceneStage
from attnreport.site.build import spool_folder, write_site
from attnreport.site.pages import gather
from attnreport.trace import Tracer, TraceStats, read_rows
from attnreport.trace.cache import default_cache_dir

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


@dataclass
class BuildResult:
    site: Path
    examples: int
    stats: TraceStats
    model: Path


def checkpoint_key(folder: Path) -> str:
    """A key for a Hugging Face folder: its config, tokenizer and weight files' hashes."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).iterdir()):
        if path.is_file() and (path.suffix in (".json", ".safetensors", ".bin", ".txt", ".model")):
            digest.update(path.name.encode())
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:24]


def resolve_model(path: Path, cache_dir: Path, *, log: Log = _stderr) -> Path:
    """An exported folder as it is; a Hugging Face folder exported into the cache first."""
    path = Path(path)
    if is_exported(path):
        return path
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"{path}: [model] path is neither an attnreport export (attnreport.json + model.onnx) "
            f"nor a Hugging Face folder (config.json); check the path"
        )
    target = Path(cache_dir) / "models" / checkpoint_key(path)
    if is_exported(target):
        log(f"using the cached export of {path}")
        return target
    try:
        import torch  # noqa: F401

        from attnreport.export import export_model
    except ImportError as exc:
        raise ConfigError(
            f"{path}: a Hugging Face folder must be exported first, which needs torch: "
            f"pip install torch==2.13.0 'attnreport[export]', or run `attnreport export` elsewhere"
        ) from exc
    export_model(path, target, log=log)
    return target


def compare_stage(tracer: Tracer, config: ReportConfig, cache_dir: Path, *, log: Log) -> CompareStage:
    """The second model of [compare] (or the int8 export of the first) over the same rows."""
    other = config.compare
    folder = resolve_model(other.path, cache_dir, log=log) if other.path else tracer.folder
    second = Tracer(
        folder,
        quantized=other.quantized,
        batch_size=config.model.batch_size,
        window=config.model.window,
        stride=config.model.stride,
        cache_dir=cache_dir,
    )
    rows = read_rows(config.data, on_bad=lambda bad: None)  # bad rows were reported once
    name = other.name or ("int8" if other.quantized and not other.path else str(folder.name))
    return CompareStage(tracer, second, rows, name=name)


def build(config: ReportConfig, out: Path, *, log: Log = _stderr, progress: bool = True) -> BuildResult:
    """Build the site for `config` into `out`, replacing a previous site only when done."""
    cache_dir = config.cache_dir or default_cache_dir()
    model_dir = resolve_model(config.model.path, cache_dir, log=log)
    tracer = Tracer(
        model_dir,
        quantized=config.model.quantized,
        batch_size=config.model.batch_size,
        window=config.model.window,
        stride=config.model.stride,
        cache_dir=cache_dir,
    )
    rows = read_rows(config.data)
    traces = tqdm(tracer.trace(rows), desc="tracing", unit="text", disable=not progress or None)
    analysis = AnalysisStage(tracer, config.analysis, cache_dir)
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    spool = spool_folder(out)
    shutil.rmtree(spool, ignore_errors=True)
    comparison = compare_stage(tracer, config, cache_dir, log=log) if config.compare.enabled else None
    if comparison is not None:
        traces = comparison.stream(traces)
    try:
        scenes = SceneStage(spool, config.site.theme, example_glb=config.site.example_glb)
        items = analysis.stream(traces)
        if config.site.scenes:
            items = scenes.stream(items, tracer.card.read_position)
        plan = gather(items, tracer.card, title=config.title, spool=spool)
        if comparison is not None:
            plan.report["compare"] = clean(comparison.summary())
        plan.report["heads"] = clean(analysis.heads())
        plan.report["analysis"]["attention_by_distance"] = clean(analysis.decay.profile())
        space = analysis.decision()
        if space is not None:
            plan.decision_space = space
            plan.report["decision_space"] = clean(space.summary())
            examples = plan.report["examples"]
            rows = range(len(examples)) if space.rows is None else space.rows
            for row, xyz, on_slice in zip(rows, space.coords, space.slice_predictions, strict=True):
                record = examples[row]
                record["xyz"] = clean(xyz.tolist())
                record["slice_prediction"] = tracer.card.labels[int(on_slice)]
            others = analysis.layer_decisions()
            layers = tracer.card.layers
            plan.report["decision_spaces"] = sorted(
                (
                    {
                        **clean(s.summary()),
                        "layer": layers if s.layer == -1 else s.layer,
                        "default": s is space,
                    }
                    for s in (space, *others)
                ),
                key=lambda entry: entry["layer"],
            )
            if config.site.scenes:
                plan.decision_scene = scenes.decisions(space, others, plan.report, layers=layers)
        plan.files.update(scenes.files)
        if not plan.examples:
            raise InputError(f"{config.data.path or '[data] texts'}: no usable rows; check the data file")
        log(f"traced {tracer.stats.traced} texts, {tracer.stats.cached} from the cache")
        site = write_site(
            plan, out, theme=config.site.theme, overrides=config.site.templates, progress=progress
        )
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    return BuildResult(site=site, examples=len(plan.examples), stats=tracer.stats, model=model_dir)
