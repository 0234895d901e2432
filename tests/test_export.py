"""Export: numerics against PyTorch on padded batches, the manifest, head.onnx, refusals."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest
from tiny_models import FAMILIES

from attnreport.core.errors import ExportError
from attnreport.core.modelcard import ModelCard
from attnreport.export import export_model

TEXTS = ["lock my account now", "refill please", "the card was charged twice for the same order, why"]


def torch_reference(checkpoint, family: str, text: str):
    """The checkpoint run alone in PyTorch on one unpadded text: attentions, hidden, logits."""
    import torch
    import transformers

    task_cls = {
        "gpt2": transformers.AutoModelForCausalLM,
        "llama": transformers.AutoModelForCausalLM,
        "qwen2": transformers.AutoModelForCausalLM,
    }.get(family, transformers.AutoModelForSequenceClassification)
    model = task_cls.from_pretrained(str(checkpoint), attn_implementation="eager").eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(checkpoint))
    ids = tok(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model(input_ids=ids, output_attentions=True, output_hidden_states=True)
    logits = out.logits[0, -1] if out.logits.ndim == 3 else out.logits[0]
    if family == "gpt2-cls":
        logits = out.logits[0]
    return (
        torch.stack(out.attentions, 1)[0].numpy(),
        torch.stack(out.hidden_states, 1)[0].numpy(),
        logits.numpy(),
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_padded_batch_matches_pytorch(tiny, family):
    """The exported graph on a padded batch of three lengths equals PyTorch on each text alone."""
    import transformers

    folder = tiny.export(family)
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    tok = transformers.AutoTokenizer.from_pretrained(str(tiny.checkpoint(family)))
    rows = [tok(t)["input_ids"] for t in TEXTS]
    n = max(map(len, rows))
    pad = ModelCard.load(folder).extra["pad_token_id"]
    ids = np.full((len(rows), n), pad, dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, : len(r)], mask[i, : len(r)] = r, 1
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(None, {"input_ids": ids, "attention_mask": mask}), strict=True))
    assert out["attentions"].shape[:3] == (3, 2, 4)
    for i, text in enumerate(TEXTS):
        m = len(rows[i])
        attn, hidden, logits = torch_reference(tiny.checkpoint(family), family, text)
        np.testing.assert_allclose(out["attentions"][i, :, :, :m, :m], attn, atol=1e-5)
        np.testing.assert_allclose(out["hidden_states"][i, :, :m], hidden, atol=1e-4, rtol=1e-4)
        np.testing.assert_allclose(out["logits"][i], logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family", ["bert", "gpt2-cls", "llama"])
def test_manifest_records_the_model(tiny, family):
    card = ModelCard.load(tiny.export(family))
    config = json.loads((tiny.checkpoint(family) / "config.json").read_text())
    assert card.layers == 2 and card.heads == 4 and card.hidden_size == 32
    assert card.causal is (family != "bert")
    assert card.read_position == ("first" if family == "bert" else "last")
    assert card.opset == 18
    assert len(card.weights_sha256) == 64
    assert set(card.max_abs_diff) >= {"attentions", "hidden_states", "logits"}
    assert all(0 <= v <= 1e-4 for v in card.max_abs_diff.values())
    if family == "llama":
        assert card.task == "causal-lm" and card.labels == [] and not card.has_head
    else:
        assert card.task == "sequence-classification"
        assert card.labels == [config["id2label"][str(i)] for i in range(3)]
        assert card.has_head


@pytest.mark.parametrize("family", ["bert", "distilbert", "roberta", "gpt2-cls"])
def test_head_reproduces_logits_from_hidden_state(tiny, family):
    """head.onnx on the pooled final hidden state gives the full model's logits."""
    import torch
    import transformers

    folder = tiny.export(family)
    head = ort.InferenceSession(str(folder / "head.onnx"), providers=["CPUExecutionProvider"])
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        str(tiny.checkpoint(family)), attn_implementation="eager"
    ).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(tiny.checkpoint(family)))
    ids = tok(TEXTS[2], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=True)
    read = -1 if family == "gpt2-cls" else 0
    pooled = out.hidden_states[-1][0, read].numpy()[None]
    (logits,) = head.run(None, {"hidden": np.repeat(pooled, 5, axis=0)})
    assert logits.shape == (5, 3)
    np.testing.assert_allclose(logits[3], out.logits[0].numpy(), atol=1e-5)


def test_int8_export_records_speed_and_attention_cost(tiny):
    folder = tiny.export("bert", quantize="int8")  # the session's, shared with test_compare
    q = tiny.card("bert", quantize="int8").quantized
    assert (folder / "model.int8.onnx").is_file()
    assert q["fp32_seq_per_s"] > 0 and q["int8_seq_per_s"] > 0
    assert 0 <= q["max_attention_diff"] <= 1
    assert ModelCard.load(folder).quantized == q


