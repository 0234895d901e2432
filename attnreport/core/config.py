"""`report.toml`, parsed into typed dataclasses with a default for every option.

Over 400 lines because it is the one schema: every option's type, default, docs and check live here.

Unknown keys are errors that list the known ones: a misspelt option silently ignored
is the worst kind of configuration bug. Relative paths are resolved against the
folder of the config file.
"""

from __future__ import annotations

import tomllib
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from attnreport.core.errors import ConfigError
from attnreport.core.schema import value_problem
from attnreport.core.themes import available_themes

BAD_ROW_POLICIES = ("skip", "fail")
#: what a build does when no labelled row has one of the model's labels (`[data] unknown_labels`)
UNKNOWN_LABEL_POLICIES = ("fail", "go_on")
#: where tracing and the per-example analysis run (`attnreport.run.EXECUTORS`)
EXECUTOR_NAMES = ("process", "dask")


def shipped_themes() -> list[str]:
    """The themes `[site] theme` may name: those in the package's themes/ folder, read by
    `core.themes` like the site and the scenes read them."""
    return available_themes()


@dataclass
class ModelConfig:
    #: an exported folder, or a Hugging Face folder (exported into the cache on the fly)
    path: Path | None = None
    #: use the int8 export (made with `attnreport export --quantize int8`) instead of fp32
    quantized: bool = False
    batch_size: int = 16
    #: windows for texts longer than the model: tokens per window (default: the model's limit)
    window: int | None = None
    #: tokens shared by consecutive windows
    stride: int = 64
    #: a Hugging Face folder is exported with queries and keys (`attnreport export --with-qk`)
    with_qk: bool = False
    #: a --with-qk export keeps the queries and keys of texts up to this many tokens (in one
    #: window) for the example pages' neuron view; longer texts' pages say it was skipped
    neuron_view_max_tokens: int = 64


@dataclass
class DataConfig:
    path: Path | None = None
    texts: list[str] = field(default_factory=list)
    #: inline prompts for a causal LM (a generation report), like `texts`
    prompts: list[str] = field(default_factory=list)
    text_column: str = "text"
    #: for a generation report: the prompt, and an optional given answer to explain (forced decoding)
    prompt_column: str = "prompt"
    completion_column: str = "completion"
    #: a generation report's row may hold a chat instead of a prompt (JSONL): a list of
    #: {"role": "system" | "user" | "assistant", "content": "..."} ending with the user's message;
    #: the report explains the next assistant turn
    messages_column: str = "messages"
    label_column: str = "label"
    id_column: str = "id"
    #: the column holding each row's data group (e.g. "domain"): metrics, confidence, attribution
    #: and token-group statistics per group, the decision space coloured by it, the index filtered
    #: by it; "" for none
    group_column: str = ""
    #: what a bad row (empty, undecodable, too long) does: "skip" it with a warning, or "fail"
    on_bad_row: str = "skip"
    #: a row with more characters than this is a bad row
    max_chars: int = 100_000
    #: read at most this many rows (0: all)
    limit: int = 0
    #: when labels are given and none is one of the model's (another case, other names): "fail"
    #: with the labels it has, or "go_on" without accuracy
    unknown_labels: str = "fail"


#: what a classifier's attributions explain (`[analysis] output`): the target class's probability
#: or its logit; the trace stage's masked model computes both
OUTPUTS = ("probability", "logit")


