"""The generation graphs of a causal LM: a KV-cache decoder and the logit-lens head.

Over 400 lines because the two graphs share one wrapper and one check (PyTorch's references
are computed where the graphs are built, `GenerationCheck` compares them once the torch model is
freed); splitting them would split that check.

``decoder.onnx`` runs ``q`` new positions against a cache of ``past`` positions and returns
only the new positions' logits, attention rows, hidden states and value norms (the norm of what
each new key carries through each head, for norm-weighted attention:
`attnreport.export.value_norms`), with the grown cache; the prefill is the same graph with an empty
cache (``past = 0``), chunked prefills are ``q > 1`` with a cache. ``lm_head.onnx`` is the final
norm and unembedding, for the logit lens.

`transformers` keeps the cache in a `DynamicCache` object; the exported graph sees it as
flat tensors (``past_key_values.<layer>.key`` / ``.value`` in, ``present.<layer>.key`` /
``.value`` out), rebuilt into a cache object inside the wrapper. Position ids come from the
attention mask inside the graph (``cumsum - 1``, as `generate` does), so left-padded batches
need no extra input. torch.export specialises example sizes 0 and 1, so the example has a
past of 3 and 4 new positions, and every size is declared dynamic; the check below runs the
graph with a past of 0 and with one new position.

The check, before an export is accepted: greedy decoding in onnxruntime gives the tokens of
`transformers`' `generate(do_sample=False)` with the checkpoint's own decoding settings switched
off (transformers merges a checkpoint's ``generation_config.json`` into any config `generate` is
given, so Qwen2.5-Instruct's ``repetition_penalty`` 1.05 or ``do_sample`` would otherwise make it
compare plain greedy with penalised or sampled decoding); the settings it switched off are
recorded in the manifest (`DecoderCard.checkpoint_defaults`). Every step's attentions, logits and
hidden states match PyTorch eager on the same tokens, and every key's value norm matches the norm
computed from the values in PyTorch's own cache; a left-padded batch of the prompts gives the
same as each prompt alone; lm_head.onnx reproduces the model's logits from the pre-norm last hidden
state and the final norm + unembedding of every layer.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attnreport.core.errors import ExportError
from attnreport.core.modelcard import DecoderCard
from attnreport.export.attention_calls import capture_attention_calls
from attnreport.export.scorer import SCORER_FILE, check_scorer, export_scorer
from attnreport.export.sessions import open_check_session
from attnreport.export.value_norms import (
    VALUE_NORMS,
    ValueNormLayout,
    graph_value_norms,
    reference_value_norms,
    value_norm_layout,
)

DECODER_FILE = "decoder.onnx"
LM_HEAD_FILE = "lm_head.onnx"
#: new tokens decoded per prompt by the export check
CHECK_NEW_TOKENS = 8
#: the check prefills in chunks of this many positions, so ``q > 1`` with a cache is checked too
CHECK_CHUNK = 5
#: settings of a checkpoint's generation config that change which tokens `generate` picks, each
#: with the value that changes nothing (None: any value set changes something); the export checks
#: plain greedy decoding, and records the checkpoint's settings that differ from these
DECODING_NO_OPS = {
    "do_sample": False,
    "temperature": 1.0,
    "top_k": None,
    "top_p": 1.0,
    "min_p": None,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
    "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "num_beams": 1,
    "num_beam_groups": 1,
    "diversity_penalty": 0.0,
    "length_penalty": 1.0,
    "penalty_alpha": None,
    "bad_words_ids": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
    "sequence_bias": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "min_length": 0,
    "min_new_tokens": None,
    "exponential_decay_length_penalty": None,
    "renormalize_logits": False,
    "guidance_scale": 1.0,
    "dola_layers": None,
}
#: the decoding the export check compares onnxruntime with transformers by (`DecoderCard.checked`)
CHECK_DECODING = "greedy"
#: final-norm module names, by architecture family (the decoder's attribute)
NORM_NAMES = ("norm", "ln_f", "final_layer_norm", "final_layernorm")

Log = Callable[[str], None]


def kv_layout(model) -> tuple[int, int, int]:
    """``(layers, kv_heads, head_dim)`` of the model's cache, read from a real forward pass (so
    grouped-query attention and an explicit ``head_dim`` are whatever the model does)."""
    import torch

    with torch.no_grad():
        ids = torch.tensor([[1, 2]])
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True, return_dict=True)
    cache = getattr(out, "cache", None) or out.past_key_values
    keys = cache.layers[0].keys
    return len(cache.layers), int(keys.shape[1]), int(keys.shape[3])


def past_names(layers: int) -> list[str]:
    return [f"past_key_values.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]


def present_names(layers: int) -> list[str]:
    return [f"present.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]


def make_decoder(model, value_norms: ValueNormLayout | None = None):
    """``(input_ids, attention_mask, *past) -> (logits, attentions, hidden_states, [value_norms],
    *present)``; ``value_norms [B, L, H, q]`` of the new positions with a `value_norms` layout
    (`attnreport.export.value_norms`)."""
    import torch
    from transformers import DynamicCache

    layers = model.config.num_hidden_layers
    takes_positions = "position_ids" in inspect.signature(model.forward).parameters

    class Decoder(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model
            self.attention_modules = value_norms.modules if value_norms is not None else None
            if value_norms is not None:
                self.register_buffer("value_factors", value_norms.factors)

        def forward(self, input_ids, attention_mask, *past):
            q = input_ids.shape[1]
            cache = DynamicCache([(past[2 * i], past[2 * i + 1]) for i in range(layers)])
            kwargs = {}
            if takes_positions:
                kwargs["position_ids"] = (attention_mask.cumsum(-1) - 1).clamp(min=0)[:, -q:]
            capture = value_norms is not None
            with capture_attention_calls() if capture else contextlib.nullcontext([]) as calls:
                out = self.model(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    cache=cache,
                    use_cache=True,
                    output_attentions=True,
                    output_hidden_states=True,
                    return_dict=True,
                    **kwargs,
                )
            present = []
            for layer in out.cache.layers:
                present += [layer.keys, layer.values]
            attentions = torch.stack(tuple(out.attentions), dim=1)
            hidden = torch.stack(tuple(out.hidden_states), dim=1)
            norms = ()
            if capture:
                norms = (graph_value_norms(calls, self.attention_modules, self.value_factors, q),)
            return (out.logits, attentions, hidden, *norms, *present)

    return Decoder(model).eval()


def final_norm(model):
    """The module that norms the last hidden state before the unembedding, or None."""
    decoder = model.get_decoder()
    for name in NORM_NAMES:
        module = getattr(decoder, name, None)
        if module is not None:
            return module
    return None


def make_lm_head(model, norm):
    """``hidden [m, d] -> logits [m, V]``: the final norm, the unembedding, a logit soft-cap.

    The unembedding is laid out as the model's own graphs lay it out, so that ``lm_head.onnx`` reads
    the very bytes ``model.onnx`` stores and the shared weights file keeps them once
    (`attnreport.export.weights`): the exporter stores an untied unembedding transposed (a linear
    over 3-D hidden states is a MatMul whose weight transpose it folds), and one tied to the input
    embedding as it is (read by a Gather too, it is not folded; a linear over 2-D hidden states is
    a Gemm that reads it as it is)."""
    import torch

    cap = getattr(model.config, "final_logit_softcapping", None)
    unembed = model.get_output_embeddings()
    embed = model.get_input_embeddings()
    tied = embed is not None and unembed.weight is getattr(embed, "weight", None)

    class LensHead(torch.nn.Module):
        def __init__(self, norm, unembed):
            super().__init__()
            self.norm = norm
            self.unembed = unembed

        def forward(self, hidden):
            normed = self.norm(hidden)
            logits = self.unembed(normed) if tied else self.unembed(normed.unsqueeze(0))[0]
            if cap:
                logits = torch.tanh(logits / cap) * cap
            return logits

    return LensHead(norm, unembed).eval()


def last_hidden_normed(model, norm) -> tuple[bool, object]:
    """Whether ``hidden_states[-1]`` is the final norm's output, and the norm's input (the
    pre-norm residual stream) of a probe, read with a forward hook."""
    import torch

    seen = {}
    handle = norm.register_forward_hook(lambda mod, args, out: seen.update(x=args[0], y=out))
    try:
        with torch.no_grad():
            ids = torch.tensor([[1, 2, 3]])
            out = model(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                output_hidden_states=True,
                return_dict=True,
            )
    finally:
        handle.remove()
    last = out.hidden_states[-1]
    return bool(torch.allclose(last, seen["y"])), seen["x"]


@dataclass
class GenerationCheck:
    """What the check of the generation graphs needs once the torch model is gone: PyTorch's
    reference outputs and the card's model-derived fields. `export_generation` makes it while the
    model is alive; `verify` opens the graphs one session at a time and compares."""

    folder: Path
    rows: list[list[int]]
    references: list[DecoderReference]
    lens_reference: LensReference | None
    pad_id: int
    layers: int
    tolerance: float
    card: dict

    def verify(self, log: Log) -> DecoderCard:
        """Check ``decoder.onnx`` (and ``lm_head.onnx``) against the references; the card, or
        `ExportError` when a graph differs from PyTorch by more than the tolerance or greedy tokens
        differ."""
        session = open_check_session(self.folder / DECODER_FILE)
        diffs, checked = check_decoder(
            session, self.rows, self.references, pad_id=self.pad_id, layers=self.layers
        )
        del session  # one session at a time: each holds (or maps) the weights
        gc.collect()
        if self.card.get("scorer"):
            diffs["scorer_logits"] = check_scorer(
                self.folder,
                DECODER_FILE,
                self.rows,
                pad_id=self.pad_id,
                past_names=self.card["past_names"],
                present_names=self.card["present_names"],
            )
        if self.lens_reference is not None:
            head = open_check_session(self.folder / LM_HEAD_FILE)
            diffs["lm_head"] = check_lm_head(head, self.lens_reference)
            del head
            gc.collect()
        log(
            "generation graphs, max difference to PyTorch: "
            + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items())
        )
        bad = {k: v for k, v in diffs.items() if not v <= self.tolerance}
        if bad:
            name, value = next(iter(bad.items()))
            if name == "scorer_logits":
                raise ExportError(
                    f"{SCORER_FILE}: logits differ from {DECODER_FILE}'s by {value:.2e} (limit "
                    f"{self.tolerance:.0e}); this architecture does not export its sdpa attention correctly"
                )
            raise ExportError(
                f"{DECODER_FILE}: {name} differ from PyTorch by {value:.2e} (limit {self.tolerance:.0e}); "
                f"this architecture does not export its KV-cache decoder correctly"
            )
        return DecoderCard(**self.card, max_abs_diff=diffs, tolerance=self.tolerance, checked=checked)


def export_generation(
    model,
    tok,
    folder: Path,
    prompts: Sequence[str],
    *,
    onnx_export: Callable,
    tolerance: float,
    external_data: bool,
    pad_id: int,
    max_positions: int,
    log: Log,
) -> GenerationCheck:
    """Write ``decoder.onnx`` and ``lm_head.onnx`` into `folder` and compute PyTorch's references
    for their check; the returned `GenerationCheck` checks them once the torch model is freed.

    `onnx_export` is the export stage's one call of the dynamo exporter.
    """
    import torch

    layers, kv_heads, head_dim = kv_layout(model)
    dtype = next(model.parameters()).dtype
    norms, why_not = value_norm_layout(model, layers)
    if norms is None:
        log(f"no {VALUE_NORMS} output (norm-weighted attention): {why_not}")
    decoder = make_decoder(model, norms)
    batch = torch.export.Dim("batch", min=1, max=4096)
    past = torch.export.Dim("past", min=0, max=1 << 20)
    seq = torch.export.Dim("seq", min=1, max=1 << 20)
    example_past = [torch.randn(2, kv_heads, 3, head_dim, dtype=dtype) for _ in range(2 * layers)]
    log(f"exporting {DECODER_FILE} (KV cache: {layers} layers x {kv_heads} kv heads x {head_dim})")
    onnx_export(
        decoder,
        (torch.randint(2, 10, (2, 4)), torch.ones(2, 7, dtype=torch.int64), *example_past),
        folder / DECODER_FILE,
        input_names=["input_ids", "attention_mask", *past_names(layers)],
        output_names=[
            "logits",
            "attentions",
            "hidden_states",
            *([VALUE_NORMS] if norms is not None else []),
            *present_names(layers),
        ],
        dynamic_shapes={
            "input_ids": {0: batch, 1: seq},
            "attention_mask": {0: batch, 1: torch.export.Dim.AUTO},
            "past": tuple({0: batch, 2: past} for _ in range(2 * layers)),
        },
        external_data=external_data,
    )
    log(f"exporting {SCORER_FILE} (logits and KV cache only, sdpa attention: for forced runs)")
    try:
        scorer = export_scorer(
            model,
            folder,
            onnx_export=functools.partial(onnx_export, external_data=external_data),
            past_names=past_names(layers),
            present_names=present_names(layers),
            kv_heads=kv_heads,
            head_dim=head_dim,
        )
    except ExportError as exc:  # forced runs then use decoder.onnx, as older exports do
        log(f"no {SCORER_FILE} (forced runs will use {DECODER_FILE}): {exc}")
        scorer = None
    norm = final_norm(model)
    lm_head = None
    normed = True
    if norm is not None:
        normed, _ = last_hidden_normed(model, norm)
        points = torch.export.Dim("points", min=1, max=1 << 24)
        log(f"exporting {LM_HEAD_FILE} (final norm + unembedding, for the logit lens)")
        onnx_export(
            make_lm_head(model, norm),
            (torch.zeros(3, model.config.hidden_size, dtype=dtype),),
            folder / LM_HEAD_FILE,
            input_names=["hidden"],
            output_names=["logits"],
            dynamic_shapes={"hidden": {0: points}},
            external_data=external_data,
        )
        lm_head = LM_HEAD_FILE
    else:
        log(f"no final norm found on {type(model).__name__}: no {LM_HEAD_FILE}, no logit lens")

    keep = max_positions - CHECK_NEW_TOKENS
    rows = [tok(p, add_special_tokens=True)["input_ids"][:keep] for p in prompts]
    return GenerationCheck(
        folder=folder,
        rows=rows,
        references=[
            decoder_reference(model, r, pad_id=pad_id, slices=norms.slices if norms else None) for r in rows
        ],
        lens_reference=lens_reference(model, norm, rows[-1]) if lm_head is not None else None,
        pad_id=pad_id,
        layers=layers,
        tolerance=tolerance,
        card=dict(
            decoder=DECODER_FILE,
            lm_head=lm_head,
            vocab_size=int(model.get_output_embeddings().weight.shape[0]),
            kv_heads=kv_heads,
            head_dim=head_dim,
            past_names=past_names(layers),
            present_names=present_names(layers),
            eos_token_ids=eos_ids(model, tok),
            last_hidden_normed=normed,
            chat_template=bool(getattr(tok, "chat_template", None)),
            checkpoint_defaults=checkpoint_decoding(model),
            value_norms=VALUE_NORMS if norms is not None else None,
            scorer=scorer,
        ),
    )


def checkpoint_decoding(model) -> dict:
    """The checkpoint's own decoding settings (its ``generation_config.json``) that differ from plain
    greedy decoding, JSON-safe: what a page must name when it shows greedy answers."""
    config = getattr(model, "generation_config", None)
    found = {}
    for key, no_op in DECODING_NO_OPS.items():
        value = getattr(config, key, None)
        if value is not None and value != no_op:
            found[key] = value if isinstance(value, (bool, int, float, str)) else repr(value)
    return found


@contextlib.contextmanager
def plain_greedy(model):
    """`model` with a neutral generation config for the duration: `generate` fills every setting its
    config leaves unset from ``model.generation_config``, so the check's greedy config would
    otherwise carry the checkpoint's penalties and sampling."""
    from transformers import GenerationConfig

    saved = model.generation_config
    model.generation_config = GenerationConfig()
    try:
        yield
    finally:
        model.generation_config = saved


