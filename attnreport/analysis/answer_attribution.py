"""Why the model wrote each token of its answer: attributions over the prompt's units.

One game per explained quantity, all played on the same coalitions: the log-probability of each
answer token, of the whole answer (their sum: which units made the answer likely, as ContextCite
asks), and each contrast "token A rather than its runner-up B" (log p(A) - log p(B)). The value
function (`trace.forced.ForcedAnswer`) returns every quantity of a coalition in one model run, and
`VectorMemo` keeps them, so the estimators, which draw their coalitions from the seed and not from
the values, ask the model once per coalition whatever the number of answer tokens.

The methods are the classifiers' own (`attribution_methods.METHODS`), run once per quantity on a
scalar view of the memo; the arithmetic is cheap next to the model runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from attnreport.analysis.attribution_methods import AttributionMethod, VectorMemo, asked_methods
from attnreport.analysis.faithfulness import faithfulness, random_faithfulness
from attnreport.analysis.lds import heldout_ablations, linear_datamodeling_score
from attnreport.analysis.units import Units
from attnreport.core.config import AnalysisConfig

#: the units beside the prompt's own, by name: what the report calls them (a chat's earlier turns
#: are segment units too, named by `analysis.generation.segment_name`)
SEGMENT_UNITS = {"template": "[the chat template]", "answer": "[the answer so far]"}

#: what the answer-token games are of (`[generate] attribution_output`)
ANSWER_OUTPUTS = ("log_probability", "probability")


def runner_up(top_ids: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Per step, the index into its top-k of the most likely token other than the chosen one."""
    top = np.asarray(top_ids).reshape(len(chosen), -1)
    out = np.empty(len(chosen), dtype=np.int64)
    for t, (row, c) in enumerate(zip(top, chosen, strict=True)):
        others = np.flatnonzero(row != c)
        out[t] = others[0] if len(others) else -1
    return out


def answer_columns(scores, output: str, foils: np.ndarray, requested_steps=()):
    """``[m, 2T + 1 + E]`` from `ForcedScores`: each answer token's value (its log-probability or
    probability), the whole answer's (the sum of log-probabilities, or the answer's probability),
    each step's contrast with its runner-up (log p(chosen) - log p(runner-up); 0 without one),
    then each asked-for contrast (log p(chosen at its step) - log p(its foil))."""
    chosen = scores.chosen
    steps = chosen.shape[1]
    total = chosen.sum(axis=1, keepdims=True)
    if output == "probability":
        tokens, answer = np.exp(chosen), np.exp(total)
    else:
        tokens, answer = chosen, total
    safe = np.where(foils >= 0, foils, 0)
    foil = np.take_along_axis(
        scores.alternatives, np.broadcast_to(safe, (len(chosen), steps))[..., None], axis=-1
    )
    contrast = np.where(foils >= 0, chosen - foil[..., 0], 0.0)
    asked = chosen[:, np.asarray(requested_steps, dtype=np.int64)] - scores.requested
    return np.concatenate([tokens, answer, contrast, asked], axis=1)


@dataclass
class UnitAttribution:
    """One method's attributions of every answer token over the prompt's units."""

    #: ``[T, p]``: per answer token, each unit's share of its value
    values: np.ndarray
    #: ``[p]``: of the whole answer's value
    answer: np.ndarray
    #: ``[T, p]``: of each step's contrast with its runner-up
    contrasts: np.ndarray
    #: ``[E, p]``: of each asked-for contrast (`AnswerExplanation.requested`)
    requested: np.ndarray
    #: standard errors of the same shapes (sampled Shapley values), else None
    std_error: np.ndarray | None = None
    answer_std_error: np.ndarray | None = None
    #: per answer token, f(all) - f(none) - sum of values (0 for exact and efficient estimators)
    efficiency_gap: list[float] = field(default_factory=list)
    exact: bool = True
    method: str = ""


