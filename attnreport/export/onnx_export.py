"""Export a Hugging Face checkpoint to ONNX with logits, every attention and every hidden state.

Over 400 lines because export and its check against PyTorch on a padded batch are one
step: an export that was not checked is never written.

Why the dynamo exporter: the legacy TorchScript exporter bakes the padding length into
the graph, so attentions on padded rows come out wrong.
Every export is checked against PyTorch on a padded batch of different lengths before
it is accepted, and the differences are written into the manifest.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import io
import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from attnreport.core.errors import ExportError
from attnreport.core.files import guard_output, replace_folder
from attnreport.core.modelcard import ModelCard, QKCard, is_exported
from attnreport.core.padding import pad_batch
from attnreport.export.checkpoint import (
    HEAD_FAMILIES,
    Checkpoint,
    inspect_checkpoint,
    weights_sha256,
)
from attnreport.export.qk import QK_OUTPUTS, softmax_check
from attnreport.export.quantize import QUANTIZERS, check_quantize
from attnreport.export.sessions import open_check_session
from attnreport.export.weights import WEIGHTS_FILE, SharedWeights

#: largest accepted difference to PyTorch: absolute for attention probabilities,
#: relative to the largest magnitude for hidden states and logits
TOLERANCE = 1e-4
#: the same for float16 exports: half precision moves attention weights by ~1e-3
FP16_TOLERANCE = 2e-2
OPSET = 18
#: graphs of checkpoints whose weights exceed this many bytes keep them in one external-data file
#: shared by every graph (`attnreport.export.weights`); below it each graph carries its own copy,
#: which costs a protobuf-serialised copy in memory per graph and one per graph in the folder
EXTERNAL_DATA_THRESHOLD = 1 << 26
DTYPES = {"float32": "float32", "float16": "float16"}
VERIFY_TEXTS = (
    "The card was charged twice for the same order.",
    "Refill please.",
    "My blood pressure readings have been high all week, and the new tablets make me dizzy "
    "in the mornings; should I keep taking them until the appointment on Friday?",
)

Log = Callable[[str], None]


#: the dynamo exporter's op registry logs, on every export, one warning per torchvision op it
#: skips ("torchvision is not installed. Skipping torchvision::nms"): no model here uses them
TORCHVISION_LOGGER = "torch.onnx._internal.exporter._registration"


def _not_torchvision(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("torchvision is not installed")


@contextlib.contextmanager
def _log_filter(name: str, keep: Callable[[logging.LogRecord], bool]):
    logger = logging.getLogger(name)
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


@contextlib.contextmanager
def _no_progress_bars():
    """transformers' own progress bars ("Loading weights") off for the duration: the export logs its
    steps itself, and a bar's carriage returns garble log files."""
    from transformers.utils import logging as hf_logging

    was_off = hf_logging.is_progress_bar_enabled() is False
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if not was_off:
            hf_logging.enable_progress_bar()


def _quiet() -> contextlib.AbstractContextManager:
    """Silence torch's and transformers' chatter (warnings, stdout, the torchvision log lines,
    progress bars) during load and export."""
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(_log_filter(TORCHVISION_LOGGER, _not_torchvision))
    stack.enter_context(_no_progress_bars())
    return stack


def _load(ck: Checkpoint, *, trust_remote_code: bool, dtype: str = "float32"):
    import torch
    import transformers

    classes = {
        "sequence-classification": transformers.AutoModelForSequenceClassification,
        "causal-lm": transformers.AutoModelForCausalLM,
        "feature-extraction": transformers.AutoModel,
    }
    try:
        with _quiet():
            model = classes[ck.task].from_pretrained(
                str(ck.folder),
                attn_implementation="eager",
                dtype=getattr(torch, dtype),
                trust_remote_code=trust_remote_code,
                use_safetensors=not ck.uses_pickle,
            )
    except (ValueError, OSError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"{ck.folder}: cannot load as {ck.task} with eager attention ({first})") from exc
    model.eval()
    return model


def _load_tokenizer(ck: Checkpoint, *, trust_remote_code: bool):
    import transformers

    try:
        with _quiet():
            tok = transformers.AutoTokenizer.from_pretrained(
                str(ck.folder), use_fast=True, trust_remote_code=trust_remote_code
            )
    except (ValueError, OSError, KeyError, TypeError) as exc:
        raise ExportError(f"{ck.folder}: no usable tokenizer ({exc}); add tokenizer files") from exc
    if not getattr(tok, "is_fast", False):
        raise ExportError(f"{ck.folder}: only a slow tokenizer is available; add tokenizer.json")
    return tok


