"""The model as a value function over a text's tokens, for attributions and faithfulness.

``MaskedModel(tracer, trace)`` is callable on a boolean mask array ``[m, p]`` over the
text's content tokens (special tokens always stay in place): absent tokens are replaced
by the baseline token, the batch runs through onnxruntime, and the declared output comes
back, one value per row. The declaration (output, target, baseline) travels with every
number into report.json, so a reader knows exactly what a Shapley value is a share of.

A text traced in windows is evaluated through the same windows, its logits combined as the
trace combined them (`trace.runner`: encoders average the windows' logits, causal models read
the last window's), so the masked model is the model whose prediction the page shows. Each
window's logits are kept per distinct coalition of *its* tokens: a coalition that differs
from an earlier one only outside a window reuses that window's run, so walking a sampled
permutation over a long text costs about one run per step, not one per window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnreport.core.config import OUTPUTS
from attnreport.core.errors import ConfigError
from attnreport.core.trace import Trace
from attnreport.trace.sessions import open_session, optional_model_file


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

    #: rows x tokens per onnxruntime call: long windows run in fewer rows, so that a batch's
    #: attention outputs ([rows, L, H, n, n]) stay within memory
    TOKENS_PER_CALL = 16_384

    def __init__(self, tracer, trace: Trace, *, output: str = "probability", batch_size: int = 64) -> None:
        if output not in OUTPUTS:
            raise ConfigError(f"attribution output {output!r} is unknown; choose one of {', '.join(OUTPUTS)}")
        if trace.logits is None:
            raise ConfigError("attributions need a model with an output (logits); this export has none")
        card = tracer.card
        tok = tracer.tokenizer
        content = tok.encode(trace.text).ids
        self.prefix = np.asarray(tok.prefix_ids, dtype=np.int64)
        self.suffix = np.asarray(tok.suffix_ids, dtype=np.int64)
        self.ids = np.concatenate([self.prefix, content, self.suffix]).astype(np.int64)
        if len(self.ids) != trace.n_tokens:
            raise ConfigError(f"example {trace.id!r}: tokenisation changed since it was traced; rebuild")
        self.positions = np.flatnonzero(~trace.special)
        self.players = len(self.positions)
        self.content = self.ids[self.positions]
        # the trace's windows in content-token coordinates; the logits of a causal model are
        # the last window's, so only that one is run
        n_pre = len(self.prefix)
        windows = [(a - n_pre, b - n_pre) for a, b in trace.windows] or [(0, self.players)]
        self.windows = windows[-1:] if card.causal else windows
        self._seen: list[dict[bytes, np.ndarray]] | None = (
            [{} for _ in self.windows] if trace.windows else None
        )
        self.session = tracer.session
        self.batch_size = batch_size
        self.output = output
        self.calls = 0
        self.rows = 0
        self.classes = int(np.size(trace.logits))
        target_index = int(np.argmax(trace.logits))
        target = card.labels[target_index] if card.labels else (tok.token(target_index) or str(target_index))
        mask_id = card.extra.get("mask_token_id")
        if mask_id is not None:
            baseline, baseline_id = str(card.extra.get("mask_token")), int(mask_id)
        else:
            baseline_id = int(card.extra.get("pad_token_id") or 0)
            baseline = tok.token(baseline_id) or str(baseline_id)
        self.declaration = ValueDeclaration(output, target, target_index, baseline, baseline_id)

    def _logits(self, content: np.ndarray) -> np.ndarray:
        """Logits ``[r, C]`` of rows of content ids, run between the special tokens."""
        ids = np.concatenate(
            [
                np.repeat(self.prefix[None], len(content), 0),
                content,
                np.repeat(self.suffix[None], len(content), 0),
            ],
            axis=1,
        )
        rows = max(1, min(self.batch_size, self.TOKENS_PER_CALL // ids.shape[1]))
        out = []
        for start in range(0, len(ids), rows):
            chunk = ids[start : start + rows]
            (logits,) = self.session.run(
                ["logits"], {"input_ids": chunk, "attention_mask": np.ones_like(chunk)}
            )
            out.append(logits.astype(np.float64))
            self.calls += 1
            self.rows += len(chunk)
        return np.concatenate(out)

    def _window_logits(self, w: int, content: np.ndarray, masks: np.ndarray) -> np.ndarray:
        a, b = self.windows[w]
        part = content[:, a:b]
        if self._seen is None:
            return self._logits(part)
        seen = self._seen[w]
        keys = [row.tobytes() for row in np.packbits(masks[:, a:b], axis=1)]
        missing = {}
        for key, row in zip(keys, part, strict=True):
            if key not in seen and key not in missing:
                missing[key] = row
        if missing:
            seen.update(zip(missing, self._logits(np.stack(list(missing.values()))), strict=True))
        return np.stack([seen[k] for k in keys])

    def outputs(self, masks: np.ndarray) -> np.ndarray:
        """The declared output of every class ``[m, C]``: one run per coalition answers for all
        of them, so explaining another class, or a contrast of two, costs no model run."""
        masks = np.asarray(masks, dtype=bool)
        if masks.ndim != 2 or masks.shape[1] != self.players:
            raise ValueError(f"masks must be [m, {self.players}], got {list(masks.shape)}")
        if not len(masks):
            return np.empty((0, self.classes), dtype=np.float64)
        content = np.repeat(self.content[None], len(masks), axis=0)
        content[~masks] = self.declaration.baseline_id
        logits = np.mean([self._window_logits(w, content, masks) for w in range(len(self.windows))], axis=0)
        if self.output == "logit":
            return logits
        z = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        """The declared output of the target class, one value per row of `masks`."""
        return self.outputs(masks)[:, self.declaration.target_index]


class HeadModel:
    """head.onnx as a function: pooled final hidden states [m, d] -> logits [m, C].

    Lets the analysis stage ask the model's own classifier about points of hidden space
    that no text produced (the decision-space grid).
    """

    def __init__(self, folder) -> None:
        if optional_model_file(folder, "head.onnx") is None:
            raise ConfigError(f"{folder}: no head.onnx (only classifiers of known families have one)")
        self.session = open_session(folder, "head.onnx")

    def __call__(self, pooled: np.ndarray) -> np.ndarray:
        (logits,) = self.session.run(None, {"hidden": np.asarray(pooled, dtype=np.float32)})
        return logits