def eos_ids(model, tok) -> list[int]:
    """The ids that end an answer: the generation config's (one or a list), then the tokenizer's."""
    found: list[int] = []
    config = getattr(model, "generation_config", None)
    for value in (getattr(config, "eos_token_id", None), tok.eos_token_id):
        for i in value if isinstance(value, (list, tuple)) else [value]:
            if i is not None and int(i) not in found:
                found.append(int(i))
    return found


def onnx_greedy(
    session, rows: Sequence[Sequence[int]], *, pad_id: int, new_tokens: int, layers: int, chunk: int
) -> list[dict]:
    """Greedy decoding of left-padded `rows` in onnxruntime, no stopping: per row the tokens and,
    per step, the choosing position's logits, hidden states and attention rows over the row's
    own keys (padding cut off), and the value norms of every key the row's steps read (with a
    ``value_norms`` output). The export check's loop; `trace.generate` is the real one."""
    inputs = {i.name: i for i in session.get_inputs()}
    dtype = np.float16 if "float16" in inputs[past_names(layers)[0]].type else np.float32
    shape = inputs[past_names(layers)[0]].shape
    b, n = len(rows), max(len(r) for r in rows)
    ids = np.full((b, n), pad_id, dtype=np.int64)
    mask = np.zeros((b, n), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, n - len(r) :], mask[i, n - len(r) :] = r, 1
    past = {name: np.zeros((b, shape[1], 0, shape[3]), dtype) for name in past_names(layers)}
    out_names = [o.name for o in session.get_outputs()]
    norms = VALUE_NORMS in out_names
    results = [{"tokens": [], "logits": [], "hidden": [], "attentions": [], "value_norms": []} for _ in rows]

    def run(step_ids, step_mask):
        got = dict(
            zip(
                out_names,
                session.run(None, {"input_ids": step_ids, "attention_mask": step_mask, **past}),
                strict=True,
            )
        )
        past.update({p: got[q] for p, q in zip(past_names(layers), present_names(layers), strict=True)})
        return got

    for start in range(0, n, chunk):
        got = run(ids[:, start : start + chunk], mask[:, : start + chunk])
        if norms:  # the chunk's real positions: padding cut off
            for i, r in enumerate(rows):
                results[i]["value_norms"].append(got[VALUE_NORMS][i, :, :, max(0, n - len(r) - start) :])
    for step in range(new_tokens):
        logits = got["logits"][:, -1].astype(np.float32)
        chosen = logits.argmax(axis=-1)
        for i, r in enumerate(rows):
            pad = n - len(r)
            results[i]["tokens"].append(int(chosen[i]))
            results[i]["logits"].append(logits[i])
            results[i]["hidden"].append(got["hidden_states"][i, :, -1].astype(np.float32))
            results[i]["attentions"].append(got["attentions"][i, :, :, -1, pad:].astype(np.float32))
        if step + 1 < new_tokens:
            mask = np.concatenate([mask, np.ones((b, 1), np.int64)], axis=1)
            got = run(chosen[:, None].astype(np.int64), mask)
            if norms:  # the key this step added to the cache
                for i in range(b):
                    results[i]["value_norms"].append(got[VALUE_NORMS][i, :, :, -1:])
    for result in results:
        # [L, H, n + new_tokens - 1]: every key the steps read (the last token chosen is never fed)
        chunks = result.pop("value_norms")
        result["value_norms"] = np.concatenate(chunks, axis=-1).astype(np.float32) if norms else None
    return results


