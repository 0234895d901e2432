"""Generation graphs at export: decoder.onnx against PyTorch's own KV cache, lm_head.onnx against the
final norm + unembedding in PyTorch, the manifest, external data and float16."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from attnreport.core.modelcard import ModelCard
from attnreport.export import export_model

CAUSAL = ["gpt2", "llama", "qwen2"]
PROMPT = "the card was charged twice for the same order"


def load(checkpoint):
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(str(checkpoint), attn_implementation="eager")
    return model.eval(), transformers.AutoTokenizer.from_pretrained(str(checkpoint))


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("family", CAUSAL)
def test_manifest_records_the_generation_graphs(tiny, family):
    folder = tiny.export(family)
    card = ModelCard.load(folder)
    g = card.generation
    assert g is not None and (folder / g.decoder).is_file() and (folder / g.lm_head).is_file()
    assert g.kv_heads == (4 if family == "gpt2" else 2)  # Llama and Qwen2: grouped-query attention
    assert g.head_dim == 8 and g.vocab_size == 300
    assert g.past_names == ["past_key_values.0.key", "past_key_values.0.value"] + [
        "past_key_values.1.key",
        "past_key_values.1.value",
    ]
    assert g.eos_token_ids == [0]
    assert g.checked["greedy_tokens_match"] and g.checked["new_tokens"] == 8
    assert set(g.max_abs_diff) >= {"decoder_attentions", "decoder_logits", "batch_attentions", "lm_head"}
    assert all(0 <= v <= 1e-4 for v in g.max_abs_diff.values()) and g.tolerance == 1e-4
    assert card.dtype == "float32" and card.external_data == [] and card.weights_file is None
    # transformers 5 ties hidden_states[-1] to the final-normed state for all three
    assert g.last_hidden_normed


@pytest.mark.parametrize("family", CAUSAL)
def test_decoder_continues_pytorchs_own_cache(tiny, family):
    """decoder.onnx fed the cache PyTorch built for a prompt gives PyTorch's outputs for the next
    positions (several at once, then one), and an empty cache gives the prefill's; left padding too."""
    import torch

    model, tok = load(tiny.checkpoint(family))
    card = ModelCard.load(tiny.export(family))
    dec = session(tiny.export(family) / "decoder.onnx")
    names = [o.name for o in dec.get_outputs()]
    ids = tok(PROMPT, return_tensors="pt")["input_ids"]
    n = ids.shape[1]
    with torch.no_grad():
        full = model(input_ids=ids, output_attentions=True, output_hidden_states=True)
        head = model(input_ids=ids[:, : n - 3], use_cache=True)
    past = {}
    cache = getattr(head, "cache", None) or head.past_key_values
    for i, layer in enumerate(cache.layers):
        past[f"past_key_values.{i}.key"] = layer.keys.numpy()
        past[f"past_key_values.{i}.value"] = layer.values.numpy()
    for start, end in [(n - 3, n - 1), (n - 1, n)]:
        feed = {"input_ids": ids[:, start:end].numpy(), "attention_mask": np.ones((1, end), np.int64)}
        out = dict(zip(names, dec.run(None, feed | past), strict=True))
        assert out["attentions"].shape == (1, 2, 4, end - start, end)
        want = torch.stack(full.attentions, 1)[0, :, :, start:end, :end].numpy()
        np.testing.assert_allclose(out["attentions"][0], want, atol=1e-5)
        np.testing.assert_allclose(out["logits"][0], full.logits[0, start:end].numpy(), atol=1e-4, rtol=1e-4)
        hidden = torch.stack(full.hidden_states, 1)[0, :, start:end].numpy()
        np.testing.assert_allclose(out["hidden_states"][0], hidden, atol=1e-4, rtol=1e-4)
        past = {
            p: out[q] for p, q in zip(card.generation.past_names, card.generation.present_names, strict=True)
        }
        assert past["past_key_values.0.key"].shape == (1, card.generation.kv_heads, end, 8)
    # the prefill: an empty cache, the prompt left-padded by 4
    empty = {p: np.zeros((1, card.generation.kv_heads, 0, 8), np.float32) for p in card.generation.past_names}
    pad = card.extra["pad_token_id"]
    padded = np.concatenate([np.full((1, 4), pad), ids.numpy()], axis=1)
    mask = np.concatenate([np.zeros((1, 4), np.int64), np.ones((1, n), np.int64)], axis=1)
    out = dict(zip(names, dec.run(None, {"input_ids": padded, "attention_mask": mask} | empty), strict=True))
    np.testing.assert_allclose(
        out["attentions"][0, :, :, 4:, 4:], torch.stack(full.attentions, 1)[0].numpy(), atol=1e-5
    )
    np.testing.assert_allclose(out["logits"][0, 4:], full.logits[0].numpy(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family", CAUSAL)
def test_lm_head_is_the_final_norm_and_unembedding(tiny, family):
    """lm_head.onnx on every layer's hidden state = the final norm + lm_head applied in PyTorch; on
    the pre-norm last state it gives the model's logits."""
    import torch

    model, tok = load(tiny.checkpoint(family))
    head = session(tiny.export(family) / "lm_head.onnx")
    base = model.transformer if family == "gpt2" else model.model
    norm = base.ln_f if family == "gpt2" else base.norm
    ids = tok(PROMPT, return_tensors="pt")["input_ids"]
    seen = {}
    handle = norm.register_forward_hook(lambda m, args, out: seen.update(pre=args[0][0]))
    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=True)
        handle.remove()
        for h in out.hidden_states[:-1]:
            (got,) = head.run(None, {"hidden": h[0].numpy()})
            np.testing.assert_allclose(got, model.lm_head(norm(h[0])).numpy(), atol=1e-4, rtol=1e-4)
        (got,) = head.run(None, {"hidden": seen["pre"].numpy()})
        normed = norm(seen["pre"]).numpy()
    np.testing.assert_allclose(got, out.logits[0].numpy(), atol=1e-4, rtol=1e-4)
    # and hidden_states[-1] is already normed: the lens must not norm it twice
    np.testing.assert_allclose(out.hidden_states[-1][0].numpy(), normed, atol=1e-6)


def test_external_data_is_one_shared_copy_of_the_weights(tiny, tmp_path):
    """Forced external data (threshold 0): the four graphs point into one file that holds each
    weight once (the graphs name the same weight differently), they load and compute exactly what
    the single-file export computes, and generation gives the same tokens, attentions and lens."""
    import onnx
    from safetensors.numpy import load_file

    from attnreport.export.weights import INLINE_BYTES, WEIGHTS_FILE
    from attnreport.trace import GenerationOptions, Generator

    out = tmp_path / "ext"
    card = export_model(tiny.checkpoint("llama"), out, external_data_threshold=0)
    assert card.external_data == ["decoder.onnx", "lm_head.onnx", "model.onnx", "scorer.onnx"]
    assert card.weights_file == WEIGHTS_FILE
    assert sorted(p.name for p in out.glob("*.data")) == [WEIGHTS_FILE]
    regions = {}
    for name in card.external_data:
        graph = onnx.load(str(out / name), load_external_data=False).graph
        outside = [t for t in graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
        info = [dict((e.key, e.value) for e in t.external_data) for t in outside]
        assert {i["location"] for i in info} == {WEIGHTS_FILE}
        regions[name] = {(int(i["offset"]), int(i["length"])) for i in info}
        # every weight matrix is outside the graph file
        assert all(len(t.raw_data) <= INLINE_BYTES for t in graph.initializer if t not in outside)
    # the decoder, the scorer and the lens head read the very bytes model.onnx reads: nothing
    # written twice
    assert regions["decoder.onnx"] <= regions["model.onnx"]
    assert regions["scorer.onnx"] == regions["model.onnx"]
    assert regions["lm_head.onnx"] <= regions["model.onnx"]
    weights = load_file(str(tiny.checkpoint("llama") / "model.safetensors"))
    distinct = {w.tobytes() for w in weights.values() if w.nbytes > INLINE_BYTES}
    stored = (out / WEIGHTS_FILE).stat().st_size
    assert stored == sum(length for _, length in set().union(*regions.values())) == sum(map(len, distinct))
    assert ModelCard.load(out) == card

    one = tiny.export("llama")
    ids = np.array([[0, 5, 9, 14, 20, 7], [1, 1, 0, 5, 9, 14]], dtype=np.int64)
    mask = (ids != 1).astype(np.int64)
    a = session(out / "model.onnx").run(None, {"input_ids": ids, "attention_mask": mask})
    b = session(one / "model.onnx").run(None, {"input_ids": ids, "attention_mask": mask})
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    hidden = np.random.default_rng(0).normal(size=(3, 32)).astype(np.float32)
    np.testing.assert_array_equal(
        session(out / "lm_head.onnx").run(None, {"hidden": hidden})[0],
        session(one / "lm_head.onnx").run(None, {"hidden": hidden})[0],
    )
    options = GenerationOptions(max_new_tokens=5)
    (a,) = Generator(out, use_cache=False).generate_texts([PROMPT], options)
    (b,) = Generator(one, use_cache=False).generate_texts([PROMPT], options)
    assert a.ids.tolist() == b.ids.tolist()
    np.testing.assert_array_equal(a.attentions, b.attentions)
    np.testing.assert_array_equal(a.lens_probability, b.lens_probability)


def test_float16_export_is_checked_with_its_own_tolerance(tiny, tmp_path):
    """--dtype float16: half-precision graphs, checked against PyTorch in float16 with the looser
    tolerance the manifest records; generation still runs and agrees with float32 on the tokens."""
    from attnreport.export.onnx_export import FP16_TOLERANCE
    from attnreport.trace import GenerationOptions, Generator

    out = tmp_path / "fp16"
    card = export_model(tiny.checkpoint("qwen2"), out, dtype="float16")
    assert card.dtype == "float16" and card.generation.tolerance == FP16_TOLERANCE
    assert all(v <= FP16_TOLERANCE for v in card.generation.max_abs_diff.values())
    dec = session(out / "decoder.onnx")
    assert "float16" in next(i for i in dec.get_inputs() if i.name.startswith("past")).type
    options = GenerationOptions(max_new_tokens=4)
    (half,) = Generator(out, use_cache=False).generate_texts([PROMPT], options)
    (full,) = Generator(tiny.export("qwen2"), use_cache=False).generate_texts([PROMPT], options)
    assert half.attentions.dtype == np.float32
    assert half.ids.tolist() == full.ids.tolist()
    assert np.abs(half.attentions - full.attentions).max() < FP16_TOLERANCE
    assert np.abs(half.probability - full.probability).max() < FP16_TOLERANCE
