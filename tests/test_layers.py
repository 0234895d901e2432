"""The stages' boundaries, read from the source: each stage imports only itself, earlier stages
and core; torch and transformers only in export; pyvista and vtk only in scenes; dask only in run."""

from __future__ import annotations

import ast
from pathlib import Path

import attnreport

PACKAGE = Path(attnreport.__file__).resolve().parent
#: the stages in the order data flows through them; run/ (where tracing and the per-example
#: analysis run: this process, or Dask workers) drives trace/ and analysis/ and knows no later stage;
#: kinds/ (what differs between a classification and a generation report) wires them all;
#: notebook/ (BertViz's calls) draws with the site's figures and runs a model through export/
STAGES = ["core", "export", "trace", "analysis", "run", "scenes", "site", "kinds", "notebook"]
#: third-party packages only one stage may import
OWNED = {
    "torch": "export",
    "transformers": "export",
    "onnx": "export",
    "pyvista": "scenes",
    "vtk": "scenes",
    "dask": "run",
    "distributed": "run",
}


def imports(path: Path) -> list[tuple[str, int]]:
    """Every module `path` imports (at any depth: lazy imports count), with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
    return found


def stage_modules():
    for stage in STAGES:
        for path in sorted((PACKAGE / stage).rglob("*.py")):
            yield stage, path


def test_every_stage_imports_only_itself_and_earlier_stages():
    wrong = []
    for stage, path in stage_modules():
        allowed = set(STAGES[: STAGES.index(stage) + 1])
        for module, line in imports(path):
            parts = module.split(".")
            if parts[0] != "attnreport" or len(parts) < 2:
                continue
            target = parts[1]
            if target not in allowed:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} ({stage}) imports {module}")
    assert not wrong, "\n".join(wrong)


#: the modules at the package's top, after every stage, each importing only the ones before it
TOP = ["testing", "demo_lm", "pipeline", "report", "demo", "cli", "__main__"]


def test_top_level_modules_import_stages_and_earlier_top_level_ones():
    """One way down from the command line: cli -> demo -> pipeline -> kinds -> ... -> core."""
    found = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    assert found == sorted(TOP), "a new top-level module: place it in TOP"
    wrong = []
    for index, name in enumerate(TOP):
        allowed = set(STAGES) | set(TOP[:index])
        for module, line in imports(PACKAGE / f"{name}.py"):
            parts = module.split(".")
            if parts[0] == "attnreport" and len(parts) > 1 and parts[1] not in allowed:
                wrong.append(f"{name}.py:{line} imports {module}")
    assert not wrong, "\n".join(wrong)


#: what drives a model or keeps a cache, which analysis/ must be handed and never import: trace/'s
#: sessions, generators, masked models and caches, run/'s executors, the runtimes themselves, and
#: the file plumbing a cache is written with (analysis/ reads and writes no file)
RUNNERS_AND_CACHES = (
    "attnreport.trace",
    "attnreport.run",
    "attnreport.core.files",
    "onnxruntime",
    "tokenizers",
    "dask",
    "distributed",
    "os",
    "pathlib",
    "shutil",
    "tempfile",
)


def _within(module: str, names) -> bool:
    return any(module == name or module.startswith(name + ".") for name in names)


def test_analysis_runs_no_model_and_keeps_no_cache():
    """analysis/ is pure functions over traces and results: whatever drives a model or a cluster,
    or keeps a cache, is handed in, never imported; and it opens no file."""
    wrong = []
    for path in sorted((PACKAGE / "analysis").rglob("*.py")):
        where = path.relative_to(PACKAGE)
        wrong += [
            f"{where}:{line} imports {m}" for m, line in imports(path) if _within(m, RUNNERS_AND_CACHES)
        ]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        wrong += [
            f"{where}:{node.lineno} calls open()"
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open"
        ]
    assert not wrong, "\n".join(wrong)


def test_the_analysis_check_knows_a_runner_and_a_cache_when_it_sees_one():
    """Known answers: run/stage.py drives a model and keeps a cache, so the check, pointed at it,
    names both; a module that only shares a prefix with a forbidden one is not caught."""
    found = [m for m, _ in imports(PACKAGE / "run" / "stage.py") if _within(m, RUNNERS_AND_CACHES)]
    assert "attnreport.trace.cache" in found and "attnreport.trace.evaluate" in found
    assert not _within("attnreport.tracer", RUNNERS_AND_CACHES) and not _within("osmium", ["os"])


def test_heavy_libraries_stay_in_their_stage():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        stage = relative.parts[0] if len(relative.parts) > 1 else None
        for module, line in imports(path):
            owner = OWNED.get(module.split(".")[0])
            if owner is not None and stage != owner:
                wrong.append(f"{relative}:{line} imports {module}, which belongs to {owner}/")
    assert not wrong, "\n".join(wrong)


def test_the_checks_see_the_imports_they_judge():
    """Known answers for the reader: a lazy import inside a function is found, with its line."""
    found = dict(imports(PACKAGE / "scenes" / "rendering.py"))
    assert "pyvista" in found
    entry = PACKAGE / "site" / "report" / "examples.py"
    assert any(m.startswith("attnreport.analysis") for m, _ in imports(entry))


def test_only_the_kinds_ask_which_kind_a_report_is():
    """A kind hands the site what differs (its listing, its probes partial, its report sections):
    no template and no module outside kinds/ reads the report's `kind` back."""
    import re

    from attnreport.core.resources import bundled

    asks = re.compile(
        r"""\breport\.kind\b|report\[["']kind["']\]|report\.get\(["']kind["']"""
        r"""|== ["']generation["']|["']generation["'] in"""
    )
    files = [p for p in sorted(PACKAGE.rglob("*.py")) if p.relative_to(PACKAGE).parts[0] != "kinds"]
    files += sorted(bundled("templates").glob("*.j2"))
    wrong = [
        f"{path.name}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if asks.search(line)
    ]
    assert not wrong, "\n".join(wrong)