def _make_head(model, family: str | None):
    """The classification head alone: pooled final hidden state [N, d] -> logits [N, C]."""
    import torch

    if family is None:
        return None

    class Head(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, hidden):
            m = self.model
            if family == "bert_pooler":
                return m.classifier(m.bert.pooler(hidden.unsqueeze(1)))
            if family == "distilbert":
                return m.classifier(torch.relu(m.pre_classifier(hidden)))
            if family == "roberta":
                return m.classifier(hidden.unsqueeze(1))
            return m.score(hidden)

    return Head(model)


def _make_wrapper(model, *, task: str, causal: bool, head, with_qk: bool = False):
    """The graph's module: (logits,) attentions, hidden states, and with `with_qk` the queries and
    keys (`attnreport.export.qk`); the scale of each layer's scores is left in ``scales``."""
    import torch

    from attnreport.export.qk import capture_qk, stacked

    class AllOutputs(torch.nn.Module):
        def __init__(self, model, head):
            super().__init__()
            self.model = model
            self.head = head
            self.scales: list[float] = []

        def forward(self, input_ids, attention_mask):
            kwargs = {"use_cache": False} if causal else {}
            with capture_qk() if with_qk else contextlib.nullcontext([]) as calls:
                out = self.model(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    output_attentions=True,
                    output_hidden_states=True,
                    return_dict=True,
                    **kwargs,
                )
            attentions = torch.stack(tuple(out.attentions), dim=1)
            hidden = torch.stack(tuple(out.hidden_states), dim=1)
            qk = ()
            if with_qk:
                queries, keys, self.scales = stacked(calls, attentions.shape[1])
                qk = (queries, keys)
            if task == "feature-extraction":
                return attentions, hidden, *qk
            rows = torch.arange(input_ids.shape[0])
            read = attention_mask.sum(dim=1) - 1 if causal else torch.zeros_like(rows)
            if task == "causal-lm":
                logits = out.logits[rows, read]
            elif self.head is not None:
                logits = self.head(hidden[:, -1][rows, read])
            else:
                logits = out.logits
            return logits, attentions, hidden, *qk

    return AllOutputs(model, head)


