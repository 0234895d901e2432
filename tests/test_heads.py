"""The head-pattern atlas against heads whose pattern we planted: in numpy, and in a real BERT;
then the atlas as it lands in report.json."""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import replace

import numpy as np
import pytest

from attnreport.analysis.heads import (
    PATTERNS,
    SCORED,
    SEED_TABLE,
    HeadScores,
    HeadThresholds,
    choose_label,
    head_scores,
    induction_scores,
    repeated_random_tokens,
)
from attnreport.core.errors import ConfigError
from attnreport.core.trace import Trace
from attnreport.testing import make_trace

# -- helpers -----------------------------------------------------------------------------


def one_hot_rows(n: int, key) -> np.ndarray:
    """``[n, n]`` attention with all of query i's mass on key ``key(i)`` (clipped into range)."""
    a = np.zeros((n, n))
    a[np.arange(n), np.clip([key(i) for i in range(n)], 0, n - 1)] = 1.0
    return a


def spread_rows(mask: np.ndarray) -> np.ndarray:
    """Uniform attention over the True keys of each row of ``mask`` (a row with none: on itself)."""
    mask = np.asarray(mask, dtype=float)
    empty = mask.sum(axis=1) == 0
    mask[empty, np.flatnonzero(empty)] = 1.0
    return mask / mask.sum(axis=1, keepdims=True)


def brute_force(trace: Trace, *, causal: bool, window: int = 3) -> dict[str, np.ndarray]:
    """Every score of every head of one text, by loops over queries: the definitions, literally."""
    n, tok, special = trace.n_tokens, trace.tokens, trace.special
    out = {p: np.zeros((trace.layers, trace.heads)) for p in SCORED}
    for layer in range(trace.layers):
        for head in range(trace.heads):
            values = {p: [] for p in SCORED}
            for i in range(1, n):
                if special[i]:
                    continue
                row = trace.attentions[layer, head, i].astype(float)
                values["previous_token"].append(row[i - 1])
                if i < n - 1:
                    values["next_token"].append(row[i + 1])
                values["self"].append(row[i])
                values["first_token"].append(row[0])
                values["separator"].append(sum(row[j] for j in range(1, n) if special[j]))
                adjacent = [row[i - 1], row[i]] + ([row[i + 1]] if i < n - 1 else [])
                values["local"].append(sum(row[j] for j in range(n) if abs(i - j) <= window) - max(adjacent))
                m = i + 1 if causal else n
                entropy = -sum(p * math.log(p) for p in row[:m] if p > 0)
                values["global"].append(math.exp(entropy) / m)
                if causal:
                    keys = {j + 1 for j in range(i - 2) if tok[j] == tok[i]}
                    if keys:
                        values["induction"].append(sum(row[k] for k in keys))
            for p in SCORED:
                out[p][layer, head] = np.mean(values[p]) if values[p] else np.nan
    return out


def labels(result: list[HeadScores]) -> list[str]:
    return [h.pattern for h in result]


# -- planted numpy heads -----------------------------------------------------------------

N = 14  # [CLS] + 12 words + [SEP]
CONTENT = N - 2  # scored queries: positions 1 .. 12


def planted_heads(n: int = N) -> tuple[np.ndarray, list[str]]:
    """One layer of heads, each with a known label: ``[1, 8, n, n]`` and the labels."""
    pos = np.arange(n)
    offset = np.abs(pos[:, None] - pos[None, :])
    heads = {
        "previous_token": one_hot_rows(n, lambda i: i - 1),
        "next_token": one_hot_rows(n, lambda i: i + 1),
        "self": one_hot_rows(n, lambda i: i),
        "first_token": one_hot_rows(n, lambda i: 0),
        "separator": one_hot_rows(n, lambda i: n - 1),
        "local": spread_rows((offset >= 2) & (offset <= 3)),  # the neighbourhood, not the neighbours
        "global": spread_rows(np.ones((n, n))),
        "mixed": 0.5 * one_hot_rows(n, lambda i: i - 1) + 0.5 * one_hot_rows(n, lambda i: 0),
    }
    return np.stack(list(heads.values()))[None], list(heads)


