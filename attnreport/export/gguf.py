"""GGUF files in: a model as llama.cpp, Ollama and LM Studio users hold it, exported like a checkpoint.

A front-end, not a second export: transformers' GGUF loader dequantizes the file into an ordinary
model, which is written as a checkpoint folder in a scratch folder beside the target (weights,
config, and the tokenizer and chat template from the file's metadata) and handed to `export_model`,
so a GGUF model gets the same graphs, checks and manifest as a Hugging Face folder. The manifest
then says what a user comparing with llama.cpp must know (``extra["gguf"]``): which file (its
SHA-256), how it was quantized, and that the explained model is the dequantized one, so its last
digits differ from llama.cpp's, which computes on the quantized blocks.

The file is read with the `gguf` package's reader before torch is imported, so a file that is not a
GGUF, is cut short, or holds an architecture we do not export is a one-line error at once.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import importlib.util
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from attnreport.core.errors import ExportError
from attnreport.core.files import guard_output, recover_folder, sha256_file, swap_folder
from attnreport.core.modelcard import ModelCard, is_exported

GGUF_MAGIC = b"GGUF"
#: ``general.architecture`` values that transformers' GGUF loader dequantizes and our export is
#: tested on (tests/test_gguf.py); the GGUF name, which is also the transformers ``model_type``
ARCHITECTURES = ("gpt2", "llama", "qwen2")
#: what a GGUF file can be exported as: it holds a language model and nothing else
TASKS = (None, "causal-lm", "feature-extraction")
INSTALL_HINT = "pip install 'attnreport[export]' (it brings gguf and accelerate)"


@dataclass
class GGUFInfo:
    """What the manifest records of a GGUF file (``ModelCard.extra["gguf"]``)."""

    file: str
    sha256: str
    architecture: str
    #: the file's quantization as llama.cpp names it (``Q4_1``, ``Q4_K_M``, ``F32``...): its
    #: ``general.file_type``, or when that is missing the type most of its matrices are stored in
    quantization: str
    #: how many tensors are stored in each type (llama.cpp keeps norms in F32, some matrices finer)
    tensor_types: dict[str, int] = field(default_factory=dict)
    name: str = ""
    #: the explained model is the file's weights dequantized (to the export's dtype), not the
    #: quantized blocks llama.cpp computes on
    dequantized: bool = True
    dequantized_to: str = "float32"

    def to_dict(self) -> dict:
        return asdict(self)


def is_gguf(path: Path) -> bool:
    """Whether `path` is meant as a GGUF file: a file named ``*.gguf`` or starting with GGUF's magic.
    A ``.gguf`` that is not one is still taken, so that it is refused with a reason."""
    path = Path(path)
    if not path.is_file():
        return False
    if path.suffix.lower() == ".gguf":
        return True
    with open(path, "rb") as fh:
        return fh.read(len(GGUF_MAGIC)) == GGUF_MAGIC


def _need_packages() -> None:
    missing = [m for m in ("gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        raise ExportError(f"reading a GGUF file needs {' and '.join(missing)}: {INSTALL_HINT}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _quantization(
    file_type: int | None, tensor_types: collections.Counter, matrices: collections.Counter
) -> str:
    """llama.cpp's name of the file's quantization, without its ``MOSTLY_`` / ``ALL_`` prefix."""
    from gguf import LlamaFileType

    if file_type is not None:
        with contextlib.suppress(ValueError):
            kind = LlamaFileType(file_type)
            if kind != LlamaFileType.GUESSED:
                return kind.name.removeprefix("MOSTLY_").removeprefix("ALL_")
    counts = matrices or tensor_types
    return counts.most_common(1)[0][0] if counts else "unknown"


def read_gguf(path: Path) -> GGUFInfo:
    """Read `path`'s metadata and tensor table with the `gguf` package, checking that every tensor's
    data is in the file; raise a one-line `ExportError` for anything that is not a whole GGUF file
    of a supported architecture."""
    _need_packages()
    path = Path(path)
    with open(path, "rb") as fh:
        magic = fh.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise ExportError(f"{path}: not a GGUF file (it does not start with {GGUF_MAGIC!r}); check the path")
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
        fields = reader.fields
        arch_field = fields.get("general.architecture")
        architecture = str(arch_field.contents()) if arch_field is not None else ""
        name_field = fields.get("general.name")
        name = str(name_field.contents()) if name_field is not None else ""
        type_field = fields.get("general.file_type")
        file_type = int(type_field.contents()) if type_field is not None else None
        tensor_types: collections.Counter = collections.Counter()
        matrices: collections.Counter = collections.Counter()
        for tensor in reader.tensors:
            if tensor.data.nbytes != tensor.n_bytes:
                raise ValueError(f"tensor {tensor.name} is cut short")
            tensor_types[tensor.tensor_type.name] += 1
            if len(tensor.shape) > 1:
                matrices[tensor.tensor_type.name] += 1
    except ExportError:
        raise
    except Exception as exc:  # the reader raises many types (struct, numpy, key errors): all mean "bad file"
        raise ExportError(
            f"{path}: unreadable GGUF file ({_first_line(exc)}); it may be truncated, re-download it"
        ) from exc
    if not reader.tensors:
        raise ExportError(f"{path}: the GGUF file holds no tensors; re-download it")
    if architecture not in ARCHITECTURES:
        raise ExportError(
            f"{path}: GGUF architecture {architecture or 'unknown'!r} is not supported; "
            f"supported: {', '.join(ARCHITECTURES)}"
        )
    return GGUFInfo(
        file=path.name,
        sha256=sha256_file(path),
        architecture=architecture,
        quantization=_quantization(file_type, tensor_types, matrices),
        tensor_types=dict(sorted(tensor_types.items())),
        name=name,
    )


def _quiet():
    from attnreport.export.onnx_export import _quiet as quiet

    return quiet()


def write_checkpoint(path: Path, folder: Path, *, dtype: str = "float32") -> Path:
    """Dequantize the GGUF file `path` into a Hugging Face checkpoint in `folder` (created): weights as
    safetensors in `dtype`, config, generation config, and the tokenizer with its chat template, all
    through transformers' GGUF loader. The model is freed before returning."""
    import torch
    import transformers
    from safetensors.torch import save_file

    path, folder = Path(path), Path(folder)
    where, name = str(path.parent), path.name
    try:
        with _quiet():
            model = transformers.AutoModelForCausalLM.from_pretrained(
                where, gguf_file=name, dtype=getattr(torch, dtype), attn_implementation="eager"
            )
            tok = transformers.AutoTokenizer.from_pretrained(where, gguf_file=name)
    except Exception as exc:  # transformers' loader raises many types for a file it cannot map
        raise ExportError(f"{path}: transformers cannot load this GGUF file ({_first_line(exc)})") from exc
    folder.mkdir(parents=True)
    config = model.config
    # the loaded model says it is gguf-quantized, which would make the folder load through the GGUF
    # path again; the folder holds the dequantized weights, an ordinary checkpoint
    with contextlib.suppress(AttributeError):
        del config.quantization_config
    config.architectures = [type(model).__name__]
    config.save_pretrained(str(folder))
    model.generation_config.save_pretrained(str(folder))
    # tied weights (the unembedding of a file with no output.weight) share one tensor: keep its first name
    seen: set[int] = set()
    weights = {}
    for key, tensor in model.state_dict().items():
        if tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        weights[key] = tensor.contiguous()
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with _quiet():
        tok.save_pretrained(str(folder))
    del model, weights, tok
    gc.collect()
    return folder


