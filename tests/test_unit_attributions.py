"""Attributions over sentences and words, against brute force over unit coalitions run through a
fresh onnxruntime session: the units, the masks and the windows are rebuilt here by hand."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from tokenizers import Tokenizer

from attnreport.analysis.faithfulness import BINS
from attnreport.core.config import AnalysisConfig
from attnreport.run.stage import explain_traced
from attnreport.trace import Tracer

SENTENCES = ["the card was charged twice.", "Where is my parcel?", "lock my account now", "refill please"]
TEXT = f"{SENTENCES[0]} {SENTENCES[1]}\n{SENTENCES[2]}\n{SENTENCES[3]}"


class Reference:
    """The tiny BERT through its own onnxruntime session and tokenizer, nothing of attnreport."""

    def __init__(self, folder, text: str, spans: list[tuple[int, int]], windows=None) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        enc = tok.encode(text)  # with [CLS] ... [SEP]
        self.cls, self.sep, self.mask = (
            tok.token_to_id("[CLS]"),
            tok.token_to_id("[SEP]"),
            tok.token_to_id("[MASK]"),
        )
        assert enc.ids[0] == self.cls and enc.ids[-1] == self.sep
        self.content = np.array(enc.ids[1:-1])
        starts = np.array([a for a, _ in enc.offsets[1:-1]])
        # a token belongs to the unit its first character is in
        self.unit_of = np.array([next(u for u, (a, b) in enumerate(spans) if a <= s < b) for s in starts])
        self.windows = windows or [(0, len(self.content))]
        self.target = int(np.argmax(self.logits(np.ones(len(spans), dtype=bool))))

    def logits(self, present: np.ndarray) -> np.ndarray:
        content = np.where(present[self.unit_of], self.content, self.mask)
        out = []
        for a, b in self.windows:  # encoders average the windows' logits
            ids = np.array([[self.cls, *content[a:b], self.sep]], dtype=np.int64)
            (logits,) = self.session.run(["logits"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})
            out.append(logits[0].astype(np.float64))
        return np.mean(out, axis=0)

    def probability(self, present) -> float:
        z = self.logits(np.asarray(present, dtype=bool))
        p = np.exp(z - z.max())
        return float(p[self.target] / p.sum())


def textbook_shapley(f, k: int) -> np.ndarray:
    def v(subset):
        mask = np.zeros(k, dtype=bool)
        mask[list(subset)] = True
        return f(mask)

    phi = np.zeros(k)
    for i in range(k):
        others = [j for j in range(k) if j != i]
        for size in range(k):
            for s in itertools.combinations(others, size):
                w = math.factorial(size) * math.factorial(k - size - 1) / math.factorial(k)
                phi[i] += w * (v((*s, i)) - v(s))
    return phi


def hand_spans(text: str, pieces: list[str]) -> list[tuple[int, int]]:
    spans, at = [], 0
    for piece in pieces:
        a = text.index(piece, at)
        spans.append((a, a + len(piece)))
        at = a + len(piece)
    return spans


def check_against_reference(result, ref: Reference, spans, text: str) -> None:
    k = len(spans)
    sh, occ = result.attributions["shapley"], result.attributions["occlusion"]
    assert sh["unit"] == "sentence" and sh["exact"] is True and sh["evaluations"] == 2**k
    assert sh["units"] == [{"start": a, "stop": b, "text": text[a:b]} for a, b in spans]
    np.testing.assert_allclose(sh["values"], textbook_shapley(ref.probability, k), atol=2e-6)
    full = ref.probability(np.ones(k, dtype=bool))
    leave_out = [ref.probability(np.arange(k) != u) for u in range(k)]
    np.testing.assert_allclose(occ["values"], full - np.array(leave_out), atol=2e-6)
    # comprehensiveness over units: the top units by Shapley value removed, bin by bin
    order = np.argsort(-np.array(sh["values"]), kind="stable")
    counts = [min(k, max(1, math.ceil(b * k))) for b in BINS]
    comp = [full - ref.probability(~np.isin(np.arange(k), order[:c])) for c in counts]
    suff = [full - ref.probability(np.isin(np.arange(k), order[:c])) for c in counts]
    faith = result.faithfulness["shapley"]
    np.testing.assert_allclose(faith["comprehensiveness_bins"], comp, atol=2e-6)
    np.testing.assert_allclose(faith["sufficiency_bins"], suff, atol=2e-6)


def test_exact_sentence_shapley_matches_brute_force_over_sentence_coalitions(tiny, tmp_path):
    folder = tiny.export("bert")
    tracer = Tracer(folder, cache_dir=tmp_path)
    (trace,) = tracer.trace_texts([TEXT])
    assert not trace.windows
    spans = hand_spans(TEXT, SENTENCES)
    result = explain_traced(tracer, trace, AnalysisConfig(attribution_unit="sentence", max_exact=8))
    check_against_reference(result, Reference(folder, TEXT, spans), spans, TEXT)
    assert result.model_runs == 2 ** len(spans)  # every coalition once, faithfulness included
    assert set(result.faithfulness) == {"shapley", "occlusion", "rollout", "raw_attention", "flow", "random"}


def test_a_windowed_text_is_explained_through_the_windows_the_trace_used(tiny, tmp_path):
    folder = tiny.export("bert")
    tracer = Tracer(folder, window=16, stride=4, cache_dir=tmp_path)
    (trace,) = tracer.trace_texts([TEXT])
    assert len(trace.windows) >= 2
    windows = [(a - 1, b - 1) for a, b in trace.windows]  # past [CLS], in content tokens
    spans = hand_spans(TEXT, SENTENCES)
    ref = Reference(folder, TEXT, spans, windows=windows)
    # the reference's unmasked logits are the ones the page shows
    np.testing.assert_allclose(ref.logits(np.ones(len(spans), dtype=bool)), trace.logits, atol=2e-5)
    result = explain_traced(tracer, trace, AnalysisConfig(attribution_unit="sentence", max_exact=8))
    check_against_reference(result, ref, spans, TEXT)
    assert result.attributions["shapley"]["windows"] == len(windows)
    # each window is run once per distinct coalition of the sentences it holds, not of all of them
    held = [{u for u, (a, b) in enumerate(spans) if a < trace.offsets[wb, 1] and b > trace.offsets[wa, 0]}
            for wa, wb in ((a + 1, b) for a, b in windows)]  # fmt: skip
    assert result.model_runs == sum(2 ** len(h) for h in held) < len(windows) * 2 ** len(spans)


def test_auto_scores_a_long_text_by_sentences_in_bounded_runs_and_token_unit_still_skips(tiny, tmp_path):
    folder = tiny.export("bert")
    tracer = Tracer(folder, window=32, stride=8, cache_dir=tmp_path)
    text = " ".join(f"Where is my parcel number {i}? The card was charged twice." for i in range(12))
    (trace,) = tracer.trace_texts([text])
    players = int((~trace.special).sum())
    options = AnalysisConfig(evaluations_per_token=4, faithfulness=False, max_attribution_tokens=64)
    result = explain_traced(tracer, trace, options)
    sh = result.attributions["shapley"]
    assert players > 64 and sh["unit"] == "sentence" and len(sh["values"]) == len(sh["units"]) == 24
    assert [u["text"] for u in sh["units"][:2]] == [
        "Where is my parcel number 0?",
        "The card was charged twice.",
    ]
    assert sh["exact"] is False and len(sh["std_error"]) == 24
    assert sum(sh["values"]) == pytest.approx(sh["f_input"] - sh["f_baseline"], abs=1e-9)
    assert sh["evaluations"] <= 4 * 24  # the budget is per unit, not per token
    token_only = explain_traced(tracer, trace, AnalysisConfig(attribution_unit="token", faithfulness=False))
    assert (
        token_only.attributions == {}
        and "token attributions run up to 64" in token_only.skipped["attributions"]
    )


def test_an_unknown_unit_is_refused_with_the_known_ones():
    from attnreport.analysis.options import check_options
    from attnreport.core.errors import ConfigError

    with pytest.raises(ConfigError, match="attribution_unit = 'paragraph'; choose one of auto, token, word"):
        check_options(AnalysisConfig(attribution_unit="paragraph"))


def test_a_causal_model_in_windows_reads_its_last_window_only(tiny, tmp_path):
    """The trace takes a causal classifier's logits from its last window, so the masked model
    runs that window alone: sentences wholly before it score exactly 0, the others match brute
    force over the last window's coalitions."""
    import onnxruntime as ort

    folder = tiny.export("gpt2-cls")
    tracer = Tracer(folder, window=16, stride=4, cache_dir=tmp_path)
    (trace,) = tracer.trace_texts([TEXT])
    assert len(trace.windows) >= 3 and not trace.special.any()  # no special tokens around gpt2's text
    spans = hand_spans(TEXT, SENTENCES)
    result = explain_traced(
        tracer, trace, AnalysisConfig(attribution_unit="sentence", max_exact=8, faithfulness=False)
    )
    sh = result.attributions["shapley"]
    assert sh["windows"] == len(trace.windows) and sh["windows_read"] == 1
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    enc = tok.encode(TEXT, add_special_tokens=False)
    a, b = trace.windows[-1]
    # byte-level tokens carry their leading space, and newlines are tokens: a token belongs to
    # the last sentence that starts at or before its first visible character
    visible = [next((i for i in range(s, e) if not TEXT[i].isspace()), s) for s, e in enc.offsets]
    unit_of = np.array([max(u for u, (x, _) in enumerate(spans) if x <= v) for v in visible])
    baseline = tracer.card.extra.get("pad_token_id") or 0
    target = int(np.argmax(trace.logits))

    def f(present):
        ids = np.where(present[unit_of], enc.ids, baseline)[None, a:b].astype(np.int64)
        (logits,) = session.run(["logits"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})
        p = np.exp(logits[0] - logits[0].max())
        return float(p[target] / p.sum())

    np.testing.assert_allclose(sh["values"], textbook_shapley(f, len(spans)), atol=2e-6)
    before = [u for u, (x, y) in enumerate(spans) if y <= enc.offsets[a][0]]
    assert before and all(sh["values"][u] == 0 for u in before)