def test_planted_heads_get_their_labels():
    attentions, expected = planted_heads()
    result = head_scores([make_trace(attentions)])
    assert [(h.layer, h.head) for h in result] == [(0, k) for k in range(8)]  # row-major
    assert labels(result) == expected
    for h in result:
        assert set(h.scores) == set(SCORED) and h.pattern in PATTERNS
        assert all(0.0 <= v <= 1.0 for v in h.scores.values())
    prev, nxt, own, first, sep, local, glob, mixed = result
    # known answers, by hand: the pattern's own mass is 1, the overlaps are one query in 12
    assert prev.scores["previous_token"] == pytest.approx(1.0)
    assert prev.scores["first_token"] == pytest.approx(1 / CONTENT)  # query 1's previous token is [CLS]
    assert prev.scores["local"] == pytest.approx(0.0)
    assert prev.entropy == pytest.approx(0.0) and prev.mean_distance == pytest.approx(1.0)
    assert nxt.scores["next_token"] == pytest.approx(1.0)
    assert nxt.scores["separator"] == pytest.approx(1 / CONTENT)  # query 12's next token is [SEP]
    assert own.scores["self"] == pytest.approx(1.0) and own.mean_distance == pytest.approx(0.0)
    assert first.scores["first_token"] == pytest.approx(1.0)
    assert first.mean_distance == pytest.approx(np.mean(np.arange(1, N - 1)))
    assert sep.scores["separator"] == pytest.approx(1.0)
    assert local.scores["local"] == pytest.approx(1.0)
    assert local.scores["previous_token"] == 0 and local.scores["self"] == 0
    assert glob.scores["global"] == pytest.approx(1.0) and glob.entropy == pytest.approx(1.0)
    assert glob.scores["first_token"] == pytest.approx(1 / N)
    assert mixed.scores["previous_token"] == pytest.approx(0.5 + 0.5 / CONTENT)
    assert mixed.scores["first_token"] == pytest.approx(0.5 + 0.5 / CONTENT)  # a tie: no label
    # an encoder never gets an induction score
    assert all(h.scores["induction"] == 0 for h in result)


@pytest.mark.parametrize("causal", [False, True])
def test_vectorised_scores_equal_the_definitions_by_loops(causal):
    rng = np.random.default_rng(3)
    traces = []
    for e, n in enumerate((9, 16, 23)):
        a = rng.dirichlet(np.full(n, 0.3), size=(2, 3, n))  # [L, H, n, n], peaked rows
        a[:, 1] = 0.7 * np.eye(n)[np.maximum(np.arange(n) - 1, 0)] + 0.3 * a[:, 1]  # near previous_token
        if causal:
            a = a * np.tril(np.ones((n, n)))
            a /= a.sum(axis=-1, keepdims=True)
            tokens = ["<s>"] + [f"t{k}" for k in rng.integers(0, 4, size=n - 1)]  # repeats aplenty
        else:
            tokens = ["[CLS]"] + [f"t{k}" for k in rng.integers(0, 4, size=n - 2)] + ["[SEP]"]
        traces.append(make_trace(a, tokens=tokens, special=[t[0] in "[<" for t in tokens], id=str(e)))
    result = head_scores(traces, causal=causal)
    expected = [brute_force(t, causal=causal) for t in traces]
    for h in result:
        for p in SCORED:
            if p == "induction" and not causal:
                assert h.scores[p] == 0.0
                continue
            want = np.nanmean([x[p][h.layer, h.head] for x in expected])
            assert h.scores[p] == pytest.approx(want, abs=1e-6), (h.layer, h.head, p)


def test_typical_examples_rank_texts_by_the_labels_score():
    n = 12
    prev, uniform = one_hot_rows(n, lambda i: i - 1), np.full((n, n), 1 / n)
    strengths = [0.9, 0.6, 1.0, 0.8]
    traces = [make_trace((s * prev + (1 - s) * uniform)[None, None], id=f"t{s}") for s in strengths]
    (head,) = head_scores(traces, thresholds=HeadThresholds(typical=3))
    assert head.pattern == "previous_token"
    assert head.typical == [2, 0, 3]  # strongest previous-token attention first, three of them
    mixed_head = head_scores([make_trace((0.5 * prev + 0.5 * one_hot_rows(n, lambda i: 0))[None, None])])
    assert mixed_head[0].pattern == "mixed" and mixed_head[0].typical == [0]