@dataclass
class AnalysisConfig:
    #: token attributions to compute, by name (`analysis.attribution_methods.METHODS`; the names are
    #: checked by `analysis.options.check_options` when a build starts)
    attributions: list[str] = field(default_factory=lambda: ["shapley", "occlusion"])
    #: what attributions explain: the target class's "probability", or its "logit"
    output: str = "probability"
    #: Shapley values are exact (all 2^p coalitions, 2^p model runs) up to this many tokens,
    #: estimated beyond
    max_exact: int = 8
    #: the estimator beyond max_exact, by name (`analysis.shapley.ESTIMATORS`: "auto", "kernel",
    #: "permutation", "surrogate", "lasso"; "kernel" and "permutation" give standard errors)
    shapley_method: str = "auto"
    #: model runs per token for "auto" and "kernel"; standard errors shrink roughly as one over
    #: its square root
    evaluations_per_token: int = 8
    #: permutations for "permutation" (antithetic pairs), about p model runs each
    permutations: int = 24
    #: model runs of "lasso" (ContextCite's sparse surrogate), whatever the number of units
    lasso_runs: int = 256
    #: held-out random ablations that score every estimated attribution of an answer (the linear
    #: datamodeling score, beside comprehensiveness and sufficiency; 0: none); one model run each
    lds_ablations: int = 64
    #: attributions score single tokens up to this many content tokens; longer examples are
    #: scored by words or sentences ("auto"), or skipped when the unit is "token"
    max_attribution_tokens: int = 64
    #: what an attribution scores: "token", "word", "sentence", "line", or "auto" (tokens up to
    #: max_attribution_tokens, words up to 64 words, sentences beyond; `analysis.units`)
    attribution_unit: str = "auto"
    #: compute attention flow (Abnar & Zuidema) for examples short enough
    flow: bool = True
    #: comprehensiveness / sufficiency of every ranking, against random rankings
    faithfulness: bool = True
    #: head-pattern thresholds, by HeadThresholds field name
    head_thresholds: dict = field(default_factory=dict)
    #: decision space: which hidden layer (-1: the last) and pooling ("first", "last", "mean";
    #: default: what the model's head reads, so the head itself draws the boundaries)
    decision_layer: int = -1
    decision_pooling: str | None = None

    #: extra decision spaces at these hidden layers (0: the embeddings; "all": every layer), shown
    #: on the index with a layer switch; where the head does not read a layer, a logistic-regression
    #: probe fitted to the model's predictions draws the boundaries
    decision_layers: list[int] | str = field(default_factory=list)
    #: labels whose misses matter most (e.g. ["urgent"]): the index lists the examples of these
    #: labels predicted as something else, most confidently missed first, and report.json
    #: `metrics.critical` gives each one's recall
    critical_labels: list[str] = field(default_factory=list)
    #: token groups of your own beside the built-in ones (numbers, punctuation, special), by name: a
    #: word list, or "regex:<pattern>" (`[analysis.token_groups]`; `analysis.token_groups`)
    token_groups: dict = field(default_factory=dict)
    #: the classes each example's attributions explain: the top 2 by probability (a whole number),
    #: "all", or a list of labels; the top two are also contrasted (p(A) - p(B): "why not B?").
    #: They share the predicted class's model runs (each run gives every class's output)
    explain_classes: int | str | list[str] = 2
    #: effects below this fraction of the output's range (a probability's: 1) are too small to
    #: matter: drawn neutral and never named in an example's verdict
    negligible: float = 0.01

    def __post_init__(self) -> None:
        per_token = self.evaluations_per_token
        if not isinstance(per_token, int) or isinstance(per_token, bool) or per_token < 1:
            raise ConfigError(f"[analysis] evaluations_per_token = {per_token!r}; give a whole number >= 1")
        for name, least in (("lasso_runs", 1), ("lds_ablations", 0)):
            runs = getattr(self, name)
            if not isinstance(runs, int) or isinstance(runs, bool) or runs < least:
                raise ConfigError(f"[analysis] {name} = {runs!r}; give a whole number >= {least}")
        critical = self.critical_labels
        if not isinstance(critical, list) or not all(isinstance(x, str) and x for x in critical):
            raise ConfigError(
                f'[analysis] critical_labels = {critical!r}; give a list of labels, e.g. ["urgent"]'
            )
        if (
            isinstance(self.negligible, bool)
            or not isinstance(self.negligible, int | float)
            or not (0 <= self.negligible < 1)
        ):
            raise ConfigError(f"[analysis] negligible = {self.negligible!r}; give a fraction from 0 to 1")
        classes = self.explain_classes
        whole = isinstance(classes, int) and not isinstance(classes, bool) and classes >= 1
        named = isinstance(classes, list) and classes and all(isinstance(x, str) and x for x in classes)
        if not (whole or named or classes == "all"):
            raise ConfigError(
                f"[analysis] explain_classes = {classes!r}; give a whole number >= 1 (the top classes), "
                f'"all", or a list of labels'
            )


