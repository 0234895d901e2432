"""Value norms ‖v_j^h W_O^h‖ (norm-weighted attention, Kobayashi et al. 2020) in decoder.onnx and in
generation traces, against a reference read with PyTorch forward hooks on the value projections and
multiplied by hand-cut slices of the output projection; the reference's own head slicing is shown
to matter (a permuted slice differs by far more than the tolerance)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from test_generation import make

from attnreport.core.errors import ExportError
from attnreport.core.generation import GenerationTrace
from attnreport.core.modelcard import MANIFEST_NAME, ModelCard
from attnreport.trace import GenerationOptions, Generator, Prompt

CAUSAL = ["gpt2", "llama", "qwen2"]
PROMPTS = [
    "the card was charged twice for the same order",
    "refill please",
    "my blood pressure readings have been high all week and where is my parcel",
]
TOLERANCE = 1e-4


def load(checkpoint):
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(str(checkpoint), attn_implementation="eager")
    return model.eval(), transformers.AutoTokenizer.from_pretrained(str(checkpoint))


def hooked_value_norms(model, ids, *, head_of=lambda h, heads: h) -> np.ndarray:
    """``[L, H, m]`` float64: each key's value read with a forward hook on the value projection
    (Llama/Qwen2 ``v_proj``; GPT-2's ``c_attn``, whose last third is the value), key-value head
    ``h // (H / kv)`` for query head h, times the columns ``h * hd .. (h + 1) * hd`` of the output
    projection (a Linear ``[out, in]``; GPT-2's Conv1D ``[in, out]``). `head_of` picks the slice
    a head is multiplied by: the identity, or a wrong one for the control."""
    import torch

    cfg = model.config
    heads = cfg.num_attention_heads
    gpt2 = cfg.model_type == "gpt2"
    layers = model.transformer.h if gpt2 else model.model.layers
    seen, handles = [], []
    for layer in layers:
        proj = layer.attn.c_attn if gpt2 else layer.self_attn.v_proj
        handles.append(
            proj.register_forward_hook(lambda mod, args, out: seen.append(out[0].double().numpy()))
        )
    try:
        with torch.no_grad():
            model(input_ids=torch.tensor([list(ids)]), use_cache=False)
    finally:
        for h in handles:
            h.remove()
    out = []
    for layer, v in zip(layers, seen, strict=True):
        if gpt2:
            d = cfg.n_embd
            v = v[:, 2 * d :]
            w = layer.attn.c_proj.weight.detach().double().numpy().T  # Conv1D [in, out] -> [out, in]
        else:
            w = layer.self_attn.o_proj.weight.detach().double().numpy()  # Linear [out, in]
        hd = w.shape[1] // heads
        kv = v.shape[1] // hd
        v = v.reshape(len(ids), kv, hd)
        norms = np.zeros((heads, len(ids)))
        for h in range(heads):
            s = head_of(h, heads)
            norms[h] = np.linalg.norm(v[:, h // (heads // kv)] @ w[:, s * hd : (s + 1) * hd].T, axis=-1)
        out.append(norms)
    return np.stack(out)


def onnx_value_norms(folder, rows, *, chunk=4) -> list[np.ndarray]:
    """decoder.onnx on the left-padded `rows`, prefilled `chunk` positions at a time against the
    growing cache: per row ``[L, H, len(row)]`` over its real positions."""
    import onnxruntime as ort

    card = ModelCard.load(folder)
    g = card.generation
    session = ort.InferenceSession(str(folder / g.decoder), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    b, n = len(rows), max(len(r) for r in rows)
    ids = np.full((b, n), 1, np.int64)
    mask = np.zeros((b, n), np.int64)
    for i, r in enumerate(rows):
        ids[i, n - len(r) :], mask[i, n - len(r) :] = r, 1
    past = {p: np.zeros((b, g.kv_heads, 0, g.head_dim), np.float32) for p in g.past_names}
    parts = []
    for start in range(0, n, chunk):
        out = dict(
            zip(
                names,
                session.run(
                    None,
                    {"input_ids": ids[:, start : start + chunk]}
                    | {"attention_mask": mask[:, : start + chunk]}
                    | past,
                ),
                strict=True,
            )
        )
        assert out["value_norms"].shape == (b, card.layers, card.heads, min(chunk, n - start))
        assert out["value_norms"].dtype == np.float32
        parts.append(out["value_norms"])
        past = {p: out[q] for p, q in zip(g.past_names, g.present_names, strict=True)}
    norms = np.concatenate(parts, axis=-1)
    return [norms[i, :, :, n - len(r) :] for i, r in enumerate(rows)]


def largest(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)))


@pytest.mark.parametrize("family", CAUSAL)
def test_decoder_value_norms_match_hooks_on_a_padded_batch(tiny, family):
    model, tok = load(tiny.checkpoint(family))
    folder = tiny.export(family)
    card = ModelCard.load(folder)
    assert card.generation.value_norms == "value_norms"
    assert card.generation.max_abs_diff["decoder_value_norms"] <= TOLERANCE
    assert card.generation.max_abs_diff["batch_value_norms"] <= TOLERANCE
    if family != "gpt2":  # grouped-query attention: 2 key-value heads for 4 query heads
        assert card.generation.kv_heads == 2 and card.heads == 4
    rows = [tok(p)["input_ids"] for p in PROMPTS]
    for row, got in zip(rows, onnx_value_norms(folder, rows), strict=True):
        want = hooked_value_norms(model, row)
        assert got.shape == want.shape == (2, 4, len(row))
        assert largest(got, want) <= TOLERANCE * max(1.0, float(want.max()))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)
        # the control: the reference's head slicing is what the comparison tests
        wrong = hooked_value_norms(model, row, head_of=lambda h, heads: (h + 1) % heads)
        assert largest(got, wrong) > 10 * TOLERANCE


def test_one_head_by_hand(tiny):
    """Layer 0, head 3, key 0 of the Llama: v from v_proj's weight on the embedding after the input
    norm (key-value head 1 of 2), times o_proj's columns 24..31."""
    import torch

    model, tok = load(tiny.checkpoint("llama"))
    row = tok(PROMPTS[1])["input_ids"]
    attn = model.model.layers[0].self_attn
    with torch.no_grad():
        x = model.model.layers[0].input_layernorm(model.model.embed_tokens(torch.tensor([row[0]])))[0]
        v = (attn.v_proj.weight @ x)[8:16]  # key-value head 1 (query heads 2 and 3 read it)
        want = float(torch.linalg.vector_norm(attn.o_proj.weight[:, 24:32] @ v))
    (got,) = onnx_value_norms(tiny.export("llama"), [row])
    assert abs(float(got[0, 3, 0]) - want) <= 1e-6
    assert abs(float(got[0, 1, 0]) - want) > 1e-4  # head 1 reads key-value head 0 and columns 8..15


@pytest.mark.parametrize("family", CAUSAL)
def test_generation_traces_hold_every_keys_value_norm(tiny, family):
    """A left-padded batch, prefilled in chunks of 3: prompt keys from the prefill, answer keys from
    the steps; and a forced answer, all read from one prefill."""
    model, _ = load(tiny.checkpoint(family))
    gen = Generator(tiny.export(family), use_cache=False, batch_size=3, prefill_chunk=3)
    traces = gen.generate_texts(PROMPTS, GenerationOptions(max_new_tokens=6, eos=False, lens=False))
    (forced,) = gen.generate([Prompt("f", PROMPTS[1], completion="the card was charged")])
    assert forced.forced and forced.steps > 1
    for trace in [*traces, forced]:
        keys = trace.n_prompt + trace.steps - 1
        assert trace.value_norms.shape == (2, 4, keys)
        want = hooked_value_norms(model, [*trace.prompt_ids, *trace.ids[:-1]])
        np.testing.assert_allclose(trace.value_norms, want, rtol=1e-4, atol=1e-7)
    assert len({t.n_prompt for t in traces}) == 3  # the batch was padded


def test_value_norms_round_trip_and_shape_check():
    g = make()
    g = GenerationTrace(**{**vars(g), "value_norms": np.random.default_rng(1).random((2, 2, 6))})
    back = GenerationTrace.from_bytes(g.to_bytes())
    np.testing.assert_array_equal(back.value_norms, g.value_norms)
    assert back.value_norms.dtype == np.float32
    with pytest.raises(ValueError, match=r"value_norms must be \[2, 2, 6\].*got \[2, 2, 5\]"):
        GenerationTrace(**{**vars(g), "value_norms": g.value_norms[..., :5]})


def test_a_trace_without_value_norms_still_loads():
    old = make()
    assert old.value_norms is None
    back = GenerationTrace.from_bytes(old.to_bytes())
    assert back.value_norms is None


def test_an_export_without_value_norms_gives_traces_without(tiny, tmp_path):
    """A manifest written before the field: the card reads None, and the trace keeps none."""
    folder = tmp_path / "old"
    shutil.copytree(tiny.export("llama"), folder)
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    del manifest["generation"]["value_norms"]
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    assert ModelCard.load(folder).generation.value_norms is None
    (trace,) = Generator(folder, use_cache=False).generate_texts(
        PROMPTS[:1], GenerationOptions(max_new_tokens=3)
    )
    assert trace.value_norms is None


def test_the_export_check_fails_on_wrong_value_norms(tiny):
    """The export's check passes on the right references, and against references made with
    permuted head slices it is an ExportError that names the value norms and their difference."""
    import onnxruntime as ort
    import torch

    from attnreport.export.decoder import GenerationCheck, check_decoder, decoder_reference
    from attnreport.export.value_norms import value_norm_layout

    model, tok = load(tiny.checkpoint("llama"))
    folder = tiny.export("llama")
    layout, why = value_norm_layout(model, 2)
    assert layout is not None, why
    rows = [tok(p)["input_ids"] for p in PROMPTS[:2]]

    def references(slices):
        return [decoder_reference(model, r, pad_id=1, slices=slices) for r in rows]

    session = ort.InferenceSession(str(folder / "decoder.onnx"), providers=["CPUExecutionProvider"])
    diffs, _ = check_decoder(session, rows, references(layout.slices), pad_id=1, layers=2)
    assert 0 <= diffs["decoder_value_norms"] <= TOLERANCE and diffs["batch_value_norms"] <= TOLERANCE
    wrong = [torch.roll(w, 1, dims=0) for w in layout.slices]  # head h gets head h - 1's slice
    bad = GenerationCheck(
        folder=folder,
        rows=rows,
        references=references(wrong),
        lens_reference=None,
        pad_id=1,
        layers=2,
        tolerance=TOLERANCE,
        card={},
    )
    with pytest.raises(ExportError, match=r"decoder_value_norms differ from PyTorch by \d\.\d\de-0\d"):
        bad.verify(lambda line: None)