# -- induction ---------------------------------------------------------------------------

PERIOD = 10


def probe(period: int = PERIOD, *, start: int = 1):
    """A causal probe: BOS, then a random sequence twice; three heads: induction, previous, uniform."""
    ids = repeated_random_tokens(50, period, random_state=7, exclude=[0])
    tokens = ["<bos>"] * start + [f"id{t}" for t in ids]
    n = len(tokens)
    causal = np.tril(np.ones((n, n)))
    second = np.arange(n) >= start + period
    induction = spread_rows(causal * (np.arange(n)[None, :] == 0))  # the first copy rests on BOS
    induction[second] = np.eye(n)[np.arange(n)[second] - period + 1]
    heads = np.stack([induction, one_hot_rows(n, lambda i: i - 1), spread_rows(causal)])[None]
    return heads, tokens, ids


def test_repeated_random_tokens_is_one_random_sequence_twice():
    ids = repeated_random_tokens(100, 30, random_state=1, exclude=[0, 1, 2])
    assert ids.shape == (60,) and ids.dtype == np.int64
    np.testing.assert_array_equal(ids[:30], ids[30:])
    assert len(set(ids[:30].tolist())) == 30  # distinct: one earlier occurrence per query
    assert not {0, 1, 2} & set(ids.tolist()) and ids.max() < 100
    np.testing.assert_array_equal(ids, repeated_random_tokens(100, 30, random_state=1, exclude=[0, 1, 2]))
    assert not np.array_equal(ids, repeated_random_tokens(100, 30, random_state=2, exclude=[0, 1, 2]))
    with pytest.raises(ValueError, match=r"length must be in \[1, 97\]"):
        repeated_random_tokens(100, 98, exclude=[0, 1, 2])


def test_induction_scores_on_the_probe():
    attentions, tokens, _ = probe()
    scores = induction_scores(attentions, PERIOD, start=1)
    assert scores.shape == (1, 3)
    assert scores[0, 0] == pytest.approx(1.0)  # the planted induction head
    assert scores[0, 1] == pytest.approx(0.0)  # a previous-token head looks one token too early
    # uniform causal attention: query i gives 1 / (i + 1) to every key, the induction key included
    queries = np.arange(1 + PERIOD, 1 + 2 * PERIOD)
    assert scores[0, 2] == pytest.approx(np.mean(1 / (queries + 1)))
    # the same on the Trace, from the tokens' own repeats, and from the probe's numbers
    trace = make_trace(attentions, tokens=tokens, special=[t == "<bos>" for t in tokens])
    result = head_scores([trace], causal=True)
    assert labels(result) == ["induction", "previous_token", "global"]
    assert result[0].scores["induction"] == pytest.approx(1.0)
    passed = head_scores([trace], causal=True, induction=scores)
    assert [h.scores["induction"] for h in passed] == pytest.approx(scores[0].tolist())
    # an encoder has no induction score, and neither does a text with too few repeats
    assert head_scores([trace], causal=False)[0].scores["induction"] == 0
    few = HeadThresholds(induction_min_queries=PERIOD + 1)
    assert head_scores([trace], causal=True, thresholds=few)[0].scores["induction"] == 0


def test_induction_scores_validate_shapes():
    attentions, _, _ = probe()
    with pytest.raises(ValueError, match=r"needs n >= 31, got attentions \[1, 3, 21, 21\]"):
        induction_scores(attentions, 15, start=1)
    with pytest.raises(ValueError, match=r"must be \[L, H, n, n\], got \[3, 21, 21\]"):
        induction_scores(attentions[0], PERIOD, start=1)
    with pytest.raises(ValueError, match="period must be at least 3"):
        induction_scores(attentions, 2, start=1)


# -- thresholds --------------------------------------------------------------------------


