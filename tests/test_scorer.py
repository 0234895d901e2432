"""scorer.onnx, the attention-free graph of forced runs: the recording decoder's logits on a padded
batch (whole, in chunks against its cache, at asked positions), no attention output, recorded in
the manifest, used by ForcedAnswer with the same values, and exports made before it still work."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest

from attnreport.core.modelcard import ModelCard

CAUSAL = ["gpt2", "llama", "qwen2"]
PROMPT = "the card was charged twice for the same order, and the refund"


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _batch(pad: int):
    """Three rows of different lengths, left-padded."""
    rng = np.random.default_rng(3)
    rows = [rng.integers(2, 300, size=n) for n in (11, 6, 9)]
    width = max(map(len, rows))
    ids = np.full((len(rows), width), pad, dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :], mask[i, width - len(r) :] = r, 1
    return ids, mask


def _run(sess, card, ids, mask, *, chunk: int, positions=None):
    """Logits of every position (or of `positions` of each chunk), chunk by chunk against the cache."""
    g = card.generation
    b = len(ids)
    past = {p: np.zeros((b, g.kv_heads, 0, g.head_dim), np.float32) for p in g.past_names}
    scorer = any(i.name == "logit_positions" for i in sess.get_inputs())
    got = []
    for start in range(0, ids.shape[1], chunk):
        end = min(ids.shape[1], start + chunk)
        feeds = {"input_ids": ids[:, start:end], "attention_mask": mask[:, :end], **past}
        if scorer:
            feeds["logit_positions"] = np.arange(end - start) if positions is None else positions
        logits, *present = sess.run(["logits", *g.present_names], feeds)
        past = dict(zip(g.past_names, present, strict=True))
        got.append(logits)
    return np.concatenate(got, axis=1)


@pytest.mark.parametrize("family", CAUSAL)
def test_scorer_gives_the_recording_decoders_logits_on_a_padded_batch(tiny, family):
    folder = tiny.export(family)
    card = ModelCard.load(folder)
    g = card.generation
    assert g.scorer == "scorer.onnx" and (folder / g.scorer).is_file()
    assert 0 <= g.max_abs_diff["scorer_logits"] <= g.tolerance
    scorer, decoder = session(folder / g.scorer), session(folder / g.decoder)
    # no attention, hidden state or value norm: logits and the cache only
    assert [o.name for o in scorer.get_outputs()] == ["logits", *g.present_names]
    ids, mask = _batch(card.extra["pad_token_id"])
    want = _run(decoder, card, ids, mask, chunk=ids.shape[1])
    real = mask.astype(bool)
    for chunk in (ids.shape[1], 4, 1):
        got = _run(scorer, card, ids, mask, chunk=chunk)
        np.testing.assert_allclose(got[real], want[real], atol=1e-5, rtol=1e-5)
    # asked positions only, in any order: [B, k, V]
    picked = _run(scorer, card, ids, mask, chunk=ids.shape[1], positions=np.array([10, 3, 7]))
    assert picked.shape == (3, 3, g.vocab_size)
    np.testing.assert_allclose(picked, want[:, [10, 3, 7]], atol=1e-5, rtol=1e-5)


def _without_scorer(folder, to):
    """A copy of the export `folder` as exports made before the scorer were: no file, no field."""
    shutil.copytree(folder, to)
    manifest = json.loads((to / "attnreport.json").read_text())
    del manifest["generation"]["scorer"]
    (to / "attnreport.json").write_text(json.dumps(manifest))
    (to / "scorer.onnx").unlink()
    return to


def test_forced_runs_score_the_same_on_the_scorer_and_on_an_old_export(tiny, tmp_path):
    """ForcedAnswer reads the scorer (in chunks of the generator's prefill_chunk) when the export has
    one, decoder.onnx otherwise, with the same values; the full prompt scores what generation did."""
    from attnreport.trace import GenerationOptions, Generator
    from attnreport.trace.forced import ForcedAnswer

    folder = tiny.export("qwen2")
    old = _without_scorer(folder, tmp_path / "old")
    assert ModelCard.load(old).generation.scorer is None
    new_gen = Generator(folder, use_cache=False, prefill_chunk=4)
    old_gen = Generator(old, use_cache=False)
    (trace,) = new_gen.generate_texts([PROMPT], GenerationOptions(max_new_tokens=6))
    assert old_gen.scorer is None and new_gen.scorer is not None
    new, old_model = ForcedAnswer(new_gen, trace), ForcedAnswer(old_gen, trace)
    masks = np.random.default_rng(0).random((9, new.players)) > 0.4
    masks[0] = True
    a, b = new(masks), old_model(masks)
    for x, y in ((a.chosen, b.chosen), (a.alternatives, b.alternatives)):
        np.testing.assert_allclose(x, y, atol=1e-5)
    np.testing.assert_allclose(a.chosen[0], np.log(trace.probability), atol=1e-4)