def export_gguf(
    path: Path,
    out: Path,
    *,
    task: str | None = None,
    dtype: str = "float32",
    log=lambda message: None,
    **options,
) -> ModelCard:
    """Export the GGUF file `path` into `out` as `export_model` exports a checkpoint folder (`options`
    are its keyword arguments) and return the manifest, which records the file (``extra["gguf"]``).

    The dequantized checkpoint and the export are made in a scratch folder beside `out`, and the
    finished export swapped in whole, so a refused or failed export leaves `out` as it was.
    """
    from attnreport.export.onnx_export import DTYPES, export_model

    path, out = Path(path).resolve(), Path(out).resolve()
    info = read_gguf(path)
    if task not in TASKS:
        raise ExportError(
            f"{path}: a GGUF file holds a language model; --task {task} cannot be exported from it "
            f"(use causal-lm or feature-extraction)"
        )
    if dtype not in DTYPES:
        raise ExportError(f"--dtype {dtype!r} is unknown; known: {', '.join(DTYPES)}")
    guard_output(out, inputs=[path], ours=is_exported(out), what="export", error=ExportError)
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ExportError(
            "export needs torch and transformers: pip install torch==2.13.0 'attnreport[export]'"
        ) from exc
    info.dequantized_to = dtype
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.gguf-", dir=out.parent) as scratch:
        checkpoint, export = Path(scratch) / "checkpoint", Path(scratch) / "export"

        def said(message: str) -> str:
            """A message about the scratch folders, told about the file and the target instead."""
            return message.replace(str(checkpoint), f"{path} (dequantized)").replace(str(export), str(out))

        log(f"dequantizing {path} ({info.architecture}, {info.quantization}) to {dtype}")
        write_checkpoint(path, checkpoint, dtype=dtype)
        try:
            card = export_model(
                checkpoint, export, task=task, dtype=dtype, log=lambda m: log(said(m)), **options
            )
        except ExportError as exc:
            raise ExportError(said(str(exc))) from exc
        shutil.rmtree(checkpoint)
        card.source = str(path)
        card.extra["gguf"] = info.to_dict()
        card.save(export)
        recover_folder(out)
        swap_folder(export, out)
    return card


__all__ = ["ARCHITECTURES", "GGUFInfo", "export_gguf", "is_gguf", "read_gguf", "write_checkpoint"]