def _batch(tok, texts: tuple[str, ...], max_len: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The check batch: `texts` tokenized, cut to `max_len`, padded as the tracer pads."""
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    rows = [tok(t, add_special_tokens=True)["input_ids"][:max_len] for t in texts]
    ids, mask = pad_batch(rows, pad_id)
    return ids, mask, [len(r) for r in rows]


def _references(wrapper, ids, mask, lengths) -> list[list[np.ndarray]]:
    """PyTorch's outputs for each text alone, over its real tokens: what `_max_diffs` compares the
    graph with, computed while the torch model is alive so it can be freed before any session."""
    import torch

    refs = []
    for i, n in enumerate(lengths):
        with torch.no_grad(), _quiet():
            ref = wrapper(torch.from_numpy(ids[i : i + 1, :n]), torch.from_numpy(mask[i : i + 1, :n]))
        refs.append([r[0].float().numpy() for r in ref])
    return refs


def _max_diffs(session, refs, ids, mask, lengths) -> dict[str, float]:
    """ONNX on the padded batch against PyTorch on each text alone (`refs`), over the real tokens."""
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, session.run(None, {"input_ids": ids, "attention_mask": mask}), strict=True))
    worst = {name: 0.0 for name in names}
    for i, n in enumerate(lengths):
        ref = dict(zip(names, refs[i], strict=True))
        pairs = {
            "attentions": (got["attentions"][i, :, :, :n, :n], ref["attentions"]),
            "hidden_states": (got["hidden_states"][i, :, :n], ref["hidden_states"]),
        }
        for name in QK_OUTPUTS:
            if name in got:
                pairs[name] = (got[name][i, :, :, :n], ref[name])
        if "logits" in got:
            pairs["logits"] = (got["logits"][i], ref["logits"])
        for name, (a, b) in pairs.items():
            diff = float(np.max(np.abs(a.astype(np.float32) - b)))
            if name != "attentions":
                diff /= max(1.0, float(np.max(np.abs(b))))
            worst[name] = max(worst[name], diff)
    return worst


def release_exporter_state() -> None:
    """Let the exported torch model go: onnxscript's rewrite rules (module-level objects the
    exporter's optimizer runs) keep the last graph each matched (onnxscript 0.7: `_graph`, `_match`,
    `_tracer`), and that graph's initializers wrap the torch parameters themselves, so without this
    the weights outlive ``del model`` and are in memory twice once the check sessions open. Private
    attributes of a third-party class: where they are absent nothing is done, and
    tests/test_export.py checks that the parameters are freed."""
    try:
        from onnxscript.rewriter._matcher import PatternMatcher
    except ImportError:
        PatternMatcher = None  # noqa: N806
    if PatternMatcher is not None:
        for obj in gc.get_objects():
            if issubclass(type(obj), PatternMatcher):  # type(): isinstance may run a proxy's __class__
                for name in ("_graph", "_match", "_tracer", "_current_node"):
                    if name in vars(obj):
                        setattr(obj, name, None)
    gc.collect()


def _onnx_export(
    module,
    args: tuple,
    path: Path,
    *,
    input_names,
    output_names,
    dynamic_shapes,
    external_data=False,
    weights: SharedWeights | None = None,
):
    """Export `module` to `path` with the dynamo exporter. With `external_data` its large weights go
    into `weights`' shared file (each distinct tensor once over all graphs), or without `weights`
    into the exporter's own ``<graph>.onnx.data``."""
    import torch

    shared = external_data and weights is not None
    try:
        with _quiet():
            program = torch.onnx.export(
                module,
                args,
                None if shared else str(path),
                dynamo=True,
                opset_version=OPSET,
                input_names=input_names,
                output_names=output_names,
                dynamic_shapes=dynamic_shapes,
                external_data=external_data,
                verbose=False,
                report=False,
            )
    except Exception as exc:  # the exporter raises many types; all mean the same to a user
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"torch.onnx.export failed for {type(module).__name__}: {first}") from exc
    if shared:
        weights.save(program.model, path)
    del program
    gc.collect()


