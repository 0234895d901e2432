"""``export --quantize int4``: the causal LM's graphs replaced by MatMulNBits versions, the weights in
one shared file, greedy generation through the project's Generator, and the manifest's drift against
a computation of its own here (a KV-cache loop over the float32 and the int4 decoders)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from attnreport.core.errors import ExportError
from attnreport.core.modelcard import ModelCard
from attnreport.export import export_model
from attnreport.export.onnx_export import VERIFY_TEXTS

pytest.importorskip("torch")

GRAPHS = ("model.onnx", "decoder.onnx", "scorer.onnx", "lm_head.onnx")
NEW = 8  # the export's CHECK_NEW_TOKENS
LAYERS = 2


def _checkpoint(folder, family: str):
    """A tiny checkpoint whose in-features are multiples of the block size 32 (hidden 64) and, for
    Llama, one that is not (intermediate 80: the down projection's last block is padded)."""
    import torch
    import transformers as T
    from tiny_models import _bytelevel

    torch.manual_seed(0)
    common = dict(
        hidden_size=64,
        num_hidden_layers=LAYERS,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=1,
        vocab_size=300,
    )
    if family == "qwen2":  # a tied unembedding, as Qwen2.5 up to 3B
        model = T.Qwen2ForCausalLM(T.Qwen2Config(intermediate_size=128, tie_word_embeddings=True, **common))
    else:
        model = T.LlamaForCausalLM(T.LlamaConfig(intermediate_size=80, tie_word_embeddings=False, **common))
    model.save_pretrained(str(folder))
    _bytelevel(T, bos=family == "llama").save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Per family: the checkpoint, its int4 export and its float32 export (both with the shared
    weights file for Qwen2, each graph carrying its own weights for Llama)."""
    root = tmp_path_factory.mktemp("int4")
    out = {}
    for family, threshold in (("qwen2", 0), ("llama", 1 << 26)):
        ck = _checkpoint(root / f"ck-{family}", family)
        int4 = root / f"int4-{family}"
        fp32 = root / f"fp32-{family}"
        export_model(ck, int4, quantize="int4", external_data_threshold=threshold)
        if family == "qwen2":
            export_model(ck, fp32, external_data_threshold=threshold)
        out[family] = ck, int4, fp32
    return out


@pytest.mark.parametrize("family", ["qwen2", "llama"])
def test_the_graphs_are_replaced_by_matmulnbits_ones(made, family):
    _, folder, _ = made[family]
    card = ModelCard.load(folder)
    q = card.quantized
    assert q["bits"] == 4 and q["block_size"] == 32 and q["file"] is None
    assert not (folder / "int4").exists() and not list(folder.glob("*int8*"))
    tied = family == "qwen2"
    for name in GRAPHS:
        graph = onnx.load(str(folder / name), load_external_data=False).graph
        ops = [n.op_type for n in graph.node]
        # decoder.onnx's value-norm factors ([H, head_dim, head_dim] a layer) stay float32 by design
        # (`attnreport.export.value_norms`): MatMulNBits takes 2-D weights only
        factors = {i.name for i in graph.initializer if len(i.dims) == 3}
        inits = {i.name for i in graph.initializer} - factors
        by_factor = [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in factors]
        assert len(by_factor) == (LAYERS if name == "decoder.onnx" else 0)
        # every weight matrix is 4-bit: no float MatMul or Gemm reads a constant or a transposed one
        assert not [n for n in graph.node if n.op_type in ("MatMul", "Gemm") and n.input[1] in inits]
        assert "Gemm" not in ops
        counts = q["graphs"][name]
        if name == "lm_head.onnx":
            assert counts == {
                "quantized_matmuls": 1,
                "untied": int(tied),
                "float_weight_matmuls": 0,
                "activation_matmuls": 0,
            }
        else:  # 7 linears a layer and the unembedding; queries x keys, attention x values stay float
            assert counts["quantized_matmuls"] == ops.count("MatMulNBits") == 7 * LAYERS + 1
            assert counts["untied"] == int(tied) and counts["float_weight_matmuls"] == len(by_factor)
            assert counts["activation_matmuls"] == ops.count("MatMul") - len(by_factor) == 2 * LAYERS
            assert "Gather" in ops  # the embedding: float32, not quantized
    assert q["int4_graph_bytes"] < q["fp32_graph_bytes"]


def test_the_shared_weights_file_holds_each_tensor_once(made):
    """model.onnx and decoder.onnx point at the same bytes for the float32 embedding and for every
    4-bit weight; the file holds nothing twice."""
    _, folder, fp32 = made["qwen2"]
    card = ModelCard.load(folder)
    assert card.weights_file == "weights.onnx.data" and card.external_data == sorted(GRAPHS)
    where = {}
    for name in GRAPHS:
        graph = onnx.load(str(folder / name), load_external_data=False).graph
        for init in graph.initializer:
            if init.data_location == onnx.TensorProto.EXTERNAL:
                info = {e.key: e.value for e in init.external_data}
                assert info["location"] == card.weights_file
                where.setdefault(name, {})[init.name] = (int(info["offset"]), int(info["length"]))
    spans = {span for graph in where.values() for span in graph.values()}
    assert sum(length for _, length in spans) <= (folder / card.weights_file).stat().st_size
    embedding = [s for s in where["model.onnx"].values() if s[1] == 300 * 64 * 4]
    assert len(embedding) == 1 and embedding[0][1] == 300 * 64 * 4  # float32, once
    assert embedding[0] in where["decoder.onnx"].values()
    assert set(where["lm_head.onnx"].values()) <= set(where["decoder.onnx"].values())
    ends = sorted((offset, offset + length) for offset, length in spans)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(ends, ends[1:], strict=False))
    assert (folder / card.weights_file).stat().st_size < (fp32 / card.weights_file).stat().st_size


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _steps(session, prompt: list[int], forced: list[int] | None):
    """A KV-cache loop of this test's own: the prompt at once, then one token a step, the greedy one
    or `forced`'s. Per step: the chosen token, log-softmax of the logits, and every attention row."""
    names = [o.name for o in session.get_outputs()]
    past = {
        i.name: np.zeros((1, i.shape[1], 0, i.shape[3]), np.float32)
        for i in session.get_inputs()
        if i.name.startswith("past")
    }
    ids, tokens, logprobs, attentions = list(prompt), [], [], []
    feed = np.array([prompt], np.int64)
    for t in range(NEW):
        got = dict(
            zip(
                names,
                session.run(
                    None, {"input_ids": feed, "attention_mask": np.ones((1, len(ids)), np.int64)} | past
                ),
                strict=True,
            )
        )
        past = {p: got[p.replace("past_key_values", "present")] for p in past}
        attentions.append(got["attentions"][0])
        logits = got["logits"][0, -1].astype(np.float64)
        logprobs.append(logits - logits.max() - np.log(np.exp(logits - logits.max()).sum()))
        token = int(np.argmax(logits)) if forced is None else forced[t]
        tokens.append(token)
        ids.append(token)
        feed = np.array([[token]], np.int64)
    return tokens, logprobs, attentions


def test_the_drift_in_the_manifest_is_what_the_two_decoders_give(made):
    import transformers

    ck, folder, fp32 = made["qwen2"]
    q = ModelCard.load(folder).quantized
    tok = transformers.AutoTokenizer.from_pretrained(str(ck))
    prompts = [tok(t, add_special_tokens=True)["input_ids"][: 64 - NEW] for t in VERIFY_TEXTS]
    agree, diffs, attention = np.zeros(NEW, int), [], 0.0
    a_session, b_session = _session(fp32 / "decoder.onnx"), _session(folder / "decoder.onnx")
    for prompt in prompts:
        answer, lp_a, att_a = _steps(a_session, prompt, None)
        _, lp_b, att_b = _steps(b_session, prompt, answer)
        agree += [int(np.argmax(b)) == tok_ for b, tok_ in zip(lp_b, answer, strict=True)]
        diffs += [b[tok_] - a[tok_] for a, b, tok_ in zip(lp_a, lp_b, answer, strict=True)]
        # the prompt's rows, then each step's: every query of prompt + answer but the last token
        attention = max(attention, *(float(np.max(np.abs(x - y))) for x, y in zip(att_a, att_b, strict=True)))
    assert q["prompts"] == 3 and q["new_tokens"] == NEW
    assert q["top1_agree_per_step"] == agree.tolist()
    assert q["top1_agreement"] == pytest.approx(agree.sum() / (3 * NEW))
    assert q["max_abs_logprob_diff"] == pytest.approx(np.max(np.abs(diffs)), abs=1e-4)
    assert q["mean_logprob_diff"] == pytest.approx(np.mean(diffs), abs=1e-4)
    assert q["max_attention_diff"] == pytest.approx(attention, abs=1e-5)
    # 4-bit weights move the numbers, but not past recognition on a random model
    assert 0 < q["max_attention_diff"] < 0.5 and q["max_abs_logprob_diff"] > 0
    assert q["fp32_tokens_per_s"] > 0 and q["int4_tokens_per_s"] > 0


@pytest.mark.parametrize("family", ["qwen2", "llama"])
def test_greedy_generation_runs_from_the_int4_folder(made, family):
    """The Generator runs on the int4 graphs unchanged and answers as this test's own greedy loop
    over the int4 decoder does, the logit lens included."""
    import transformers

    from attnreport.trace.decoding import GenerationOptions
    from attnreport.trace.generate import Generator, Prompt

    ck, folder, _ = made[family]
    text = "the card was charged twice"
    (trace,) = Generator(folder, use_cache=False).generate(
        [Prompt("p", text)], GenerationOptions(max_new_tokens=NEW, eos=False)
    )
    prompt = transformers.AutoTokenizer.from_pretrained(str(ck))(text, add_special_tokens=True)["input_ids"]
    want, _, _ = _steps(_session(folder / "decoder.onnx"), prompt, None)
    assert trace.prompt_ids.tolist() == prompt and trace.ids.tolist() == want


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (dict(quantize="int4", task="sequence-classification"), "use --quantize int8"),
        (dict(quantize="int4", dtype="float16"), "drop --dtype float16"),
        (dict(quantize="int4", generation=False), "drop --no-generation"),
        (dict(quantize="int2"), "known: int4, int8"),
    ],
)
def test_int4_is_refused_where_it_does_not_apply(tiny, tmp_path, options, said):
    options = dict(options)
    family = "bert" if options.pop("task", None) else "qwen2"
    with pytest.raises(ExportError, match=said):
        export_model(tiny.checkpoint(family), tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


def test_the_cli_offers_the_registrys_choices():
    from attnreport.cli import parser

    args = parser().parse_args(["export", "ck", "-o", "out", "--quantize", "int4"])
    assert args.quantize == "int4"
    with pytest.raises(SystemExit):
        parser().parse_args(["export", "ck", "-o", "out", "--quantize", "int3"])


def test_a_generation_report_on_the_int4_export_says_what_4_bit_weights_change(made, tmp_path):
    import json

    from attnreport.core.config import load_config
    from attnreport.pipeline import build

    _, folder, _ = made["qwen2"]
    (tmp_path / "prompts.jsonl").write_text(json.dumps({"id": "a", "prompt": "refill please"}) + "\n")
    config = tmp_path / "report.toml"
    config.write_text(
        f'title = "int4"\ncache_dir = "cache"\n[model]\npath = "{folder}"\n[data]\npath = "prompts.jsonl"\n'
        "[generate]\nmax_new_tokens = 4\n",
        encoding="utf-8",
    )
    result = build(load_config(config), tmp_path / "site", progress=False, log=lambda m: None)
    report = json.loads((result.site / "report.json").read_text(encoding="utf-8"))
    q = ModelCard.load(folder).quantized
    assert report["model"]["onnx"]["quantized"]["top1_agreement"] == q["top1_agreement"]
    page = (result.site / "index.html").read_text(encoding="utf-8")
    line = page[page.index('<dd id="int4">') :].split("</dd>")[0]
    assert "4 bits" in line and "differs a little from the float32 model" in line
    assert f"{100 * q['top1_agreement']:.0f}% of steps" in line
    assert f"{q['max_attention_diff']:.3f}" in line