def _relative(a, b) -> float:
    return float(np.max(np.abs(a - b))) / max(1.0, float(np.max(np.abs(b))))


@dataclass
class DecoderReference:
    """PyTorch on one check prompt: `generate`'s plain greedy tokens, and at each step (eager, on the
    prompt and those tokens) the choosing position's attention rows, logits and hidden states; the
    value norms ``[L, H, n + T - 1]`` of every key (None without weight slices)."""

    tokens: list[int]
    attentions: list[np.ndarray]
    logits: list[np.ndarray]
    hidden: list[np.ndarray]
    value_norms: np.ndarray | None = None


def decoder_reference(model, row: Sequence[int], *, pad_id: int, slices=None) -> DecoderReference:
    """With `slices` (per layer ``W_O^h`` ``[H, d_out, head_dim]``), the value norms from the values
    PyTorch's forward pass leaves in its own cache: a reference independent of the graph's."""
    import torch
    from transformers import GenerationConfig

    greedy = GenerationConfig(
        do_sample=False, max_new_tokens=CHECK_NEW_TOKENS, pad_token_id=pad_id, eos_token_id=None
    )
    n = len(row)
    prompt = torch.tensor([list(row)])
    with torch.no_grad():
        with plain_greedy(model):
            tokens = model.generate(
                input_ids=prompt, attention_mask=torch.ones_like(prompt), generation_config=greedy
            )[0, n:].tolist()
        full = torch.tensor([list(row) + tokens[:-1]])
        out = model(
            input_ids=full,
            output_attentions=True,
            output_hidden_states=True,
            use_cache=slices is not None,
            return_dict=True,
        )
    norms = None
    if slices is not None:
        cache = getattr(out, "cache", None) or out.past_key_values
        norms = reference_value_norms([layer.values[0] for layer in cache.layers], slices)
    attentions = torch.stack(tuple(out.attentions), 1)[0].float().numpy()
    hidden = torch.stack(tuple(out.hidden_states), 1)[0].float().numpy()
    logits = out.logits[0].float().numpy()
    steps = range(len(tokens))
    return DecoderReference(
        tokens=tokens,
        attentions=[attentions[:, :, n - 1 + t, : n + t].copy() for t in steps],
        logits=[logits[n - 1 + t].copy() for t in steps],
        hidden=[hidden[:, n - 1 + t].copy() for t in steps],
        value_norms=norms,
    )


