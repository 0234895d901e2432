"""The manifest of an exported model folder (`attnreport.json`), as a dataclass.

The export stage writes it; every later stage reads the model's facts from it and
never from the checkpoint, so that nothing after export needs torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from attnreport.core.errors import ConfigError

MANIFEST_NAME = "attnreport.json"
TASKS = ("sequence-classification", "causal-lm", "feature-extraction")


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

    def __post_init__(self) -> None:
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
        path = Path(folder) / MANIFEST_NAME
        if not path.is_file():
            raise ConfigError(
                f"{folder}: no {MANIFEST_NAME} here; export the checkpoint first "
                f"with `attnreport export CHECKPOINT -o DIR`"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: unreadable manifest ({exc}); export the model again") from exc
        return cls(**data)


def is_exported(folder: Path) -> bool:
    """True when `folder` holds an attnreport export (a manifest and model.onnx)."""
    folder = Path(folder)
    return (folder / MANIFEST_NAME).is_file() and (folder / "model.onnx").is_file()
