"""The one build driver: config -> model folder -> a report kind's plan -> site.

`build` owns what every report shares: the options and paths checked, the site target refused
before any model runs, the model resolved (a Hugging Face folder exported into the cache), the
spool, skipped rows, and the site swap. What differs between a classification and a generation
report sits behind `attnreport.kinds.ReportKind`.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from attnreport.analysis.options import check_generate_options, check_options
from attnreport.core.config import ReportConfig
from attnreport.core.errors import ConfigError
from attnreport.core.files import sha256_file, sha256_folder
from attnreport.core.modelcard import ModelCard, is_exported
from attnreport.core.progress import note
from attnreport.kinds import BuildContext, Log, SkippedRows, choose_kind
from attnreport.run import Executor, Work, open_executor
from attnreport.site.build import check_site_target, spool_folder, write_site
from attnreport.site.pages import Subsite
from attnreport.trace import GenerationStats, TraceStats
from attnreport.trace.cache import default_cache_dir


def _stderr(message: str) -> None:
    note(message, stream=sys.stderr)


@dataclass
class BuildResult:
    site: Path
    examples: int
    #: the model runs: the tracer's (classification) or the generator's (generation)
    stats: TraceStats | GenerationStats
    model: Path
    #: rows of the data file skipped as bad (`[data] on_bad_row = "skip"`), listed on the index
    skipped: int = 0
    #: the index pages of the built sites shipped inside this one (the demo's generation report)
    subsites: tuple[Path, ...] = ()


def checkpoint_key(folder: Path) -> str:
    """A key for a Hugging Face folder: its config, tokenizer and weight files' hashes."""
    return sha256_folder(folder, (".json", ".safetensors", ".bin", ".txt", ".model"))[:24]


def _installed(module: str) -> bool:
    """Whether `module` can be imported, without importing it (torch is export/'s alone)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_scenes_renderer(config: ReportConfig) -> None:
    """3D scenes need PyVista (and VTK, about 600 MB), an extra since a user who never renders a
    scene should not carry it: asked for without it, a build stops before any model runs."""
    try:
        installed = importlib.util.find_spec("pyvista") is not None
    except (ImportError, ValueError):  # a module blocked in sys.modules has no spec
        installed = False
    if config.site.scenes and not installed:
        raise ConfigError(
            f"{config.source or 'config'}: 3D scenes need PyVista, which is not installed: "
            "pip install 'attnreport[scenes]', or set [site] scenes = false"
        )


def check_model_paths(config: ReportConfig) -> None:
    """A model folder that does not exist is said first, before the options and the data are read:
    any later message about it (not an export, no config.json) would hide the plain cause."""
    where = config.source or "config"
    for section, path in (("model", config.model.path), ("compare", config.compare.path)):
        if path is not None and not Path(path).exists():
            raise ConfigError(f"{where}: [{section}] path {path} does not exist; check the path")


def build_inputs(config: ReportConfig, cache_dir: Path) -> list[Path]:
    """What a build reads from disk: no site may be written over any of it."""
    paths = (config.source, config.data.path, config.site.templates, config.model.path, config.compare.path)
    return [Path(p) for p in (*paths, cache_dir) if p is not None]


def resolve_model(path: Path, cache_dir: Path, *, with_qk: bool = False, log: Log = _stderr) -> Path:
    """An exported folder as it is; a Hugging Face folder or a GGUF file exported into the cache first
    (with queries and keys when `with_qk`, in a folder of its own), a GGUF file keyed by its hash."""
    path = Path(path)
    if is_exported(path):
        return path
    gguf = path.is_file() and path.suffix.lower() == ".gguf"
    if not gguf and not (path / "config.json").is_file():
        raise ConfigError(
            f"{path}: [model] path is neither an attnreport export (attnreport.json + model.onnx), "
            f"a Hugging Face folder (config.json) nor a .gguf file; check the path"
        )
    key = "gguf-" + sha256_file(path)[:24] if gguf else checkpoint_key(path)
    target = Path(cache_dir) / "models" / (key + ("-qk" if with_qk else ""))
    if is_exported(target):
        log(f"using the cached export of {path}")
        return target
    if not _installed("torch"):
        raise ConfigError(
            f"{path}: a Hugging Face folder or GGUF file must be exported first, which needs torch: "
            f"pip install torch==2.13.0 'attnreport[export]', or run `attnreport export` elsewhere"
        )
    from attnreport.export import export_model

    export_model(path, target, with_qk=with_qk, log=log)
    return target


def build(
    config: ReportConfig,
    out: Path,
    *,
    log: Log = _stderr,
    progress: bool = True,
    subsites: list[Subsite] | None = None,
) -> BuildResult:
    """Build the site for `config` into `out`, replacing a previous site only when done; `subsites`
    are built sites shipped inside it (linked from its index)."""
    check_model_paths(config)
    check_scenes_renderer(config)
    check_options(config.analysis, where=str(config.source or "config"))
    check_generate_options(config.generate, where=str(config.source or "config"))
    cache_dir = config.cache_dir or default_cache_dir()
    if cache_dir.exists() and not cache_dir.is_dir():
        raise ConfigError(f"{cache_dir}: cache_dir is a file; name a folder (or remove the option)")
    inputs = build_inputs(config, cache_dir)
    out = check_site_target(out, inputs=inputs)  # before any model runs
    kind = choose_kind(config)  # and the kind's checks of the config alone
    model_dir = resolve_model(config.model.path, cache_dir, with_qk=config.model.with_qk, log=log)
    card = ModelCard.load(model_dir)
    kind.check(config, card)
    skipped = SkippedRows(log)
    out.parent.mkdir(parents=True, exist_ok=True)
    spool = spool_folder(out)
    shutil.rmtree(spool, ignore_errors=True)
    executors: list[Executor] = []

    def stream(work: Work, items: Iterable) -> Iterator:
        """`work` over `items` on the executor `[run]` names, opened now (an unreachable scheduler
        stops the build before anything is written) and closed by this driver."""
        executors.append(open_executor(config.run, work, log=log))
        return executors[-1].stream(items)

    context = BuildContext(
        config=config,
        model_dir=model_dir,
        card=card,
        cache_dir=cache_dir,
        spool=spool,
        log=log,
        progress=progress,
        skipped=skipped,
        resolve_model=lambda path: resolve_model(path, cache_dir, log=log),
        stream=stream,
        subsites=list(subsites or []),
    )
    try:
        plan = kind.plan(context)
        site = write_site(
            plan,
            out,
            theme=config.site.theme,
            overrides=config.site.templates,
            progress=progress,
            inputs=inputs,
        )
    finally:
        shutil.rmtree(spool, ignore_errors=True)
        for executor in executors:
            executor.close()
    return BuildResult(
        site=site,
        examples=len(plan.examples),
        stats=kind.stats,
        model=model_dir,
        skipped=len(skipped),
        subsites=tuple(site / sub.path / "index.html" for sub in subsites or ()),
    )