@dataclass
class AnswerExplanation:
    """Everything attributed for one answer: by method, and how faithful each ranking is."""

    #: the prompt's units (None: the caller's own grouping, undeclared)
    units: Units | None
    output: str
    baseline: str
    #: index into each step's top-k of the contrast's foil (-1: no other token to contrast)
    foils: np.ndarray
    #: the asked-for contrasts, as (step, foil token id, foil token) in the order of `requested`
    requested: list[tuple[int, int, str]] = field(default_factory=list)
    attributions: dict[str, UnitAttribution] = field(default_factory=dict)
    #: view -> comprehensiveness / sufficiency of its ranking for the whole answer; "random" is the bar
    faithfulness: dict[str, dict] = field(default_factory=dict)
    #: view -> per answer token, the comprehensiveness and sufficiency of its ranking for that token
    token_faithfulness: dict[str, list[dict]] = field(default_factory=dict)
    #: view -> linear datamodeling score of its values (`analysis.lds`): ``{"answer": float | None,
    #: "tokens": [float | None per answer token]}``, None where undefined (constant values);
    #: every view scored on the same held-out ablations
    lds: dict[str, dict] = field(default_factory=dict)
    #: how many held-out ablations `lds` was measured on (their runs are in `evaluations`)
    lds_ablations: int = 0
    #: distinct coalitions the model ran (one run each, however many tokens are explained)
    evaluations: int = 0
    #: what was asked and not computed, and why
    skipped: list[str] = field(default_factory=list)
    #: the names of the units after `units`' own: a chat's earlier turns ("turn-<i>"), the template,
    #: the answer so far (`analysis.generation.segment_name`)
    segments: list[str] = field(default_factory=list)