def check_decoder(
    session, rows, references: Sequence[DecoderReference], *, pad_id: int, layers: int
) -> tuple[dict[str, float], dict]:
    """The decoder graph against PyTorch: greedy tokens vs `generate`, each step vs eager, batch vs
    alone. Steps are compared while both sides have chosen the same tokens; a different choice is
    accepted only as a near-tie of PyTorch's two top logits, and ends that prompt's comparison."""
    alone = [
        onnx_greedy(
            session, [r], pad_id=pad_id, new_tokens=CHECK_NEW_TOKENS, layers=layers, chunk=CHECK_CHUNK
        )[0]
        for r in rows
    ]
    batched = onnx_greedy(
        session, rows, pad_id=pad_id, new_tokens=CHECK_NEW_TOKENS, layers=layers, chunk=CHECK_CHUNK
    )
    diffs = dict.fromkeys(
        ("decoder_attentions", "decoder_logits", "decoder_hidden_states", "batch_attentions", "batch_logits"),
        0.0,
    )
    norms = alone[0]["value_norms"] is not None and references[0].value_norms is not None
    if norms:
        diffs |= {"decoder_value_norms": 0.0, "batch_value_norms": 0.0}
    near_ties = 0
    for ref, got, inbatch, row in zip(references, alone, batched, rows, strict=True):
        if norms:
            diffs["batch_value_norms"] = max(
                diffs["batch_value_norms"], _relative(inbatch["value_norms"], got["value_norms"])
            )
        for t in range(CHECK_NEW_TOKENS):
            if inbatch["tokens"][t] != got["tokens"][t]:
                raise ExportError(
                    f"{DECODER_FILE}: greedy token {t} of a check prompt changes when the prompt is "
                    f"left-padded in a batch ({inbatch['tokens'][t]} instead of {got['tokens'][t]})"
                )
            diffs["batch_attentions"] = max(
                diffs["batch_attentions"],
                float(np.max(np.abs(inbatch["attentions"][t] - got["attentions"][t]))),
            )
            diffs["batch_logits"] = max(
                diffs["batch_logits"], _relative(inbatch["logits"][t], got["logits"][t])
            )
        for t in range(min(CHECK_NEW_TOKENS, len(ref.tokens))):
            # up to step t both sides read the same tokens, so step t's outputs are comparable
            diffs["decoder_attentions"] = max(
                diffs["decoder_attentions"], float(np.max(np.abs(got["attentions"][t] - ref.attentions[t])))
            )
            diffs["decoder_logits"] = max(diffs["decoder_logits"], _relative(got["logits"][t], ref.logits[t]))
            diffs["decoder_hidden_states"] = max(
                diffs["decoder_hidden_states"], _relative(got["hidden"][t], ref.hidden[t])
            )
            if norms:  # step t read keys up to n - 1 + t: the prompt, then one more each step
                keys = slice(0, len(row)) if t == 0 else slice(len(row) - 1 + t, len(row) + t)
                diffs["decoder_value_norms"] = max(
                    diffs["decoder_value_norms"],
                    _relative(got["value_norms"][..., keys], ref.value_norms[..., keys]),
                )
            if ref.tokens[t] != got["tokens"][t]:
                top = np.sort(ref.logits[t])[-2:]
                if top[1] - top[0] > 1e-3 * max(1.0, abs(top[1])):
                    raise ExportError(
                        f"{DECODER_FILE}: greedy token {t} of a check prompt is {got['tokens'][t]} in "
                        f"onnxruntime but {ref.tokens[t]} in transformers' generate"
                    )
                near_ties += 1
                break
    checked = {
        "prompts": len(rows),
        "prompt_tokens": [len(r) for r in rows],
        "new_tokens": CHECK_NEW_TOKENS,
        "prefill_chunk": CHECK_CHUNK,
        "decoding": CHECK_DECODING,
        "greedy_tokens_match": near_ties == 0,
        "near_ties": near_ties,
    }
    return diffs, checked