def test_pickle_only_checkpoint_is_refused_and_no_export_warns_about_torchvision(tiny, tmp_path, capfd):
    """A pickle-only checkpoint is refused without --allow-pickle, and exports with it.

    That export also checks what every export logs (merged here to save an export): the dynamo
    exporter logs one line per torchvision op it skips, on every export; none of our models use
    them. Other warnings of that logger still pass, and its filter is removed."""
    import importlib.util
    import logging

    import torch
    from safetensors.torch import load_file

    from attnreport.export.onnx_export import TORCHVISION_LOGGER

    src = tiny.checkpoint("bert")
    ck = tmp_path / "pickled"
    shutil.copytree(src, ck)
    weights = load_file(str(ck / "model.safetensors"))
    (ck / "model.safetensors").unlink()
    torch.save(weights, ck / "pytorch_model.bin")
    with pytest.raises(ExportError, match="pickle.*--allow-pickle"):
        export_model(ck, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    logger = logging.getLogger(TORCHVISION_LOGGER)
    filters = list(logger.filters)
    capfd.readouterr()
    card = export_model(ck, tmp_path / "out", allow_pickle=True)
    assert card.layers == 2
    # with torchvision installed the exporter has nothing to warn about: only the filter is checked
    if importlib.util.find_spec("torchvision") is None:
        assert "torchvision" not in capfd.readouterr().err
    assert logger.filters == filters


def test_remote_code_is_refused(tiny, tmp_path):
    ck = tmp_path / "remote"
    shutil.copytree(tiny.checkpoint("bert"), ck)
    config = json.loads((ck / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
    (ck / "config.json").write_text(json.dumps(config))
    with pytest.raises(ExportError, match="--trust-remote-code"):
        export_model(ck, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_model_without_attention_weights_is_refused(tmp_path):
    """A state-space model has no attention to show: refused, nothing written."""
    import transformers

    cfg = transformers.MambaConfig(vocab_size=300, hidden_size=16, state_size=4, num_hidden_layers=1)
    ck = tmp_path / "mamba"
    transformers.MambaForCausalLM(cfg).save_pretrained(str(ck))
    from tiny_models import _bytelevel

    _bytelevel(transformers, bos=False).save_pretrained(str(ck))
    with pytest.raises(ExportError, match="attention"):
        export_model(ck, tmp_path / "out", task="feature-extraction")
    assert not (tmp_path / "out").exists()


def test_not_a_checkpoint_and_foreign_output_folder(tiny, tmp_path):
    with pytest.raises(ExportError, match="config.json"):
        export_model(tmp_path, tmp_path / "out")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "thesis.tex").write_text("precious")
    with pytest.raises(ExportError, match="not an attnreport export"):
        export_model(tiny.checkpoint("bert"), occupied)
    assert (occupied / "thesis.tex").read_text() == "precious"


def test_killed_export_leaves_the_previous_export_and_the_next_one_cleans_up(tiny, tmp_path):
    """SIGKILL while the new export is being written: the old one is intact and loads."""
    import signal
    import subprocess
    import sys
    import time

    from attnreport.trace import Tracer

    out = tmp_path / "model"
    shutil.copytree(tiny.export("bert"), out)
    before = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    code = "import sys; from attnreport.export import export_model\nexport_model(sys.argv[1], sys.argv[2])\n"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tiny.checkpoint("bert")), str(out)], stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    # killed once model.onnx is in the new folder: while head.onnx is exported and checked
    while (
        not list(tmp_path.glob(".model.build-*/model.onnx"))
        and time.time() < deadline
        and proc.poll() is None
    ):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(tmp_path.glob(".model.build-*/model.onnx")), "the export was not caught mid-way"
    assert not list(tmp_path.glob(".model.build-*/attnreport.json"))
    after = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert after == before
    tracer = Tracer(out, use_cache=False)
    (trace,) = tracer.trace_texts(["refill please"])
    assert trace.attentions.shape[:2] == (2, 4)

    card = export_model(tiny.checkpoint("bert"), out)
    assert ModelCard.load(out) == card
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no build or old folders left


def test_the_exported_torch_model_is_freed_after_export(tmp_path):
    """onnxscript's rewrite rules keep the last graph they matched, whose initializers are the torch
    parameters: without `release_exporter_state` the weights outlive ``del model`` and the export's
    check sessions hold them a second time."""
    import gc
    import weakref

    import torch

    from attnreport.export.onnx_export import _onnx_export, release_exporter_state

    class Small(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.first, self.norm = torch.nn.Linear(64, 64), torch.nn.LayerNorm(64)
            self.last = torch.nn.Linear(64, 8)

        def forward(self, x):
            return self.last(self.norm(self.first(x)))

    model = Small()
    alive = weakref.ref(model.first.weight)
    dim = torch.export.Dim("batch", min=1, max=64)
    _onnx_export(
        model,
        (torch.zeros(2, 64),),
        tmp_path / "m.onnx",
        input_names=["x"],
        output_names=["y"],
        dynamic_shapes={"x": {0: dim}},
    )
    del model
    gc.collect()
    leaked = alive() is not None  # onnxscript 0.7 keeps it; a later release may not
    release_exporter_state()
    assert alive() is None, "the exported parameters are still referenced after release_exporter_state"
    assert isinstance(leaked, bool)
    (y,) = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"x": np.ones((3, 64), np.float32)})
    assert y.shape == (3, 8)