def _split(values: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows of the 2T + 1 + E games as (answer tokens, whole answer, runner-up contrasts, asked-for
    contrasts)."""
    return values[:steps], values[steps], values[steps + 1 : 2 * steps + 1], values[2 * steps + 1 :]


def _attribute(
    name: str,
    method: AttributionMethod,
    memo: VectorMemo,
    players: int,
    steps: int,
    options: AnalysisConfig,
    seed: int,
) -> UnitAttribution:
    """One method's attributions of every game of the memo (each column; the identity link: a
    log-probability is additive already, and a token's probability is read as it is)."""
    results = [
        method(memo.column(j), players, options, link="identity", random_state=seed)
        for j in range(memo.columns)
    ]
    tokens, answer, contrasts, requested = _split(np.stack([r.values for r in results]), steps)
    errors = None
    if results[0].std_error is not None:
        errors = _split(np.stack([r.std_error for r in results]), steps)
    first = results[0].facts
    return UnitAttribution(
        values=tokens,
        answer=answer,
        contrasts=contrasts,
        requested=requested,
        std_error=None if errors is None else errors[0],
        answer_std_error=None if errors is None else errors[1],
        efficiency_gap=[
            float(r.facts["efficiency_gap"]) for r in results[:steps] if "efficiency_gap" in r.facts
        ],
        exact=results[0].exact,
        method=first.get("method", name),
    )


def explain_answer(
    model,
    *,
    units: Units | None = None,
    options: AnalysisConfig,
    output: str = "log_probability",
    methods: tuple[str, ...] = ("shapley", "occlusion"),
    views: dict[str, np.ndarray] | None = None,
    skipped: list[str] | tuple[str, ...] = (),
    segments: list[str] | tuple[str, ...] = (),
    random_state: int = 0,
) -> AnswerExplanation:
    """Attributions of every answer token by `methods`, over the units of `model` (a
    `ForcedAnswer`; `units` says what they are, for the report), and the faithfulness of each
    ranking (and of each attention view's rows in `views`, ``[T, n + T - 1]`` by ranking name,
    each unit ranked by its summed weight) for the whole answer and each of its tokens."""
    if output not in ANSWER_OUTPUTS:
        raise ValueError(f"answer attribution output {output!r} is unknown; choose one of {ANSWER_OUTPUTS}")
    steps, p = model.steps, model.players
    foils = runner_up(model.top, model.chosen)
    asked_steps = [t for t, _ in model.foils]
    memo = VectorMemo(
        lambda masks: answer_columns(model(masks), output, foils, asked_steps),
        columns=2 * steps + 1 + len(asked_steps),
    )
    result = AnswerExplanation(units=units, output=output, baseline=model.baseline, foils=foils)
    result.requested = [(t, i, model.token_of(i)) for t, i in model.foils]
    result.skipped = list(skipped)
    result.segments = list(segments)
    if p == 0:
        return result
    for name, method in asked_methods(methods):
        result.attributions[name] = _attribute(name, method, memo, p, steps, options, random_state)
    # each view's ranking of the units, per answer token ([T, p]) and for the whole answer ([p])
    per_token = {name: a.values for name, a in result.attributions.items()}
    rankings = {name: a.answer for name, a in result.attributions.items()}
    for name, rows in (views or {}).items():
        if rows is not None:
            per_unit = np.array([[row[u].sum() for u in model.units] for row in np.asarray(rows)])
            per_token[name] = per_unit
            rankings[name] = per_unit.mean(axis=0)
    if (
        options.faithfulness
        and options.lds_ablations
        and not all(a.exact for a in result.attributions.values())
    ):
        # before ERASER's coalitions join the memo: held out means unseen by the estimators
        result.lds, result.lds_ablations = answer_lds(
            memo, per_token, rankings, steps, p, options.lds_ablations, random_state
        )
    if options.faithfulness:
        answer = memo.column(steps)
        for name, scores in rankings.items():
            result.faithfulness[name] = faithfulness(answer, scores).to_dict()
        result.faithfulness["random"] = random_faithfulness(answer, p, random_state=random_state).to_dict()
        result.token_faithfulness = token_faithfulness(memo, per_token, steps, p, random_state)
    result.evaluations = memo.evaluations
    return result


def answer_lds(
    memo: VectorMemo,
    per_token: dict[str, np.ndarray],
    rankings: dict[str, np.ndarray],
    steps: int,
    players: int,
    count: int,
    random_state: int,
) -> tuple[dict[str, dict], int]:
    """Each view's linear datamodeling score for the whole answer and each token, on ``count``
    random half-ablations none of which the memo has run (the estimators' coalitions), the same
    ablations for every view; returns the scores by view and how many ablations there were."""
    packed = np.frombuffer(b"".join(memo.memo), dtype=np.uint8).reshape(len(memo.memo), (players + 7) // 8)
    seen = np.unpackbits(packed, axis=1, count=players).astype(bool)
    held = heldout_ablations(players, count, random_state=random_state, exclude=seen)
    if len(held) < 3:
        return {}, 0
    actual = memo.rows(held)
    out = {}
    for name, scores in per_token.items():
        tokens = linear_datamodeling_score(scores, held, actual[:, :steps])
        answer = linear_datamodeling_score(rankings[name], held, actual[:, steps])
        out[name] = {"answer": _defined(answer), "tokens": [_defined(x) for x in tokens]}
    return out, len(held)


def _defined(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def token_faithfulness(
    memo: VectorMemo, per_token: dict[str, np.ndarray], steps: int, players: int, random_state: int
) -> dict[str, list[dict]]:
    """Comprehensiveness and sufficiency of each view's ranking for each answer token's own value.

    The random bar draws the same orders for every token, and rankings often agree on the top
    units, so most coalitions are shared between tokens and views (the memo runs each once)."""
    out: dict[str, list[dict]] = {name: [] for name in [*per_token, "random"]}
    for t in range(steps):
        value = memo.column(t)
        measured = {name: faithfulness(value, scores[t]) for name, scores in per_token.items()}
        measured["random"] = random_faithfulness(value, players, random_state=random_state)
        for name, f in measured.items():
            out[name].append({"comprehensiveness": f.comprehensiveness, "sufficiency": f.sufficiency})
    return out
