"""Attributions of generated tokens over prompt units, against independent references: the
generation's own step scores, PyTorch on masked prompts, brute-force Shapley sums, and a planted
copy circuit whose answer (and its source) is known."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from attnreport.analysis.answer_attribution import answer_columns, explain_answer, runner_up
from attnreport.core.config import AnalysisConfig
from attnreport.trace import GenerationOptions, Generator
from attnreport.trace.forced import ForcedAnswer

PROMPT = "the card was charged twice for the same order"


@pytest.fixture(scope="module")
def qwen(tiny):
    """The tiny Qwen2 (grouped-query attention, rotary), its export's generator and one answer."""
    gen = Generator(tiny.export("qwen2"), use_cache=False)
    (trace,) = gen.generate_texts([PROMPT], GenerationOptions(max_new_tokens=6, eos=False))
    return tiny.checkpoint("qwen2"), gen, trace


def torch_log_probs(checkpoint, trace, ids_rows):
    """PyTorch eager on each row of prompt ids + the answer: log p of each answer token and of
    each step's top-k alternatives."""
    import torch
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(str(checkpoint), attn_implementation="eager")
    model.eval()
    n, T = trace.n_prompt, trace.steps
    rows = [list(r) + list(trace.ids[:-1]) for r in ids_rows]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor(rows)).logits.double()
    logp = torch.log_softmax(logits[:, n - 1 : n - 1 + T], dim=-1).numpy()
    chosen = np.take_along_axis(logp, np.asarray(trace.ids)[None, :, None], axis=-1)[..., 0]
    top = np.asarray(trace.top_ids).reshape(T, -1)
    alternatives = np.take_along_axis(logp, np.broadcast_to(top, (len(rows), *top.shape)), axis=-1)
    return chosen, alternatives


def test_the_whole_prompt_scores_what_the_generation_scored(qwen):
    """One teacher-forced run reproduces the step-by-step (KV-cache) generation's scores."""
    _, gen, trace = qwen
    model = ForcedAnswer(gen, trace)
    got = model(np.ones((1, model.players), dtype=bool))
    np.testing.assert_allclose(got.chosen[0], np.log(trace.probability), atol=1e-4)
    np.testing.assert_allclose(got.alternatives[0], np.log(trace.top_probabilities), atol=1e-4)
    assert model.calls == 1


def test_masked_prompts_score_as_pytorch_does(qwen):
    checkpoint, gen, trace = qwen
    units = [np.array([i, i + 1]) for i in range(0, trace.n_prompt - 1, 2)]
    model = ForcedAnswer(gen, trace, units)
    rng = np.random.default_rng(0)
    masks = rng.random((5, model.players)) < 0.5
    masks[0] = True
    masks[1] = False
    rows = np.repeat(np.asarray(trace.prompt_ids)[None], len(masks), axis=0)
    for j, unit in enumerate(units):
        rows[np.ix_(~masks[:, j], unit)] = model.baseline_id
    chosen, alternatives = torch_log_probs(checkpoint, trace, rows)
    got = model(masks)
    np.testing.assert_allclose(got.chosen, chosen, atol=2e-4)
    np.testing.assert_allclose(got.alternatives, alternatives, atol=2e-4)


def brute_force_shapley(values: dict[tuple[bool, ...], np.ndarray], p: int) -> np.ndarray:
    """Shapley 1953, summed over every coalition: phi_i = sum |S|!(p-|S|-1)!/p! (v(S+i) - v(S))."""
    out = np.zeros((p, len(next(iter(values.values())))))
    for i in range(p):
        for mask in itertools.product([False, True], repeat=p):
            if mask[i]:
                continue
            size = sum(mask)
            weight = math.factorial(size) * math.factorial(p - size - 1) / math.factorial(p)
            with_i = tuple(True if j == i else m for j, m in enumerate(mask))
            out[i] += weight * (values[with_i] - values[mask])
    return out


