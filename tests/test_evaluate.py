"""The masked-input value function runs the real model and declares what it measures."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from attnreport.analysis import softmax
from attnreport.core.errors import ConfigError
from attnreport.trace import Tracer
from attnreport.trace.evaluate import MaskedModel


def test_full_and_masked_inputs_match_independent_runs(tiny, tmp_path):
    folder = tiny.export("bert")
    tracer = Tracer(folder, cache_dir=tmp_path)
    (trace,) = tracer.trace_texts(["lock my account now someone is using my card"])
    f = MaskedModel(tracer, trace)
    assert f.players == trace.n_tokens - 2
    decl = f.declaration
    assert decl.output == "probability" and decl.baseline == "[MASK]"
    assert decl.target == tracer.card.labels[int(np.argmax(trace.logits))]
    rng = np.random.default_rng(0)
    masks = rng.random((7, f.players)) < 0.5
    masks[0] = True
    got = f(masks)
    assert got[0] == pytest.approx(softmax(trace.logits)[decl.target_index], abs=1e-6)
    # independent: build the masked ids by hand and run a fresh session one row at a time
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    tok = tracer.tokenizer
    content = tok.encode(trace.text).ids
    for row, mask in zip(got, masks, strict=True):
        ids = np.array(
            [
                tok.prefix_ids
                + [c if keep else decl.baseline_id for c, keep in zip(content, mask, strict=True)]
                + tok.suffix_ids
            ],
            dtype=np.int64,
        )
        (logits,) = session.run(["logits"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})
        assert row == pytest.approx(softmax(logits[0])[decl.target_index], abs=1e-6)


def test_causal_model_uses_the_pad_token_as_baseline_and_logit_output(tiny, tmp_path):
    tracer = Tracer(tiny.export("gpt2-cls"), cache_dir=tmp_path)
    (trace,) = tracer.trace_texts(["where is my parcel"])
    f = MaskedModel(tracer, trace, output="logit")
    assert f.declaration.baseline == "<pad>"
    full = f(np.ones((1, f.players), dtype=bool))
    assert full[0] == pytest.approx(trace.logits[f.declaration.target_index], abs=1e-5)
    with pytest.raises(ValueError, match=r"masks must be \[m, "):
        f(np.ones((2, f.players + 1), dtype=bool))
    with pytest.raises(ConfigError, match="unknown"):
        MaskedModel(tracer, trace, output="odds")