def test_thresholds_change_labels_as_documented():
    n = 20
    prev, uniform = one_hot_rows(n, lambda i: i - 1), np.full((n, n), 1 / n)
    pos = np.arange(n)
    offset = np.abs(pos[:, None] - pos[None, :])
    heads = np.stack(
        [
            0.6 * prev + 0.4 * uniform,  # previous_token 0.62; its spread is only ~0.3
            spread_rows((offset >= 2) & (offset <= 3)),  # local with a window of 3, nothing with 1
            spread_rows(np.broadcast_to(pos < 9, (n, n))),  # on 9 of the 20 keys, near or far
        ]
    )[None]
    trace = make_trace(heads)
    default = head_scores([trace])
    assert labels(default) == ["previous_token", "local", "mixed"]
    assert default[0].scores["previous_token"] == pytest.approx(0.6 + 0.4 / n)
    assert default[0].entropy > 0.55  # high normalised entropy, yet not a global head
    assert default[0].scores["global"] < 0.35
    assert labels(head_scores([trace], thresholds=HeadThresholds(min_score=0.7)))[0] == "mixed"
    assert labels(head_scores([trace], thresholds=HeadThresholds(margin=0.45)))[0] == "mixed"
    assert labels(head_scores([trace], thresholds=HeadThresholds(local_window=1)))[1] == "mixed"
    assert default[2].scores["global"] == pytest.approx(9 / n)
    assert labels(head_scores([trace], thresholds=HeadThresholds(min_spread=0.4)))[2] == "global"


def test_label_rule():
    scores = dict.fromkeys(SCORED, 0.0)
    t = HeadThresholds()
    assert choose_label({**scores, "self": 0.7, "local": 0.55}, t) == "self"
    assert choose_label({**scores, "self": 0.7, "local": 0.65}, t) == "mixed"  # within the margin
    assert choose_label({**scores, "self": 0.45}, t) == "mixed"  # below min_score
    assert choose_label({**scores, "induction": 0.45}, t) == "induction"  # its own, lower bar
    assert choose_label({**scores, "global": 0.45}, t) == "mixed"
    assert choose_label({**scores, "global": 0.45}, replace(t, min_spread=0.4)) == "global"
    with pytest.raises(ValueError, match="scores lack induction"):
        choose_label({p: 0.0 for p in SCORED if p != "induction"}, t)


def test_thresholds_from_config_and_their_errors():
    t = HeadThresholds.from_dict({"min_score": 0.6, "local_window": 2})
    assert (t.min_score, t.local_window, t.margin) == (0.6, 2, HeadThresholds().margin)
    with pytest.raises(ConfigError, match="unknown option 'min_scor'; known: min_score, min_spread"):
        HeadThresholds.from_dict({"min_scor": 0.6})
    with pytest.raises(ConfigError, match=r"min_score must be in \[0, 1\], got 1.5"):
        HeadThresholds(min_score=1.5)
    with pytest.raises(ConfigError, match="local_window must be an integer >= 1, got 0"):
        HeadThresholds(local_window=0)
    assert [t.threshold(p) for p in ("self", "global", "induction")] == [0.6, 0.5, 0.4]


def test_head_scores_validate_their_inputs():
    a, _ = planted_heads()
    other = make_trace(np.concatenate([a, a]), id="two-layers")
    with pytest.raises(ValueError, match=r"'two-layers' has attentions \[2, 8, 14, 14\], but trace 't'"):
        head_scores([make_trace(a), other])
    with pytest.raises(ValueError, match=r"induction must be \[1, 8\], got \[8\]"):
        head_scores([make_trace(a)], induction=np.zeros(8))
    with pytest.raises(ValueError, match="at least one trace"):
        head_scores([])


def test_results_are_plain_data():
    a, _ = planted_heads()
    h = head_scores([make_trace(a)])[0]
    assert HeadScores.from_dict(h.to_dict()) == h
    assert all(type(v) is float for v in h.scores.values()) and type(h.typical[0]) is int
    assert {p for family in SEED_TABLE.values() for p in family} == set(SCORED)


def test_a_text_without_content_tokens_is_left_out():
    a, _ = planted_heads()
    empty = make_trace(np.full((1, 8, 2, 2), 0.5), tokens=["[CLS]", "[SEP]"], id="empty")
    with_empty = head_scores([make_trace(a), empty])
    assert labels(with_empty) == labels(head_scores([make_trace(a)]))
    assert all(h.typical == [0] for h in with_empty)