def export_model(
    checkpoint: Path,
    out: Path,
    *,
    task: str | None = None,
    quantize: str | None = None,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    dtype: str = "float32",
    external_data_threshold: int = EXTERNAL_DATA_THRESHOLD,
    generation: bool = True,
    with_qk: bool = False,
    log: Log = lambda message: None,
) -> ModelCard:
    """Export `checkpoint` into the folder `out` and return its manifest.

    Causal LMs also get the generation graphs (``decoder.onnx``, ``lm_head.onnx``; see
    `attnreport.export.decoder`) unless `generation` is False. `dtype` ``"float16"`` halves the
    weights; its checks use `FP16_TOLERANCE`. When the weights exceed `external_data_threshold`
    bytes, every graph keeps its large tensors in one shared external-data file, each distinct tensor
    written once (`attnreport.export.weights`). `with_qk` adds each layer's queries and keys
    as outputs (``queries``, ``keys``; `attnreport.export.qk`) for the neuron view; they are checked
    to reproduce the attentions, and without it the graph's outputs are what they always were.

    Nothing is written when the export is refused or fails its check against PyTorch;
    an existing export at `out` is replaced only by a finished, checked one, and survives a
    killed export too (the next export removes what the killed one left).

    A GGUF file (llama.cpp's format) is dequantized into a checkpoint and exported by
    `attnreport.export.gguf.export_gguf`, which records the file in the manifest.
    """
    from attnreport.export.gguf import export_gguf, is_gguf

    if is_gguf(checkpoint):
        return export_gguf(
            checkpoint,
            out,
            task=task,
            dtype=dtype,
            log=log,
            quantize=quantize,
            external_data_threshold=external_data_threshold,
            generation=generation,
            with_qk=with_qk,
        )
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ExportError(
            "export needs torch and transformers: pip install torch==2.13.0 'attnreport[export]'"
        ) from exc

    out = Path(out).resolve()
    if dtype not in DTYPES:
        raise ExportError(f"--dtype {dtype!r} is unknown; known: {', '.join(DTYPES)}")
    check_quantize(quantize, dtype=dtype)
    tolerance = TOLERANCE if dtype == "float32" else FP16_TOLERANCE
    guard_output(out, inputs=[checkpoint], ours=is_exported(out), what="export", error=ExportError)
    ck = inspect_checkpoint(
        Path(checkpoint), task=task, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code
    )
    check_quantize(quantize, dtype=dtype, task=ck.task, generation=generation)
    log(f"loading {ck.folder} ({ck.model_type}, {ck.task})")
    model = _load(ck, trust_remote_code=trust_remote_code, dtype=dtype)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    external = weight_bytes > external_data_threshold
    tok = _load_tokenizer(ck, trust_remote_code=trust_remote_code)
    cfg = model.config
    max_positions = int(getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", 512))
    ids, mask, lengths = _batch(tok, VERIFY_TEXTS, max_positions)
    with torch.no_grad(), _quiet():
        probe = model(
            input_ids=torch.from_numpy(ids[:1, : lengths[0]]),
            output_attentions=True,
            return_dict=True,
        )
    if not getattr(probe, "attentions", None):
        raise ExportError(
            f"{ck.folder}: {type(model).__name__} returns no attention weights; "
            f"attnreport needs an architecture with eager attention"
        )
    family = HEAD_FAMILIES.get(ck.model_type) if ck.task == "sequence-classification" else None
    head = _make_head(model, family)
    wrapper = _make_wrapper(model, task=ck.task, causal=ck.causal, head=head, with_qk=with_qk)
    wrapper.eval()

    with replace_folder(out) as tmp:
        shared = SharedWeights(tmp) if external else None
        onnx_export = functools.partial(_onnx_export, external_data=external, weights=shared)
        batch = torch.export.Dim("batch", min=1, max=4096)
        seq = torch.export.Dim("seq", min=1, max=max_positions)
        outputs = ["attentions", "hidden_states"]
        if ck.task != "feature-extraction":
            outputs.insert(0, "logits")
        if with_qk:
            outputs += list(QK_OUTPUTS)
        # Everything PyTorch must do comes first (every graph exported, every reference output
        # computed), then the torch model is freed, then each graph is checked in onnxruntime, one
        # session at a time: the weights are in memory once in each phase, never twice.
        refs = _references(wrapper, ids, mask, lengths)
        scales = list(wrapper.scales) if with_qk else []
        log("exporting to ONNX (dynamo)" + (f" with external data in {WEIGHTS_FILE}" if external else ""))
        onnx_export(
            wrapper,
            (torch.from_numpy(ids), torch.from_numpy(mask)),
            tmp / "model.onnx",
            input_names=["input_ids", "attention_mask"],
            output_names=outputs,
            dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
        )
        if head is not None:
            _export_head(head, tmp, cfg.hidden_size, onnx_export)
        pad_id = (
            tok.pad_token_id
            if tok.pad_token_id is not None
            else (tok.eos_token_id if tok.eos_token_id is not None else 0)
        )
        generation_check = None
        if generation and ck.task == "causal-lm":
            from attnreport.export.decoder import export_generation

            with torch.no_grad(), _quiet():
                generation_check = export_generation(
                    model,
                    tok,
                    tmp,
                    VERIFY_TEXTS,
                    onnx_export=onnx_export,
                    tolerance=tolerance,
                    external_data=external,
                    pad_id=pad_id,
                    max_positions=max_positions,
                    log=log,
                )
        architecture = type(model).__name__
        has_head = head is not None
        del model, wrapper, head, probe
        release_exporter_state()

        session = open_check_session(tmp / "model.onnx")
        diffs = _max_diffs(session, refs, ids, mask, lengths)
        del refs
        log("max difference to PyTorch: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
        bad = {k: v for k, v in diffs.items() if not v <= tolerance}
        if bad:
            name, value = next(iter(bad.items()))
            raise ExportError(
                f"{ck.folder}: ONNX {name} differ from PyTorch by {value:.2e} on a padded batch "
                f"(limit {tolerance:.0e}); this architecture does not export correctly"
            )
        qk_card = _qk_card(session, scales, ids, mask, lengths, ck, cfg, tolerance, log) if with_qk else None
        if has_head:
            _check_head(session, ids, mask, tmp, ck, log, tolerance)
        # one onnxruntime session at a time: each holds (or maps) a copy of the weights
        del session
        gc.collect()
        decoder_card = generation_check.verify(log) if generation_check is not None else None
        tok.save_pretrained(str(tmp))
        labels = _labels(cfg, ck.task)
        if shared is not None:
            log(
                f"{WEIGHTS_FILE}: {shared.unique_bytes / 1e6:,.0f} MB written once for "
                f"{', '.join(shared.graphs)} ({shared.shared_bytes / 1e6:,.0f} MB shared, not rewritten)"
            )
        card = ModelCard(
            architecture=architecture,
            task=ck.task,
            layers=int(cfg.num_hidden_layers),
            heads=int(cfg.num_attention_heads),
            hidden_size=int(cfg.hidden_size),
            max_positions=max_positions,
            causal=ck.causal,
            labels=labels,
            opset=OPSET,
            weights_sha256=weights_sha256(ck.folder),
            max_abs_diff=diffs,
            read_position="last" if ck.causal else "first",
            source=str(ck.folder),
            has_head=family is not None,
            extra={
                "model_type": ck.model_type,
                "pad_token_id": pad_id,
                "mask_token": tok.mask_token,
                "mask_token_id": tok.mask_token_id,
                "transformers": __import__("transformers").__version__,
                "torch": torch.__version__,
                "weight_bytes": weight_bytes,
            },
            dtype=dtype,
            external_data=sorted(shared.graphs) if shared is not None else [],
            weights_file=WEIGHTS_FILE if shared is not None else None,
            generation=decoder_card,
            qk=qk_card,
        )
        if quantize:
            card.quantized = QUANTIZERS[quantize].run(tmp, card, ids, mask, lengths, log)
        card.save(tmp)
    log(f"exported to {out}")
    return card


def _qk_card(session, scales, ids, mask, lengths, ck: Checkpoint, cfg, tolerance: float, log: Log) -> QKCard:
    """The manifest's record of the queries and keys: their scales, and the proof that the softmax
    of q·k·scale over the keys each query may read is the graph's own attention."""
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, session.run(None, {"input_ids": ids, "attention_mask": mask}), strict=True))
    diff = softmax_check(got, lengths, scales, causal=ck.causal)
    log(f"softmax(q·k·scale) reproduces the attentions to {diff:.1e}")
    if not diff <= tolerance:
        raise ExportError(
            f"{ck.folder}: softmax(q·k·scale) of the captured queries and keys differs from the "
            f"attentions by {diff:.2e} (limit {tolerance:.0e}): this architecture adds something to its "
            f"scores (a bias or a cap); export without --with-qk"
        )
    heads = int(cfg.num_attention_heads)
    return QKCard(
        head_dim=int(got["queries"].shape[-1]),
        kv_heads=int(getattr(cfg, "num_key_value_heads", None) or heads),
        scales=scales,
        softmax_diff=diff,
    )


