"""`attnreport.explain`: the build of ``attnreport build``, called from Python, its site kept.

::

    import attnreport

    report = attnreport.explain("my-export", ["lock my account now", "where is my parcel"],
                                analysis={"attributions": ["occlusion"]}, site={"scenes": False})
    report                                  # in Jupyter: the site, inline (index, then any page)
    report.examples[0].attributions["occlusion"].values
    report.save("site")                     # the static site, as `attnreport build` writes it
    report.to_json()                        # report.json

The options are report.toml's tables and top-level keys, as keywords (``analysis={...}``,
``title="..."``), read by the same `config_from_dict`, checked by the same checks and built by the
same `pipeline.build`: the texts (or prompts) become ``[data] texts`` (``prompts``), or, as rows
with labels or ids, a data file in a temporary folder beside the built site. A user's mistake is
the CLI's one-line message, raised as an `AttnReportError` without our frames below it.

The typed views (`Example`, `Attribution`, `Generation`, `Step`) are read-only windows on
report.json's entries: what the site's pages show, by name; ``.raw`` is the entry itself.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from attnreport.core.config import ReportConfig, config_from_dict
from attnreport.core.errors import AttnReportError, BuildError, ConfigError
from attnreport.core.files import folder_lock, replace_folder
from attnreport.core.modelcard import ModelCard, is_exported
from attnreport.pipeline import build
from attnreport.site.build import check_site_target

#: report.toml's tables whose options a keyword may name at the top level by mistake
_SECTIONS = ("model", "data", "site", "analysis", "compare", "generate", "run")
#: set from explain()'s arguments, never from an option
_GIVEN = {"model": ("path",), "data": ("path", "texts", "prompts")}


def _frozen(array) -> np.ndarray:
    out = np.asarray(array, dtype=np.float64)
    out.flags.writeable = False
    return out


def _readonly(value):
    """report.json's value as nested read-only mappings and tuples."""
    if isinstance(value, dict):
        return MappingProxyType({k: _readonly(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_readonly(v) for v in value)
    return value


@dataclass(frozen=True)
class Attribution:
    """One method's attribution (report.json ``attributions[method]``): `values[i]` is how much
    unit `units[i]` moved `output` (a classifier's: the target class's probability or logit); a
    generation report's is one row per answer token, one column per prompt unit."""

    method: str
    #: what is scored: "token", "word", "sentence" or "line"
    unit: str
    #: the scored units' text (a classification report's token units: the example's tokens)
    units: tuple[str, ...]
    #: [units], or [answer tokens, units] for a generation report
    values: np.ndarray
    #: what the values are a share of, e.g. "probability", "log_probability"
    output: str
    #: the class explained (classification), None for a generation report
    target: str | None
    #: exact Shapley values or occlusion (True), an estimate (False), unsaid (None)
    exact: bool | None
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def of(cls, method: str, entry: Mapping, tokens: Sequence[str]) -> Attribution:
        values = _frozen(entry.get("values", ()))
        units = entry.get("units")
        if units is not None:
            names = tuple(str(u.get("text", "")) for u in units)
        else:
            names = tuple(tokens) if len(tokens) == values.shape[-1] else ()
        return cls(
            method=method,
            unit=str(entry.get("unit", "")),
            units=names,
            values=values,
            output=str(entry.get("output", "")),
            target=entry.get("target"),
            exact=entry.get("exact"),
            raw=_readonly(entry),
        )


def _attributions(entries: Mapping | None, tokens: Sequence[str]) -> Mapping[str, Attribution]:
    return MappingProxyType({m: Attribution.of(m, e, tokens) for m, e in (entries or {}).items()})


@dataclass(frozen=True)
class Step:
    """One answer token of a generation report (``generation.steps[i]``)."""

    index: int
    token: str
    #: the token's probability when it was chosen, and its rank among the alternatives
    probability: float
    rank: int
    entropy: float
    #: the top alternatives: (token, probability), most probable first
    top: tuple[tuple[str, float], ...]
    #: the prompt and answer tokens this step looked at most: (position, token, weight)
    looked_at: tuple[tuple[int, str, float], ...]
    raw: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Generation:
    """A generation report's answer (``examples[i].generation``)."""

    prompt: str
    #: the answer, and its tokens
    text: str
    tokens: tuple[str, ...]
    prompt_tokens: tuple[str, ...]
    steps: tuple[Step, ...]
    #: "max_new_tokens", "eos", "stop", ...
    stop_reason: str
    #: a given answer explained (forced decoding) rather than the model's own
    forced: bool
    log_probability: float
    attributions: Mapping[str, Attribution]
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def of(cls, entry: Mapping) -> Generation:
        tokens = tuple(entry.get("tokens", ()))
        steps = tuple(
            Step(
                index=i,
                token=tokens[i] if i < len(tokens) else "",
                probability=float(s.get("probability", float("nan"))),
                rank=int(s.get("rank", -1)),
                entropy=float(s.get("entropy", float("nan"))),
                top=tuple((str(t.get("token", "")), float(t["probability"])) for t in s.get("top", ())),
                looked_at=tuple(
                    (int(t["position"]), str(t.get("token", "")), float(t["weight"]))
                    for t in s.get("looked_at", ())
                ),
                raw=_readonly(s),
            )
            for i, s in enumerate(entry.get("steps", ()))
        )
        return cls(
            prompt=str(entry.get("input_text", "")),
            text=str(entry.get("text", "")),
            tokens=tokens,
            prompt_tokens=tuple(entry.get("prompt_tokens", ())),
            steps=steps,
            stop_reason=str(entry.get("stop_reason", "")),
            forced=bool(entry.get("forced", False)),
            log_probability=float(entry.get("log_probability", float("nan"))),
            attributions=_attributions(entry.get("attributions"), ()),
            raw=_readonly(entry),
        )


@dataclass(frozen=True)
class Example:
    """One text (or prompt) of the report (``examples[i]``), as its page shows it."""

    id: str
    text: str
    label: str | None
    #: the example's page, relative to the site
    page: str
    #: its tokens (a generation report's: the prompt's)
    tokens: tuple[str, ...]
    #: classification: the predicted class, its probability and every class's; None otherwise
    prediction: str | None
    confidence: float | None
    probabilities: Mapping[str, float]
    #: by method: a classifier's attributions of the predicted class, or the answer's (as
    #: `generation.attributions`)
    attributions: Mapping[str, Attribution]
    #: the answer of a generation report, None for a classification report
    generation: Generation | None
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def of(cls, entry: Mapping) -> Example:
        generation = Generation.of(entry["generation"]) if entry.get("generation") else None
        tokens = tuple(entry.get("tokens", ())) or (generation.prompt_tokens if generation else ())
        return cls(
            id=str(entry.get("id", "")),
            text=str(entry.get("text", "")),
            label=entry.get("label"),
            page=str(entry.get("page", "")),
            tokens=tokens,
            prediction=entry.get("prediction"),
            confidence=entry.get("confidence"),
            probabilities=MappingProxyType(dict(entry.get("probabilities") or {})),
            attributions=generation.attributions
            if generation
            else _attributions(entry.get("attributions"), tokens),
            generation=generation,
            raw=_readonly(entry),
        )


class Report:
    """A built report: the site in a temporary folder (removed with this object), shown inline by
    Jupyter, saved with `save`; its results typed in `examples`, whole in `to_json`."""

    def __init__(self, site: Path, config: ReportConfig, *, scratch: Path) -> None:
        self._site = Path(site)
        self.config = config
        self._scratch = Path(scratch)
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(scratch), True)

    @property
    def site(self) -> Path:
        """The built site's folder (temporary: `save` it to keep it)."""
        return self._site

    def to_json(self) -> str:
        """report.json, as the site ships it."""
        return (self._site / "report.json").read_text(encoding="utf-8")

    @cached_property
    def data(self) -> Mapping[str, Any]:
        """report.json parsed, read-only."""
        return _readonly(json.loads(self.to_json()))

    @property
    def kind(self) -> str:
        """ "classification" or "generation"."""
        return str(self.data.get("kind", ""))

    @property
    def title(self) -> str:
        return str(self.data.get("title", ""))

    @cached_property
    def examples(self) -> tuple[Example, ...]:
        return tuple(Example.of(e) for e in json.loads(self.to_json())["examples"])

    def save(self, folder: str | Path) -> Path:
        """Write the static site into `folder`, as `attnreport build` would (replacing a site there,
        never a folder of yours); returns it."""
        target = check_site_target(Path(folder).expanduser(), inputs=[self._scratch])
        busy = BuildError(f"{target}: another attnreport build is writing this site; wait for it to finish")
        try:
            with folder_lock(target, busy=busy), replace_folder(target) as fresh:
                shutil.copytree(self._site, fresh, dirs_exist_ok=True)
        except AttnReportError as exc:
            raise exc.with_traceback(None) from None
        return target

    def _repr_html_(self) -> str:
        from attnreport.notebook.sitepack import frame

        return frame(self._site, title=self.title or "attnreport report")

    def __repr__(self) -> str:
        n = len(self.examples)
        return (
            f"<attnreport.Report {self.title!r}: {self.kind}, {n} example{'s' if n != 1 else ''}; "
            f".save(folder) writes the site>"
        )


def _wants_prompts(model: Path, options: Mapping) -> bool:
    """Whether the texts are prompts: a `generate` table given, or a causal LM with its generation
    graphs (an export's card), a GGUF file, or a Hugging Face folder of a causal LM."""
    if "generate" in options:
        return True
    if is_exported(model):
        card = ModelCard.load(model)
        return card.task == "causal-lm" and card.generation is not None
    if model.is_file() and model.suffix.lower() == ".gguf":
        return True
    try:
        config = json.loads((model / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    names = config.get("architectures") or [] if isinstance(config, dict) else []
    return any(str(a).endswith(("ForCausalLM", "LMHeadModel")) for a in names)


def _check_keywords(options: Mapping) -> None:
    """A keyword that is an option of a table, not a top-level key, is said with the table to
    pass it in; any other unknown keyword is left to `config_from_dict`'s own message."""
    known = {f.name for f in fields(ReportConfig)} - {"source"}
    classes = {f.name: f.type for f in fields(ReportConfig)}
    for name in sorted(set(options) - known):
        tables = [
            s
            for s in _SECTIONS
            if name in {f.name for f in fields(_section_class(classes[s]))} and name not in _GIVEN.get(s, ())
        ]
        if tables:
            where = " and ".join(f"[{t}]" for t in tables)
            raise ConfigError(
                f"config: unknown option {name!r}; {name} is an option of {where}: pass "
                f"{tables[0]}={{{name!r}: ...}} (known options: {', '.join(sorted(known))})"
            )


def _section_class(annotation) -> type:
    from attnreport.core import config as schema

    return getattr(schema, annotation) if isinstance(annotation, str) else annotation


def _rows(texts_or_prompts) -> list:
    items = [texts_or_prompts] if isinstance(texts_or_prompts, str) else texts_or_prompts
    try:
        items = list(items)
    except TypeError:
        items = None
    same = items and (all(isinstance(x, str) for x in items) or all(isinstance(x, dict) for x in items))
    if not same:
        raise ConfigError(
            "explain() takes the texts (or prompts) as a list of strings, or of rows like a data "
            'file\'s, e.g. {"text": "...", "label": "..."}; got '
            f"{type(texts_or_prompts).__name__}{' (empty)' if items == [] else ''}"
        )
    return items


def explain_config(model, texts_or_prompts, options: Mapping, scratch: Path) -> ReportConfig:
    """The `ReportConfig` that `attnreport build` would read from the equivalent report.toml: the
    options as its tables, the model as ``[model] path``, the texts as ``[data] texts`` (or
    ``prompts``), or, as rows, a data file written into `scratch`."""
    _check_keywords(options)
    table = dict(options)
    for section, given in _GIVEN.items():
        part = table.get(section, {})
        if not isinstance(part, dict):
            raise ConfigError(f"config: [{section}] must be a table (a dict of its options)")
        taken = [k for k in given if k in part]
        if taken:
            raise ConfigError(
                f"config: [{section}] {taken[0]} is explain()'s argument; "
                f"give the model and the texts as explain(model, texts)"
            )
    rows = _rows(texts_or_prompts)
    model_path = Path(model).expanduser().absolute()
    prompts = _wants_prompts(model_path, options)
    table["model"] = {**table.get("model", {}), "path": str(model_path)}
    data = dict(table.get("data", {}))
    if isinstance(rows[0], str):
        data["prompts" if prompts else "texts"] = rows
    else:
        path = scratch / "data.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        data["path"] = str(path)
        if prompts:
            table.setdefault("generate", {})
    table["data"] = data
    return config_from_dict(table, base=Path.cwd())


def explain(model: str | Path, texts_or_prompts, /, *, progress: bool = True, **options) -> Report:
    """Build the report of `model` (an exported folder, a Hugging Face folder or a GGUF file) on
    `texts_or_prompts` with report.toml's `options`, as `attnreport build` builds it.

    The texts are prompts when the model is a causal LM (or a `generate` table is given); rows
    (dicts like a data file's: ``text`` or ``prompt``, ``label``, ``id``, ...) are written to a
    data file. Relative paths in the options (``cache_dir``, ``site={"templates": ...}``) are read
    from the working directory, as report.toml's are from its folder. `progress` shows each stage's
    bar (the notebook's, in Jupyter).
    """
    scratch = Path(tempfile.mkdtemp(prefix="attnreport-explain-"))
    try:
        config = explain_config(model, texts_or_prompts, options, scratch)
        result = build(config, scratch / "site", progress=progress)
    except AttnReportError as exc:
        shutil.rmtree(scratch, ignore_errors=True)
        raise exc.with_traceback(None) from None
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return Report(result.site, config, scratch=scratch)
