"""One copy of the weights for every graph of an export.

A causal LM's export holds several graphs over the same weights (``model.onnx``, the KV-cache
``decoder.onnx``, ``lm_head.onnx``), and the exporter writes each graph's weights beside it, so
the folder held the weights two and a half times. Here each graph's large initializers are
matched by content with those already written (the graphs name the same weight differently, so
names cannot match them) and point into one shared external-data file at the same offset and
length; a weight is written the first time it is met. onnxruntime resolves ``location``
relative to the graph's folder and refuses paths that leave it: the shared file sits beside
the graphs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

#: the shared external-data file, beside the graphs
WEIGHTS_FILE = "weights.onnx.data"
#: initializers of at most this many bytes stay inside their graph (scalars, shapes, small biases)
INLINE_BYTES = 1024
#: offsets of tensors over `ALIGN_OVER` bytes are aligned to this (Windows' mapping granularity),
#: so a runtime can memory-map each weight where it lies
ALIGN = 1 << 16
ALIGN_OVER = 1 << 20


def _as_bytes(tensor) -> np.ndarray:
    """The tensor's bytes as a flat uint8 array, without copying where the layout allows."""
    try:
        array = np.ascontiguousarray(tensor.numpy())
    except (TypeError, ValueError):  # a dtype numpy has no view of
        return np.frombuffer(tensor.tobytes(), dtype=np.uint8)
    return array.reshape(-1).view(np.uint8)


class SharedWeights:
    """Writes the large initializers of each graph saved through it into one file in `folder`,
    each distinct tensor (by its bytes) once.

    ``graphs`` lists the graph files saved, ``unique_bytes`` the bytes written and
    ``shared_bytes`` the bytes that pointed at a weight already written.
    """

    def __init__(self, folder: Path, name: str = WEIGHTS_FILE) -> None:
        self.folder = Path(folder)
        self.name = name
        self.graphs: list[str] = []
        self.unique_bytes = 0
        self.shared_bytes = 0
        self._where: dict[bytes, tuple[int, int]] = {}

    @property
    def path(self) -> Path:
        return self.folder / self.name

    def save(self, model, path: Path) -> None:
        """Save the `onnx_ir` model `model` as `path` (in `folder`) with its large initializers in
        the shared file. The model is changed: those initializers become external tensors."""
        import onnx_ir as ir

        path = Path(path)
        if path.parent.resolve() != self.folder.resolve():
            raise ValueError(f"{path}: a graph sharing {self.name} must be saved in {self.folder}")
        with open(self.path, "ab") as out:
            for graph in model.graphs():
                for value in graph.initializers.values():
                    tensor = value.const_value
                    if tensor is None or tensor.nbytes <= INLINE_BYTES:
                        continue
                    data = _as_bytes(tensor)
                    key = hashlib.blake2b(data, digest_size=32).digest() + data.nbytes.to_bytes(8, "little")
                    if key in self._where:
                        offset, length = self._where[key]
                        self.shared_bytes += length
                    else:
                        offset, length = self._append(out, data), data.nbytes
                        self._where[key] = offset, length
                        self.unique_bytes += length
                    value.const_value = ir.ExternalTensor(
                        self.name,
                        offset,
                        length,
                        tensor.dtype,
                        shape=tensor.shape,
                        name=value.name,
                        base_dir=str(self.folder),
                    )
        ir.save(model, str(path))
        self.graphs.append(path.name)

    @staticmethod
    def _append(out, data: np.ndarray) -> int:
        offset = out.tell()
        if data.nbytes > ALIGN_OVER and offset % ALIGN:
            out.write(b"\0" * (ALIGN - offset % ALIGN))
            offset = out.tell()
        out.write(memoryview(data))
        return offset