@dataclass
class GenerateConfig:
    """`[generate]`: a causal LM writes an answer to each prompt, and the report explains every
    token of it. Present (or `[data] prompts` given) means a generation report."""

    #: a generation report; set by the presence of the table or of prompts, or explicitly
    enabled: bool = False
    max_new_tokens: int = 32
    #: strings that end an answer (the answer keeps the text before them)
    stop: list[str] = field(default_factory=list)
    #: wrap each prompt in the checkpoint's own chat template (instruct models)
    chat_template: bool = False
    #: alternatives kept per step, and per layer in the logit lens
    top_k: int = 5
    #: the prompt's own n x n attention is kept up to this many tokens (beyond: the answer's rows only)
    prompt_attention_limit: int = 512
    #: what made each answer token: attributions over the prompt's units, by name
    #: (`analysis.attribution_methods.METHODS`; [] for none), teacher-forced: one model run
    #: per coalition scores every answer token
    attributions: list[str] = field(default_factory=lambda: ["shapley", "occlusion"])
    #: the prompt's units: "word", "token", "sentence", "line" or "auto" (`analysis.units`)
    attribution_unit: str = "word"
    #: what an answer token's attribution is a share of: its "log_probability" or "probability"
    attribution_output: str = "log_probability"
    #: two more units beside the prompt's: the chat template's tokens, and the answer written so far
    segment_units: bool = True


@dataclass
class CompareConfig:
    """A second run of the same texts, shown on the compare page."""

    #: another exported or Hugging Face folder (default: the same model)
    path: Path | None = None
    #: run the int8 export (of `path`, or of the main model)
    quantized: bool = False
    #: how the compare page names the second run
    name: str = ""

    @property
    def enabled(self) -> bool:
        return self.path is not None or self.quantized


@dataclass
class SiteConfig:
    theme: str = "light"
    #: a folder of templates that take precedence over the theme's
    templates: Path | None = None
    base_url: str = ""
    #: 3D scenes (decision space on the index, attention flow on every example page)
    scenes: bool = True
    #: a .glb download of every example's flow scene too (the index's is always there)
    example_glb: bool = False
    #: attributions are coloured on this fixed scale, in the output's units: an effect of this
    #: size or more gets the full colour (default: half the output's range, 0.5 for a probability),
    #: so a model whose effects are all tiny is drawn pale, not saturated
    attribution_scale: float | None = None


@dataclass
class VariantConfig:
    """`[[variants]]`: a prompt of the generation report asked again in other words (prompt
    engineering: a key instruction moved, a word added); the variants page sets both answers side
    by side."""

    #: the id of the prompt this varies (a data row's `id`; inline prompts are "0", "1", ...)
    of: str = ""
    #: the variant's text
    prompt: str = ""
    #: what changed, in a few words (shown as the pair's title)
    name: str = ""
    #: the variant's own id (default: "<of>~variant-<k>", k counting from 1)
    id: str = ""


