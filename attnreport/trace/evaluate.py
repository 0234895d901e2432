"""The model as a value function over a text's tokens, for attributions and faithfulness.

``MaskedModel(tracer, trace)`` is callable on a boolean mask array ``[m, p]`` over the
text's content tokens (special tokens always stay in place): absent tokens are replaced
by the baseline token, the batch runs through onnxruntime, and the declared output comes
back, one value per row. The declaration (output, target, baseline) travels with every
number into report.json, so a reader knows exactly what a Shapley value is a share of.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attnreport.core.errors import ConfigError
from attnreport.core.trace import Trace

OUTPUTS = ("probability", "logit")


@dataclass(frozen=True)
class ValueDeclaration:
    output: str
    target: str
    target_index: int
    baseline: str
    baseline_id: int

    def to_dict(self) -> dict:
        return {"output": self.output, "target": self.target, "baseline": self.baseline}


class MaskedModel:
    """f(mask) = the model's declared output with the absent content tokens replaced."""

    def __init__(self, tracer, trace: Trace, *, output: str = "probability", batch_size: int = 64) -> None:
        if output not in OUTPUTS:
            raise ConfigError(f"attribution output {output!r} is unknown; choose one of {', '.join(OUTPUTS)}")
        if trace.windows:
            raise ConfigError(f"example {trace.id!r} was run in windows; it is too long for attributions")
        if trace.logits is None:
            raise ConfigError("attributions need a model with an output (logits); this export has none")
        card = tracer.card
        tok = tracer.tokenizer
        content = tok.encode(trace.text).ids
        self.ids = np.concatenate([tok.prefix_ids, content, tok.suffix_ids]).astype(np.int64)
        if len(self.ids) != trace.n_tokens:
            raise ConfigError(f"example {trace.id!r}: tokenisation changed since it was traced; rebuild")
        self.positions = np.flatnonzero(~trace.special)
        self.players = len(self.positions)
        self.session = tracer.session
        self.batch_size = batch_size
        self.output = output
        self.calls = 0
        self.rows = 0
        target_index = int(np.argmax(trace.logits))
        target = card.labels[target_index] if card.labels else (tok.token(target_index) or str(target_index))
        mask_id = card.extra.get("mask_token_id")
        if mask_id is not None:
            baseline, baseline_id = str(card.extra.get("mask_token")), int(mask_id)
        else:
            baseline_id = int(card.extra.get("pad_token_id") or 0)
            baseline = tok.token(baseline_id) or str(baseline_id)
        self.declaration = ValueDeclaration(output, target, target_index, baseline, baseline_id)

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        masks = np.asarray(masks, dtype=bool)
        if masks.ndim != 2 or masks.shape[1] != self.players:
            raise ValueError(f"masks must be [m, {self.players}], got {list(masks.shape)}")
        out = np.empty(len(masks), dtype=np.float64)
        for start in range(0, len(masks), self.batch_size):
            chunk = masks[start : start + self.batch_size]
            ids = np.repeat(self.ids[None], len(chunk), axis=0)
            cols = ids[:, self.positions]
            cols[~chunk] = self.declaration.baseline_id
            ids[:, self.positions] = cols
            feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            (logits,) = self.session.run(["logits"], feeds)
            logits = logits.astype(np.float64)
            t = self.declaration.target_index
            if self.output == "logit":
                out[start : start + len(chunk)] = logits[:, t]
            else:
                z = logits - logits.max(axis=1, keepdims=True)
                p = np.exp(z)
                out[start : start + len(chunk)] = p[:, t] / p.sum(axis=1)
            self.calls += 1
            self.rows += len(chunk)
        return out


class HeadModel:
    """head.onnx as a function: pooled final hidden states [m, d] -> logits [m, C].

    Lets the analysis stage ask the model's own classifier about points of hidden space
    that no text produced (the decision-space grid).
    """

    def __init__(self, folder) -> None:
        import onnxruntime as ort

        path = Path(folder) / "head.onnx"
        if not path.is_file():
            raise ConfigError(f"{folder}: no head.onnx (only classifiers of known families have one)")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, pooled: np.ndarray) -> np.ndarray:
        (logits,) = self.session.run(None, {"hidden": np.asarray(pooled, dtype=np.float32)})
        return logits