# -- a real BERT with planted heads ------------------------------------------------------

HIDDEN, HEADS, HEAD_DIM, POSITIONS = 64, 4, 16, 64
#: 8 frequencies: cos and sin of each fill one head's 16 dimensions
FREQS = np.pi * 2.0 ** -np.arange(8)
#: the attention logit of the planted key beats every other key's by at least this much
LOGIT_GAP = 20.0


def position_features(n: int = POSITIONS) -> np.ndarray:
    """``[n, 17]``: cos and sin of every frequency, then +1 at position 0 and -1 elsewhere."""
    angle = np.arange(n)[:, None] * FREQS[None, :]
    first = np.where(np.arange(n) == 0, 1.0, -1.0)[:, None]
    return np.concatenate([np.cos(angle), np.sin(angle), first], axis=1)


def frequency_gap() -> float:
    """min over offsets d != 0 (|d| < POSITIONS + 1) of sum_f (1 - cos(w_f d)): how unique d = 0 is."""
    d = np.arange(1, POSITIONS + 2)[:, None]
    return float(np.min(np.sum(1 - np.cos(d * FREQS[None, :]), axis=1)))


def planted_bert(folder):
    """A 2-layer BERT whose layer-0 heads attend to: the previous token, itself, [CLS], uniformly.

    Word and token-type embeddings are zero, so layer 0 sees positions only. Position ``p``
    is ``[f_p, -f_p, 0...]`` with ``f_p = position_features()[p]``, scaled to variance 1:
    zero-mean and of equal norm, so the embedding LayerNorm (weight 1, bias 0) leaves it as it is.
    Then with ``c_p = (cos w p, sin w p)`` over the 8 frequencies:

    - head 0: q_i = a R(-w) c_i = a c_(i-1), k_j = c_j: q_i . k_j = a sum_f cos(w_f (i - 1 - j)),
      largest exactly at j = i - 1;
    - head 1: q_i = a c_i, k_j = c_j: largest at j = i;
    - head 2: q_i = b e_0 (a bias), k_j = (+-1) e_0: +b for j = 0, -b for every other key;
    - head 3: all query and key weights zero: uniform attention over the text.

    ``a`` and ``b`` make every other key's logit at least ``LOGIT_GAP`` lower.
    """
    import torch
    import transformers
    from tiny_models import _wordpiece

    cfg = transformers.BertConfig(
        vocab_size=300,
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=HEADS,
        intermediate_size=128,
        max_position_embeddings=POSITIONS,
        layer_norm_eps=1e-12,
        num_labels=2,
    )
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(cfg).eval()
    feats = position_features()
    k = feats.shape[1]
    scale = math.sqrt(HIDDEN / (2 * (feats**2).sum(axis=1).mean()))  # variance 1 per position
    pos = np.zeros((POSITIONS, HIDDEN))
    pos[:, :k], pos[:, k : 2 * k] = scale * feats, -scale * feats
    a = 4 * LOGIT_GAP / frequency_gap()  # logits are q . k / sqrt(16)
    b = 4 * LOGIT_GAP / 2
    wq, wk, bq = np.zeros((HIDDEN, HIDDEN)), np.zeros((HIDDEN, HIDDEN)), np.zeros(HIDDEN)
    f = np.arange(8)
    cos, sin = np.cos(FREQS), np.sin(FREQS)
    # rows: output dims (head h owns h*16 .. h*16+15); columns: hidden dims (features 0..16)
    for head in (0, 1):
        o = head * HEAD_DIM
        wk[o + f, f] = wk[o + 8 + f, 8 + f] = 1 / scale
    wq[f, f], wq[f, 8 + f] = a * cos / scale, a * sin / scale  # head 0: cos(w(i - 1))
    wq[8 + f, 8 + f], wq[8 + f, f] = a * cos / scale, -a * sin / scale  # head 0: sin(w(i - 1))
    wq[HEAD_DIM + f, f] = wq[HEAD_DIM + 8 + f, 8 + f] = a / scale  # head 1: c_i
    bq[2 * HEAD_DIM] = b  # head 2: a constant query ...
    wk[2 * HEAD_DIM, 16] = 1 / scale  # ... against the first-position feature
    emb = model.bert.embeddings
    attn = model.bert.encoder.layer[0].attention.self
    with torch.no_grad():
        emb.word_embeddings.weight.zero_()
        emb.token_type_embeddings.weight.zero_()
        emb.position_embeddings.weight.copy_(torch.tensor(pos, dtype=torch.float32))
        attn.query.weight.copy_(torch.tensor(wq, dtype=torch.float32))
        attn.query.bias.copy_(torch.tensor(bq, dtype=torch.float32))
        attn.key.weight.copy_(torch.tensor(wk, dtype=torch.float32))
        attn.key.bias.zero_()
    model.save_pretrained(str(folder))
    _wordpiece(transformers).save_pretrained(str(folder))
    return folder


