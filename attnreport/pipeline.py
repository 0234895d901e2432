"""The stages chained: config -> model folder -> traces -> page plan -> site.

The CLI calls these; each step is a stage's own function, so this module only wires.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from attnreport.analysis.compare import compare_pair, summarise_comparison
from attnreport.analysis.decision import DecisionSpace, decision_space, fit_probe, pool
from attnreport.analysis.explain import Explanation, explain
from attnreport.analysis.heads import HeadThresholds, head_scores, induction_scores, repeated_random_tokens
from attnreport.analysis.rollout import read_row, rollout
from attnreport.core.config import ReportConfig
from attnreport.core.errors import ConfigError, InputError
from attnreport.core.modelcard import is_exported
from attnreport.site.build import spool_folder, write_site
from attnreport.site.encode import clean, script_json
from attnreport.site.pages import gather
from attnreport.trace import Tracer, TraceStats, read_rows
from attnreport.trace.cache import ResultCache, default_cache_dir
from attnreport.trace.evaluate import HeadModel

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


class Analysis:
    """Runs the analysis stage on traces as they stream by, with its results cached."""

    #: the head atlas is computed on at most this many examples (their attentions are kept)
    HEAD_SAMPLE = 256

    def __init__(self, tracer: Tracer, config: ReportConfig, cache_dir: Path) -> None:
        self.tracer = tracer
        self.options = config.analysis
        self.sample: list = []
        self.pooled: list[np.ndarray] = []
        self.truth: list[str | None] = []
        self.predicted: list[int] = []
        self.cache = None
        if tracer.key:
            self.cache = ResultCache(cache_dir, "analysis", tracer.key, asdict(self.options))
        self.computed = 0
        # checked before any model runs: a misspelt threshold is a config error, not a late crash
        self.thresholds = HeadThresholds.from_dict(self.options.head_thresholds)

    def explain(self, trace):
        cached = self.cache.get(trace.text) if self.cache else None
        if cached is not None:
            return Explanation.from_dict(cached)
        result = explain(self.tracer, trace, self.options)
        self.computed += 1
        if self.cache:
            self.cache.put(trace.text, clean(result.to_dict()))
        return result

    def stream(self, traces):
        card = self.tracer.card
        pooling = self.options.decision_pooling or card.read_position
        for trace in traces:
            if len(self.sample) < self.HEAD_SAMPLE:
                self.sample.append(trace)
            self.pooled.append(
                pool(trace.hidden, trace.special, pooling=pooling, layer=self.options.decision_layer)
            )
            self.truth.append(trace.label)
            if trace.logits is not None:
                self.predicted.append(int(np.argmax(trace.logits)))
            yield trace, self.explain(trace)

    def decision(self) -> DecisionSpace | None:
        """The decision space, drawn by the model's head when it reads this pooling, else a probe."""
        card = self.tracer.card
        if len(self.pooled) < 2 or not card.labels or len(self.predicted) != len(self.pooled):
            return None
        pooling = self.options.decision_pooling or card.read_position
        own = (
            card.has_head
            and pooling == card.read_position
            and self.options.decision_layer in (-1, card.layers)
        )
        if own:
            head, source = HeadModel(self.tracer.folder), "model_head"
        else:
            known = [(p, t) for p, t in zip(self.pooled, self.truth, strict=True) if t in card.labels]
            if len({t for _, t in known}) < 2:
                return None
            head = fit_probe(np.stack([p for p, _ in known]), [t for _, t in known], card.labels)
            source = "probe"
        return decision_space(
            np.stack(self.pooled),
            np.array(self.predicted),
            head,
            labels=card.labels,
            layer=self.options.decision_layer,
            pooling=pooling,
            source=source,
        )

    def induction_probe(self, period: int = 32):
        """Olsson et al.'s probe: a random token sequence repeated twice, after the prefix tokens."""
        tok = self.tracer.tokenizer
        period = max(3, min(period, (self.tracer.window - 1) // 2))
        ids = repeated_random_tokens(tok.vocab_size, period, random_state=0, exclude=tok.special_ids)
        full = np.concatenate([tok.prefix_ids, ids, tok.suffix_ids])
        return induction_scores(self.tracer.attentions_for_ids(full), period, len(tok.prefix_ids))

    def heads(self) -> list[dict]:
        if not self.sample:
            return []
        card = self.tracer.card
        induction = self.induction_probe() if card.causal else None
        scores = head_scores(self.sample, thresholds=self.thresholds, causal=card.causal, induction=induction)
        ids = [t.id for t in self.sample]
        out = []
        for h in scores:
            entry = asdict(h)
            entry["typical"] = [ids[i] for i in h.typical]
            out.append(entry)
        return out


class Comparison:
    """The same rows through a second model (or the int8 export), compared trace by trace."""

    def __init__(self, tracer: Tracer, config: ReportConfig, cache_dir: Path, *, log: Log) -> None:
        other = config.compare
        folder = resolve_model(other.path, cache_dir, log=log) if other.path else tracer.folder
        self.tracer = Tracer(
            folder,
            quantized=other.quantized,
            batch_size=config.model.batch_size,
            window=config.model.window,
            stride=config.model.stride,
            cache_dir=cache_dir,
        )
        self.main = tracer
        self.rows = read_rows(config.data, on_bad=lambda bad: None)  # bad rows were reported once
        self.name = other.name or ("int8" if other.quantized and not other.path else str(folder.name))
        self.pairs: list[dict] = []

    def stream(self, traces):
        for a, b in zip(traces, self.tracer.trace(self.rows), strict=True):
            self.pairs.append(compare_pair(a, b, self.main.card.labels, self.tracer.card.labels))
            yield a

    def summary(self) -> dict:
        card = self.tracer.card
        return {
            "name": self.name,
            "model": {
                "architecture": card.architecture,
                "file": self.tracer.model_path.name,
                "labels": card.labels,
            },
            **summarise_comparison(self.pairs),
            "examples_detail": self.pairs,
        }


class SceneMaker:
    """The scenes stage in the build: render each scene to WebP and .glb in the spool, keep its
    JSON for the page's viewer, and list the files for the site."""

    def __init__(self, spool: Path, theme: str, *, example_glb: bool = False) -> None:
        self.spool = Path(spool)
        self.theme = theme
        self.example_glb = example_glb
        self.files: dict[str, Path] = {}
        self.count = 0

    def _save(self, scene, name: str, *, glb: bool = True, legend: list | None = None) -> dict:
        from attnreport.scenes import export_glb, render, to_json

        folder = self.spool / "scenes"
        folder.mkdir(parents=True, exist_ok=True)
        image, path, data = folder / f"{name}.webp", folder / f"{name}.glb", folder / f"{name}.json"
        render(scene, image, theme=self.theme)
        data.write_text(script_json(to_json(scene)), encoding="utf-8")
        self.files[f"scenes/{name}.webp"] = image
        if glb:
            export_glb(scene, path, theme=self.theme)
            self.files[f"scenes/{name}.glb"] = path
        return {
            "json": str(data),
            "image": f"scenes/{name}.webp",
            "glb": f"scenes/{name}.glb" if glb else None,
            "notes": list(scene.notes),
            "legend": legend or [],
            "title": scene.title,
        }

    def flow(self, trace, read_position: str) -> dict:
        from attnreport.scenes import flow_scene

        self.count += 1
        scene = flow_scene(trace, rollout_row=read_row(rollout(trace.attentions), read_position))
        return self._save(scene, f"flow-{self.count:05d}", glb=self.example_glb)

    def stream(self, items, read_position: str):
        for trace, explanation in items:
            yield trace, explanation, self.flow(trace, read_position)

    def decision(self, space: DecisionSpace, report: dict) -> dict:
        from attnreport.scenes import decision_scene

        labels = set(space.labels)
        examples = report["examples"]
        scene = decision_scene(
            space,
            truth=[e["label"] if e["label"] in labels else None for e in examples],
            predicted=[e["prediction"] for e in examples],
            texts=[e["text"] for e in examples],
            links=[e["page"] for e in examples],
        )
        from attnreport.scenes import class_color

        legend = [
            (name, "#{:02x}{:02x}{:02x}".format(*class_color(i))) for i, name in enumerate(space.labels)
        ]
        return self._save(scene, "decision", legend=legend)


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
    analysis = Analysis(tracer, config, cache_dir)
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    spool = spool_folder(out)
    shutil.rmtree(spool, ignore_errors=True)
    comparison = Comparison(tracer, config, cache_dir, log=log) if config.compare.enabled else None
    if comparison is not None:
        traces = comparison.stream(traces)
    try:
        scenes = SceneMaker(spool, config.site.theme, example_glb=config.site.example_glb)
        items = analysis.stream(traces)
        if config.site.scenes:
            items = scenes.stream(items, tracer.card.read_position)
        plan = gather(items, tracer.card, title=config.title, spool=spool)
        if comparison is not None:
            plan.report["compare"] = clean(comparison.summary())
        plan.report["heads"] = clean(analysis.heads())
        space = analysis.decision()
        if space is not None:
            plan.decision_space = space
            plan.report["decision_space"] = clean(space.summary())
            for record, xyz, on_slice in zip(
                plan.report["examples"], space.coords, space.slice_predictions, strict=True
            ):
                record["xyz"] = clean(xyz.tolist())
                record["slice_prediction"] = tracer.card.labels[int(on_slice)]
            if config.site.scenes:
                plan.decision_scene = scenes.decision(space, plan.report)
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