def test_exact_unit_shapley_is_the_brute_force_sum_over_pytorch_runs(qwen):
    """Units of two tokens; every coalition's answer scored by PyTorch, summed by the formula."""
    checkpoint, gen, trace = qwen
    units = [np.array([i, i + 1]) for i in range(0, 8, 2)] + [np.arange(8, trace.n_prompt)]
    p = len(units)
    model = ForcedAnswer(gen, trace, units)
    result = explain_answer(model, options=AnalysisConfig(max_exact=8))
    masks = list(itertools.product([False, True], repeat=p))
    rows = np.repeat(np.asarray(trace.prompt_ids)[None], len(masks), axis=0)
    for r, mask in enumerate(masks):
        for j, unit in enumerate(units):
            if not mask[j]:
                rows[r, unit] = model.baseline_id
    chosen, alternatives = torch_log_probs(checkpoint, trace, rows)
    foils = runner_up(trace.top_ids, trace.ids)
    T = trace.steps
    contrast = chosen - np.take_along_axis(alternatives, foils[None, :, None], axis=-1)[..., 0]
    table = np.concatenate([chosen, chosen.sum(axis=1, keepdims=True), contrast], axis=1)
    want = brute_force_shapley({m: table[r] for r, m in enumerate(masks)}, p)  # [p, 2T + 1]
    shap = result.attributions["shapley"]
    assert shap.exact and result.evaluations == 2**p  # one run per coalition serves every token
    np.testing.assert_allclose(shap.values, want[:, :T].T, atol=5e-4)
    np.testing.assert_allclose(shap.answer, want[:, T], atol=5e-4)
    np.testing.assert_allclose(shap.contrasts, want[:, T + 1 :].T, atol=5e-4)
    # efficiency: each token's values sum to its log-probability with and without the prompt
    np.testing.assert_allclose(shap.values.sum(axis=1), chosen[-1] - chosen[0], atol=5e-4)
    occl = result.attributions["occlusion"]
    full = masks.index((True,) * p)
    # per-token faithfulness (ERASER): f(all) - f(without the top ceil(k p) units), averaged over k
    for t in (0, T - 1):
        order = np.argsort(-shap.values[t], kind="stable")
        drops = []
        for k in (0.01, 0.05, 0.10, 0.20, 0.50):
            top = set(order[: min(p, max(1, math.ceil(k * p)))].tolist())
            without = masks.index(tuple(j not in top for j in range(p)))
            drops.append(chosen[full, t] - chosen[without, t])
        got = result.token_faithfulness["shapley"][t]["comprehensiveness"]
        assert got == pytest.approx(np.mean(drops), abs=5e-4)
    for j in range(p):
        without = masks.index(tuple(k != j for k in range(p)))
        np.testing.assert_allclose(occl.values[:, j], chosen[full] - chosen[without], atol=5e-4)


def test_sampled_values_share_their_coalitions_across_tokens(qwen):
    """Beyond max_exact the estimator draws from its seed, so every answer token is played on
    the same coalitions: the model runs do not grow with the answer."""
    _, gen, trace = qwen
    options = AnalysisConfig(max_exact=4, faithfulness=False)
    one = ForcedAnswer(gen, trace)
    result = explain_answer(one, options=options, methods=("shapley",))
    from attnreport.analysis.attribution_methods import VectorMemo
    from attnreport.analysis.shapley import shapley

    memo = VectorMemo(lambda m: answer_columns(one(m), "log_probability", result.foils), 2 * trace.steps + 1)
    shapley(memo.column(0), one.players, max_exact=4, link="identity", random_state=0)
    assert result.evaluations == memo.evaluations  # all 2T + 1 games: the coalitions of one
    assert not result.attributions["shapley"].exact
    assert result.attributions["shapley"].std_error.shape == (trace.steps, one.players)


