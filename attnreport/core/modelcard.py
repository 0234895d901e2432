"""The manifest of an exported model folder (`attnreport.json`), as a dataclass.

The export stage writes it; every later stage reads the model's facts from it and
never from the checkpoint, so that nothing after export needs torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from attnreport.core.errors import ConfigError
from attnreport.core.files import confined_file
from attnreport.core.schema import shape_problem

MANIFEST_NAME = "attnreport.json"
TASKS = ("sequence-classification", "causal-lm", "feature-extraction")
DTYPES = ("float32", "float16")


@dataclass
class DecoderCard:
    """The generation graphs of a causal LM export: what `trace.generate` needs to feed them.

    ``decoder.onnx`` runs new positions against a KV cache: inputs ``input_ids [B, q]``,
    ``attention_mask [B, past + q]`` (1 on real tokens; left padding) and ``past_names``
    (``[B, kv_heads, past, head_dim]`` each, ``past`` may be 0: the prefill); outputs ``logits
    [B, q, V]``, ``attentions [B, L, H, q, past + q]`` and ``hidden_states [B, L + 1, q, d]`` of
    the new positions, ``value_norms [B, L, H, q]`` when the card names it (the new positions' value
    norms ``‖v^h W_O^h‖``, for norm-weighted attention), and ``present_names`` (the cache grown by
    ``q``). Position ids are computed
    inside the graph from the attention mask, as `transformers` does for left-padded batches.
    ``lm_head.onnx`` is the final norm and unembedding: ``hidden [m, d] -> logits [m, V]``.
    """

    decoder: str
    lm_head: str | None
    vocab_size: int
    kv_heads: int
    head_dim: int
    past_names: list[str]
    present_names: list[str]
    #: tokens that end an answer: the generation config's eos ids, then the tokenizer's
    eos_token_ids: list[int]
    #: the model's own ``hidden_states[-1]`` is already final-normed (so the lens reads layer L
    #: from the logits, and lm_head.onnx applies to the pre-norm stream of layers 0..L-1)
    last_hidden_normed: bool
    #: the export check: ONNX against PyTorch eager, greedy decoding, left-padded batches
    max_abs_diff: dict[str, float]
    tolerance: float
    #: how the check ran: prompts, new tokens per prompt, whether greedy tokens matched
    checked: dict = field(default_factory=dict)
    #: the checkpoint carries a chat template (tokenizer_config.json or chat_template.jinja)
    chat_template: bool = False
    #: the checkpoint's own decoding settings (generation_config.json) that differ from the plain
    #: greedy decoding the export checked and the trace runs, e.g. ``{"repetition_penalty": 1.05}``
    checkpoint_defaults: dict = field(default_factory=dict)
    #: the decoder's value-norm output (`attnreport.export.value_norms`): ``"value_norms"``, or None
    #: for exports made before it and models whose attention it cannot read
    value_norms: str | None = None
    #: the attention-free graph for forced runs (`attnreport.export.scorer`): ``decoder.onnx``'s
    #: inputs plus ``logit_positions [k]``, outputs ``logits [B, k, V]`` and the grown cache only;
    #: None for exports made before it (forced runs then use ``decoder``)
    scorer: str | None = None


@dataclass
class QKCard:
    """The queries and keys of a ``--with-qk`` export, for the neuron view.

    ``model.onnx`` then also returns ``queries`` and ``keys`` ``[B, L, H, n, head_dim]``: after
    rotary position encoding, keys repeated to the query heads (query head h reads key head
    ``h // (H / kv_heads)``), so that softmax(q·kᵀ·scale) over the keys a query may read is the
    attention. ``scales`` is that scale per layer (1/√head_dim, or GPT-2's 1/(√head_dim·(l+1))).
    """

    head_dim: int
    kv_heads: int
    scales: list[float]
    #: the export check: largest |softmax(q·kᵀ·scale) − attention| on a padded batch
    softmax_diff: float


@dataclass
class ModelCard:
    architecture: str
    task: str
    layers: int
    heads: int
    hidden_size: int
    max_positions: int
    causal: bool
    labels: list[str]
    opset: int
    weights_sha256: str
    max_abs_diff: dict[str, float]
    #: which token the prediction is read from: "first" (encoders) or "last" (causal LMs)
    read_position: str
    source: str = ""
    has_head: bool = False
    quantized: dict | None = None
    extra: dict = field(default_factory=dict)
    #: the weights' dtype in every graph; float16 exports are checked with a looser tolerance
    dtype: str = "float32"
    #: graphs whose large weights sit outside them as ONNX external data: in `weights_file`, or in
    #: exports made before it, each in its own ``<graph>.onnx.data``
    external_data: list[str] = field(default_factory=list)
    #: the one external-data file every graph in `external_data` points into, each weight once
    weights_file: str | None = None
    #: causal LMs: the KV-cache decoder and lm_head graphs (None for other tasks and old exports)
    generation: DecoderCard | None = None
    #: exports made with ``--with-qk``: the queries and keys outputs (None otherwise)
    qk: QKCard | None = None

    def __post_init__(self) -> None:
        if isinstance(self.generation, dict):
            self.generation = DecoderCard(**self.generation)
        if isinstance(self.qk, dict):
            self.qk = QKCard(**self.qk)
        if self.dtype not in DTYPES:
            raise ConfigError(f"model dtype {self.dtype!r} is unknown; known: {', '.join(DTYPES)}")
        if self.task not in TASKS:
            raise ConfigError(f"model task {self.task!r} is unknown; known tasks: {', '.join(TASKS)}")
        if self.read_position not in ("first", "last"):
            raise ConfigError(f"read_position must be 'first' or 'last', got {self.read_position!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, folder: Path) -> None:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        (Path(folder) / MANIFEST_NAME).write_text(text + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> ModelCard:
        """The manifest of `folder`, checked field by field: a model folder is not trusted, so a
        manifest of the wrong shape is a one-line error, never a traceback further on."""
        path = Path(folder) / MANIFEST_NAME
        if not path.exists() and not path.is_symlink():
            raise ConfigError(
                f"{folder}: no {MANIFEST_NAME} here; export the checkpoint first "
                f"with `attnreport export CHECKPOINT -o DIR`"
            )
        path = confined_file(folder, MANIFEST_NAME, error=ConfigError)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise ConfigError(
                f"{path}: unreadable manifest ({str(exc)[:120]}); export the model again"
            ) from exc
        problem = shape_problem(cls, data, "")
        if problem:
            raise ConfigError(f"{path}: {problem}; export the model again")
        return cls(**data)


def is_exported(folder: Path) -> bool:
    """True when `folder` holds an attnreport export (a manifest and model.onnx)."""
    folder = Path(folder)
    return (folder / MANIFEST_NAME).is_file() and (folder / "model.onnx").is_file()