PLANTED_TEXTS = [
    "the card was charged twice for the same order and my account is locked now",
    "where is my parcel and when will it arrive",
    "my blood pressure readings have been high all week please refill",
    "someone is using my card lock my account",
]


@pytest.fixture(scope="module")
def planted_traces(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import transformers

    from attnreport.export import export_model
    from attnreport.trace import Tracer

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    root = tmp_path_factory.mktemp("planted")
    with contextlib.redirect_stdout(io.StringIO()):
        checkpoint = planted_bert(root / "checkpoint")
    export_model(checkpoint, root / "export")
    return Tracer(root / "export", cache_dir=root / "cache").trace_texts(PLANTED_TEXTS)


def test_planted_bert_heads_are_found(planted_traces):
    traces = planted_traces
    assert all(t.tokens[0] == "[CLS]" and t.tokens[-1] == "[SEP]" for t in traces)
    assert min(t.n_tokens for t in traces) >= 10  # long enough that a ±3 window is not everything
    # the planting worked: check the model's attention itself first, row by row
    for t in traces:
        a, n = t.attentions[0], t.n_tokens
        np.testing.assert_allclose(np.diagonal(a[0], offset=-1), 1.0, atol=1e-4)
        np.testing.assert_allclose(np.diagonal(a[1]), 1.0, atol=1e-4)
        np.testing.assert_allclose(a[2][:, 0], 1.0, atol=1e-4)
        np.testing.assert_allclose(a[3], 1.0 / n, atol=1e-5)
    result = head_scores(traces)
    assert len(result) == 2 * HEADS
    layer0 = result[:HEADS]
    assert labels(layer0) == ["previous_token", "self", "first_token", "global"]
    prev, own, first, uniform = layer0
    assert prev.scores["previous_token"] > 0.999 and prev.mean_distance == pytest.approx(1.0, abs=1e-3)
    assert own.scores["self"] > 0.999 and own.mean_distance < 1e-3
    assert first.scores["first_token"] > 0.999
    assert uniform.scores["global"] > 0.999 and uniform.entropy > 0.999
    share = np.mean([1 / t.n_tokens for t in traces])
    assert uniform.scores["first_token"] == pytest.approx(share, abs=1e-5)
    for h in layer0:  # the label wins by a wide margin, not by luck
        runner_up = sorted(h.scores.values())[-2]
        assert h.scores[h.pattern] - runner_up > 0.4
    assert all(h.pattern in PATTERNS for h in result[HEADS:])  # layer 1 is random: any label
    # fewer texts than `typical` asks for: every one of them is typical
    assert sorted(prev.typical) == list(range(len(traces)))


# -- in report.json ---------------------------------------------------------------------


def test_head_atlas_covers_every_head_with_the_fixed_vocabulary(tiny_report):
    data, _ = tiny_report
    heads = data["heads"]
    assert [(h["layer"], h["head"]) for h in heads] == [(layer, h) for layer in range(2) for h in range(4)]
    assert all(h["pattern"] in PATTERNS for h in heads)
    assert all(0 <= v <= 1 for h in heads for v in h["scores"].values())
    assert all(t in ("short", "long") for h in heads for t in h["typical"])