def test_copy_circuit_attributes_each_token_to_the_source_it_copies(copy_model):
    """x S S[:k] -> S[k:]: each generated token S[k+t] is read from its earlier occurrence at 1 + k + t
    (found through the token before it, at k + t), so that source carries the largest attribution;
    the first step's query is the prompt's last token itself, so it shares the top two."""
    from tiny_models import COPY_WORDS

    rng = np.random.default_rng(7)
    seq = [COPY_WORDS[i] for i in rng.choice(np.arange(1, len(COPY_WORDS)), 12, replace=False)]
    k = 3
    prompt = " ".join([COPY_WORDS[0], *seq, *seq[:k]])
    gen = Generator(copy_model, use_cache=False)
    (trace,) = gen.generate_texts([prompt], GenerationOptions(max_new_tokens=len(seq) - k))
    assert trace.tokens == seq[k:]
    model = ForcedAnswer(gen, trace)  # one unit per prompt token: unit j is position j
    result = explain_answer(model, options=AnalysisConfig(), views={"attention": trace.attentions[1, 0]})
    shap = result.attributions["shapley"]
    for t in range(trace.steps):
        source = 1 + k + t
        top = np.argsort(-shap.values[t])
        if t == 0:
            assert set(top[:2]) == {source, trace.n_prompt - 1}
        else:
            assert top[0] == source, t
        assert source in np.argsort(-shap.contrasts[t])[:2], t  # why S[k+t] rather than the runner-up
    assert np.abs(shap.efficiency_gap).max() < 1e-6  # permutations telescope: efficient
    # the answer's likelihood rests on S[k:]: removing the top-ranked units costs more than random
    faith = result.faithfulness
    assert faith["shapley"]["comprehensiveness"] > faith["random"]["comprehensiveness"]


def test_the_cache_form_of_an_explanation_round_trips_exactly():
    from attnreport.analysis.answer_attribution import AnswerExplanation, UnitAttribution
    from attnreport.analysis.answer_codec import from_json, to_json
    from attnreport.analysis.units import Units

    rng = np.random.default_rng(0)
    units = Units(
        kind="word", spans=np.array([[0, 3], [4, 9]]), members=(np.array([1]), np.array([2, 3])), n_tokens=5
    )
    shap = UnitAttribution(
        values=rng.standard_normal((3, 2)),
        answer=rng.standard_normal(2).astype(np.float32),
        contrasts=rng.standard_normal((3, 2)),
        requested=np.zeros((0, 2)),
        std_error=rng.random((3, 2)),
        efficiency_gap=[0.0, 1e-17, -0.1],
        exact=False,
        method="kernel",
    )
    occ = UnitAttribution(
        values=np.ones((3, 2)), answer=np.ones(2), contrasts=np.ones((3, 2)), requested=np.zeros((0, 2))
    )
    e = AnswerExplanation(
        units=units,
        output="log_probability",
        baseline="[PAD]",
        foils=np.array([1, -1, 0]),
        requested=[(1, 7, "w7")],
        attributions={"shapley": shap, "occlusion": occ},
        faithfulness={
            "shapley": {"comprehensiveness": 0.25, "sufficiency": -0.5},
            "random": {"comprehensiveness": 0.1, "sufficiency": 0.2},
        },
        lds={"shapley": {"answer": 0.5, "tokens": [0.25, None, -0.125]}},
        lds_ablations=64,
        evaluations=12,
        skipped=["contrast at step 9"],
        segments=["answer"],
    )
    back = from_json(to_json(e))
    assert list(back.attributions) == ["shapley", "occlusion"] and list(back.faithfulness) == [
        "shapley",
        "random",
    ]
    for name, a in e.attributions.items():
        b = back.attributions[name]
        for key in ("values", "answer", "contrasts", "requested", "std_error"):
            x, y = getattr(a, key), getattr(b, key)
            assert (x is None and y is None) or (x.dtype == y.dtype and np.array_equal(x, y))
        assert (b.efficiency_gap, b.exact, b.method) == (a.efficiency_gap, a.exact, a.method)
    assert back.units.kind == "word" and np.array_equal(back.units.spans, units.spans)
    assert [m.tolist() for m in back.units.members] == [[1], [2, 3]]
    assert back.requested == [(1, 7, "w7")] and back.evaluations == 12 and back.segments == ["answer"]
    assert back.lds == e.lds and back.lds_ablations == 64
    # a value that JSON cannot hold is refused, so the answer stays uncached
    shap.values[0, 0] = np.nan
    with pytest.raises(ValueError):
        to_json(e)