@dataclass
class LensReference:
    """PyTorch's final norm + unembedding on every layer's hidden states of one prompt (`inputs`,
    `want`), and the model's own logits on it (`logits`): what ``lm_head.onnx`` must reproduce."""

    inputs: list[np.ndarray]
    want: list[np.ndarray]
    logits: np.ndarray


#: the lens is checked on the last this-many positions of each layer: it maps each position alone,
#: and logits over a real vocabulary for every layer and position are large (on a 150k vocabulary,
#: every position of the check prompt was the export's peak memory)
LENS_CHECK_POSITIONS = 4


def lens_reference(model, norm, row: Sequence[int]) -> LensReference:
    """The last input is the pre-norm last hidden state, on which the lens gives the model's logits."""
    import torch

    seen = {}
    handle = norm.register_forward_hook(lambda mod, args, out: seen.update(x=args[0]))
    try:
        with torch.no_grad():
            out = model(input_ids=torch.tensor([list(row)]), output_hidden_states=True, return_dict=True)
    finally:
        handle.remove()
    lens = make_lm_head(model, norm)
    inputs, want = [], []
    last = slice(-LENS_CHECK_POSITIONS, None)
    for hidden in [h[0, last] for h in out.hidden_states[:-1]] + [seen["x"][0, last]]:
        with torch.no_grad():
            want.append(lens(hidden).float().numpy())
        inputs.append(hidden.numpy().copy())
    return LensReference(inputs=inputs, want=want, logits=out.logits[0, last].float().numpy())


def check_lm_head(head_session, ref: LensReference) -> float:
    """lm_head.onnx against PyTorch: on the pre-norm last hidden state it gives the model's logits,
    and on every layer's hidden state the final norm + unembedding applied in PyTorch. The
    difference is relative to the largest logit over all layers."""
    largest, scale = 0.0, 1.0
    for hidden, want in zip(ref.inputs, ref.want, strict=True):
        (got,) = head_session.run(None, {"hidden": hidden})
        largest = max(largest, float(np.max(np.abs(got.astype(np.float32) - want))))
        scale = max(scale, float(np.max(np.abs(want))))
    # `got` is now the lens on the pre-norm last hidden state: the model's own logits
    return max(largest / scale, _relative(got.astype(np.float32), ref.logits))