@dataclass
class ProbeConfig:
    """`[[probes]]`: terms swapped in every text that holds them, the model run on both texts, and
    the change in its prediction reported (`analysis.probes`)."""

    #: the probe's name on its page and in report.json (default: its terms)
    name: str = ""
    #: pairs swapped both ways in one pass, e.g. [["he", "she"], ["Mr", "Ms"]]
    swap: list = field(default_factory=list)
    #: terms replaced one way, e.g. {urgent = "soon"}
    replace: dict = field(default_factory=dict)
    #: the texts of the largest change that get a page with both texts side by side
    top: int = 5

    def problem(self) -> str | None:
        """What is wrong with this probe, in words a user can act on; None when nothing is. Names
        it by its terms when it has no name."""
        example = 'e.g. swap = [["he", "she"]] or replace = {urgent = "soon"}'
        if not isinstance(self.swap, list) or not isinstance(self.replace, dict):
            return f"swap is a list of pairs and replace a table, {example}"
        if not self.swap and not self.replace:
            return f"it swaps nothing; give the terms, {example}"
        for pair in self.swap:
            if not (isinstance(pair, list) and len(pair) == 2 and all(_term(t) for t in pair)):
                return f'swap pair {pair!r} is not two words; write each pair as ["he", "she"]'
        for term, by in self.replace.items():
            if not _term(term) or not isinstance(by, str):
                return f"replace {term!r} = {by!r}; give a word and the text it becomes"
        seen: set[str] = set()
        for term in [t for pair in self.swap for t in pair] + list(self.replace):
            key = " ".join(term.split()).casefold()
            if key in seen:
                return f"{term!r} is named twice (case aside); a term can be swapped one way only"
            seen.add(key)
        if not isinstance(self.top, int) or isinstance(self.top, bool) or self.top < 0:
            return f"top = {self.top!r}; give a whole number >= 0"
        if not isinstance(self.name, str):
            return f"name = {self.name!r}; give a string"
        if not self.name:
            self.name = ", ".join(
                [f"{a} ↔ {b}" for a, b in self.swap] + [f"{a} → {b}" for a, b in self.replace.items()]
            )
        return None