def _labels(cfg, task: str) -> list[str]:
    if task != "sequence-classification":
        return []
    id2label = getattr(cfg, "id2label", None) or {}
    return [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(cfg.num_labels)]


def _export_head(head, tmp: Path, hidden_size: int, onnx_export) -> None:
    """Export the classification head alone (``head.onnx``); `_check_head` checks it."""
    import torch

    example = torch.zeros(2, hidden_size, dtype=next(head.parameters()).dtype)
    points = torch.export.Dim("points", min=1, max=1 << 20)
    onnx_export(
        head,
        (example,),
        tmp / "head.onnx",
        input_names=["hidden"],
        output_names=["logits"],
        dynamic_shapes={"hidden": {0: points}},
    )


def _check_head(session, ids, mask, tmp: Path, ck: Checkpoint, log: Log, tolerance) -> None:
    """``head.onnx`` on the full graph's pooled hidden states reproduces the full graph's logits."""
    logits, hidden = session.run(["logits", "hidden_states"], {"input_ids": ids, "attention_mask": mask})
    rows = np.arange(ids.shape[0])
    read = mask.sum(axis=1) - 1 if ck.causal else np.zeros_like(rows)
    pooled = hidden[:, -1][rows, read]
    head_session = open_check_session(tmp / "head.onnx")
    (again,) = head_session.run(None, {"hidden": pooled})
    diff = float(np.max(np.abs(again.astype(np.float32) - logits)))
    if diff > tolerance:
        raise ExportError(f"{ck.folder}: head.onnx differs from the model's logits by {diff:.2e}")
    log(f"head.onnx matches the model's logits to {diff:.1e}")
