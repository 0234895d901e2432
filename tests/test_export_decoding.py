"""A checkpoint whose generation_config.json asks for sampling and a repetition penalty (as
Qwen2.5-Instruct's does) exports: the check compares plain greedy decoding on both sides, and the
manifest records which decoding it checked and the checkpoint's own settings that differ."""

from __future__ import annotations

import json
import shutil

#: Qwen2.5-Instruct's kind of settings, with a penalty strong enough to move a tiny model's tokens
SETTINGS = {"do_sample": True, "repetition_penalty": 1.3, "temperature": 0.7, "top_p": 0.8, "top_k": 20}


def test_sampling_and_penalty_defaults_export_and_are_recorded(tiny, tmp_path):
    import torch
    import transformers
    from transformers import GenerationConfig

    from attnreport.cli import main
    from attnreport.core.modelcard import ModelCard
    from attnreport.export import export_model
    from attnreport.export.onnx_export import VERIFY_TEXTS

    checkpoint = tmp_path / "qwen2-sampling"
    shutil.copytree(tiny.checkpoint("qwen2"), checkpoint)
    config = {"bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 1, **SETTINGS}
    (checkpoint / "generation_config.json").write_text(json.dumps(config), encoding="utf-8")

    # the fixture does what the bug needs: transformers' generate, given a greedy config, merges the
    # checkpoint's settings and picks other tokens than plain greedy decoding on a check prompt
    model = transformers.AutoModelForCausalLM.from_pretrained(str(checkpoint), attn_implementation="eager")
    tok = transformers.AutoTokenizer.from_pretrained(str(checkpoint))
    greedy = GenerationConfig(do_sample=False, max_new_tokens=8, pad_token_id=1, eos_token_id=None)
    torch.manual_seed(0)
    differ = 0
    for text in VERIFY_TEXTS:
        ids = tok(text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            merged = model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=greedy
            )
            plain = ids
            for _ in range(8):
                plain = torch.cat([plain, model(plain).logits[:, -1:].argmax(-1)], dim=1)
        differ += merged[0].tolist() != plain[0].tolist()
    assert differ

    card = export_model(checkpoint, tmp_path / "out")
    assert card.generation.checked["decoding"] == "greedy"
    assert card.generation.checked["greedy_tokens_match"] is True
    assert card.generation.checkpoint_defaults == SETTINGS
    again = ModelCard.load(tmp_path / "out")
    assert again.generation.checkpoint_defaults == SETTINGS
    assert again.to_dict() == card.to_dict()

    # the report says so: report.json's model, and the index beside the model's facts
    (tmp_path / "prompts.jsonl").write_text('{"id": "p", "prompt": "refill please"}\n', encoding="utf-8")
    config = tmp_path / "report.toml"
    config.write_text(
        f'title = "t"\ncache_dir = "cache"\n[model]\npath = "{tmp_path / "out"}"\n'
        f'[data]\npath = "prompts.jsonl"\n[generate]\nmax_new_tokens = 3\n',
        encoding="utf-8",
    )
    assert main(["build", str(config), "-o", str(tmp_path / "site"), "--quiet"]) == 0
    report = json.loads((tmp_path / "site" / "report.json").read_text(encoding="utf-8"))
    assert report["model"]["checkpoint_decoding"] == SETTINGS
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    shown = index[index.index('id="decoding"') :].split("</dd>")[0]
    assert shown.startswith('id="decoding">greedy')
    for name, value in SETTINGS.items():
        assert f"<code>{name}</code> {value}" in shown


def test_a_plain_checkpoint_records_no_defaults(tiny):
    from attnreport.core.modelcard import ModelCard

    card = ModelCard.load(tiny.export("llama"))
    assert card.generation.checkpoint_defaults == {}
    assert card.generation.checked["decoding"] == "greedy"