def _term(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


@dataclass
class RunConfig:
    """`[run]`: where tracing and the per-example analysis run. The site is always assembled in
    this process; with Dask the workers fill the cache and the driver reads it in row order."""

    #: "process" (this process, the default) or "dask" (`pip install 'attnreport[dask]'`)
    executor: str = "process"
    #: a Dask scheduler's address, e.g. "tcp://host:8786"; empty: a LocalCluster on this machine.
    #: The cache folder and the model folder must be visible to every worker at the same path
    scheduler: str = ""
    #: the LocalCluster's worker processes (0: one per core)
    workers: int = 0
    #: threads of each LocalCluster worker; onnxruntime on a worker uses as many
    threads_per_worker: int = 1
    #: rows per task: each task traces and analyses one chunk and writes it to the cache
    chunk_size: int = 32
    #: seconds to wait for the scheduler before giving up
    connect_timeout: float = 10.0


@dataclass
class ReportConfig:
    title: str = "attnreport"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    site: SiteConfig = field(default_factory=SiteConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    run: RunConfig = field(default_factory=RunConfig)
    #: prompts asked again in other words (generation reports)
    variants: list[VariantConfig] = field(default_factory=list)
    #: counterfactual probes: terms swapped in the texts, the predictions compared
    probes: list[ProbeConfig] = field(default_factory=list)
    #: traces and on-the-fly exports are kept here (default: ~/.cache/attnreport)
    cache_dir: Path | None = None
    source: Path | None = None

    def validate(self) -> None:
        where = self.source or "config"
        if self.model.path is None:
            raise ConfigError(f"{where}: [model] path is missing; name an exported or HF folder")
        given = [name for name in ("path", "texts", "prompts") if getattr(self.data, name)]
        if not given:
            raise ConfigError(
                f"{where}: [data] needs `path` (CSV or JSONL), `texts` or `prompts` (a list of strings)"
            )
        if len(given) > 1:
            raise ConfigError(f"{where}: [data] has {' and '.join(given)}; keep one")
        if self.data.prompts:
            self.generate.enabled = True
        if self.data.texts and self.generate.enabled:
            raise ConfigError(
                f"{where}: [data] texts are for classifiers; a generation report reads `prompts`"
            )
        g = self.generate
        for name in ("max_new_tokens", "top_k", "prompt_attention_limit"):
            value = getattr(g, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{where}: [generate] {name} = {value!r}; give a whole number >= 1")
        if not isinstance(g.stop, list) or not all(isinstance(x, str) and x for x in g.stop):
            raise ConfigError(
                f'{where}: [generate] stop must be a list of non-empty strings, e.g. ["\\n\\n"]'
            )
        if self.data.unknown_labels not in UNKNOWN_LABEL_POLICIES:
            raise ConfigError(
                f"{where}: [data] unknown_labels = {self.data.unknown_labels!r}; "
                f"choose one of {', '.join(UNKNOWN_LABEL_POLICIES)}"
            )
        if self.data.on_bad_row not in BAD_ROW_POLICIES:
            raise ConfigError(
                f"{where}: [data] on_bad_row = {self.data.on_bad_row!r}; "
                f"choose one of {', '.join(BAD_ROW_POLICIES)}"
            )
        themes = shipped_themes()
        if self.site.theme not in themes:
            raise ConfigError(
                f"{where}: [site] theme = {self.site.theme!r}; known themes: {', '.join(themes)}"
            )
        scale = self.site.attribution_scale
        if scale is not None and (
            isinstance(scale, bool) or not isinstance(scale, int | float) or scale <= 0
        ):
            raise ConfigError(f"{where}: [site] attribution_scale = {scale!r}; give a number > 0, e.g. 0.5")
        if self.model.batch_size < 1:
            raise ConfigError(f"{where}: [model] batch_size must be at least 1")
        if self.analysis.decision_pooling not in (None, "first", "last", "mean"):
            raise ConfigError(
                f"{where}: [analysis] decision_pooling = {self.analysis.decision_pooling!r}; "
                f"choose first, last or mean"
            )
        layer = self.analysis.decision_layer
        if not isinstance(layer, int) or isinstance(layer, bool):
            raise ConfigError(
                f"{where}: [analysis] decision_layer = {layer!r} must be one layer "
                f"number; for spaces at several layers, use decision_layers"
            )
        layers = self.analysis.decision_layers
        if layers != "all" and not (
            isinstance(layers, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in layers)
        ):
            raise ConfigError(
                f"{where}: [analysis] decision_layers = {layers!r}; give a list of layer numbers "
                f'(0: the embeddings), e.g. [2, 4], or "all"'
            )
        if self.analysis.permutations < 2 or self.analysis.max_exact > 20:
            raise ConfigError(f"{where}: [analysis] needs permutations >= 2 and max_exact <= 20")
        max_qk = self.model.neuron_view_max_tokens
        if not isinstance(max_qk, int) or isinstance(max_qk, bool) or max_qk < 0:
            raise ConfigError(
                f"{where}: [model] neuron_view_max_tokens = {max_qk!r} must be a whole number of "
                f"tokens (0: no neuron view)"
            )
        if self.model.window is not None and self.model.window <= self.model.stride + 2:
            raise ConfigError(f"{where}: [model] window must be larger than stride + 2")
        self._validate_run(where)
        self._validate_variants(where)
        self._validate_probes(where)

    def _validate_probes(self, where) -> None:
        names = set()
        for k, p in enumerate(self.probes, start=1):
            named = f" ({p.name!r})" if isinstance(p.name, str) and p.name else ""
            problem = p.problem()
            if problem:
                raise ConfigError(f"{where}: [[probes]] {k}{named}: {problem}")
            if p.name in names:
                raise ConfigError(
                    f"{where}: [[probes]] {k}: the name {p.name!r} is used twice; name each probe"
                )
            names.add(p.name)

    def _validate_variants(self, where) -> None:
        if self.variants and not self.generate.enabled:
            raise ConfigError(f"{where}: [[variants]] are prompts asked again; they need a generation report")
        ids = set()
        for k, v in enumerate(self.variants, start=1):
            if not isinstance(v.of, str) or not v.of:
                raise ConfigError(
                    f'{where}: [[variants]] {k}: `of` names the prompt it varies, e.g. of = "0"'
                )
            if not isinstance(v.prompt, str) or not v.prompt.strip():
                raise ConfigError(
                    f"{where}: [[variants]] {k}: `prompt` (the variant's text) is missing or empty"
                )
            if not v.id:
                v.id = f"{v.of}~variant-{k}"
            if v.id in ids:
                raise ConfigError(f"{where}: [[variants]] {k}: id {v.id!r} is used twice")
            ids.add(v.id)

    def _validate_run(self, where) -> None:
        run = self.run
        if run.executor not in EXECUTOR_NAMES:
            raise ConfigError(
                f"{where}: [run] executor = {run.executor!r}; choose one of {', '.join(EXECUTOR_NAMES)}"
            )
        for name in ("workers", "threads_per_worker", "chunk_size"):
            value = getattr(run, name)
            least = 0 if name == "workers" else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ConfigError(f"{where}: [run] {name} = {value!r}; give a whole number >= {least}")
        if not isinstance(run.scheduler, str):
            raise ConfigError(f'{where}: [run] scheduler must be an address string, e.g. "tcp://host:8786"')


_PATH_FIELDS = {"path", "templates", "cache_dir"}


def _fill(
    cls: type, table: dict[str, Any], section: str, base: Path, where: str, type_problems: list[str]
) -> Any:
    """`cls` from a TOML table; values of the wrong type are added to `type_problems` (said after
    the options' own checks, whose messages are more specific, have run)."""
    known = {f.name for f in fields(cls)} - {"source"}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown option {section}{unknown[0]!r}; known options: {', '.join(sorted(known))}"
        )
    values = {}
    for key, value in table.items():
        if key in _PATH_FIELDS and value is not None:
            if not isinstance(value, str):
                raise ConfigError(f"{where}: {section}{key} must be a path string")
            value = (base / Path(value).expanduser()).resolve()
        elif problem := value_problem(value, hints[key], f"{section}{key}"):
            type_problems.append(f"{where}: {problem} (given {value!r:.60}); write a value of that type")
        values[key] = value
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        if type_problems:
            raise ConfigError(type_problems[-1]) from exc
        raise ConfigError(f"{where}: {section}: {exc}") from exc


def config_from_dict(data: dict[str, Any], *, base: Path, source: Path | None = None) -> ReportConfig:
    """Build a validated `ReportConfig` from a parsed TOML table."""
    where = str(source) if source else "config"
    data = dict(data)
    given_tables = set(data)
    sections = {
        "model": ModelConfig,
        "data": DataConfig,
        "site": SiteConfig,
        "analysis": AnalysisConfig,
        "compare": CompareConfig,
        "generate": GenerateConfig,
        "run": RunConfig,
    }
    parts = {}
    #: values of the wrong type (``batch_size = "16"``, ``scenes = "false"``): one line each
    problems: list[str] = []
    for name, cls in sections.items():
        table = data.pop(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{name}] must be a table")
        if name == "generate" and name in given_tables:  # the table's presence asks for it
            table = {"enabled": True, **table}
        parts[name] = _fill(cls, table, f"[{name}] ", base, where, problems)
    variants = data.pop("variants", [])
    if not isinstance(variants, list) or not all(isinstance(v, dict) for v in variants):
        raise ConfigError(f'{where}: variants must be tables: [[variants]] of = "..." prompt = "..."')
    parts["variants"] = [_fill(VariantConfig, v, "[[variants]] ", base, where, problems) for v in variants]
    probes = data.pop("probes", [])
    if not isinstance(probes, list) or not all(isinstance(p, dict) for p in probes):
        raise ConfigError(f'{where}: probes must be tables: [[probes]] swap = [["he", "she"]]')
    parts["probes"] = [_fill(ProbeConfig, p, "[[probes]] ", base, where, problems) for p in probes]
    top = _fill(ReportConfig, data, "", base, where, problems)
    config = ReportConfig(title=top.title, cache_dir=top.cache_dir, source=source, **parts)
    try:
        config.validate()
    except (TypeError, ValueError, AttributeError) as exc:
        if problems:  # a check that met a value of the wrong type: say which value
            raise ConfigError(problems[0]) from exc
        raise
    if problems:
        raise ConfigError(problems[0])
    return config


def load_config(path: Path) -> ReportConfig:
    """Read `report.toml`; every problem becomes a one-line `ConfigError`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror}); check the path") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file") from exc
    return config_from_dict(data, base=path.resolve().parent, source=path)
