"""A generation report built from report.toml, checked against independent references: the answers
transformers' own generate writes, the forced answer given, and rollout of the whole-sequence graph."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sitebuild import HOSTILE, write_config

from attnreport.analysis.generation import analyse_generation
from attnreport.analysis.rollout import rollout
from attnreport.cli import main
from attnreport.core.config import load_config
from attnreport.pipeline import build
from attnreport.trace import GenerationOptions, Generator, Prompt, Tracer

NEW = 6
PROMPTS = [
    {"id": "card", "prompt": "the card was charged twice"},
    {"id": "forced", "prompt": "refill please", "completion": " ok then"},
    {"id": "hostile", "prompt": HOSTILE[0]},
]


def write(folder, model, rows, extra=""):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prompts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    config = folder / "report.toml"
    config.write_text(
        f'title = "Answers"\ncache_dir = "cache"\n[model]\npath = "{model}"\n[data]\npath = "prompts.jsonl"\n'
        f"[generate]\nmax_new_tokens = {NEW}\nchat_template = true\n{extra}",
        encoding="utf-8",
    )
    return config


@pytest.fixture(scope="module")
def built(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("genbuild")
    config = load_config(write(root, tiny.export("qwen2-chat"), PROMPTS))
    result = build(config, root / "site", progress=False, log=lambda m: None)
    return result.site, json.loads((result.site / "report.json").read_text(encoding="utf-8"))


def test_answers_are_transformers_generate_on_the_templated_prompt(tiny, built):
    import torch
    import transformers

    site, report = built
    assert report["kind"] == "generation" and [e["id"] for e in report["examples"]] == [
        "card",
        "forced",
        "hostile",
    ]
    checkpoint = tiny.checkpoint("qwen2-chat")
    tok = transformers.AutoTokenizer.from_pretrained(str(checkpoint))
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(checkpoint), attn_implementation="eager"
    ).eval()
    for entry in (report["examples"][0], report["examples"][2]):
        g = entry["generation"]
        ids = tok.apply_chat_template(
            [{"role": "user", "content": entry["text"]}], add_generation_prompt=True, tokenize=True
        )
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids  # a BatchEncoding in newer transformers
        assert g["prompt_ids"] == list(ids)
        with torch.no_grad():
            out = model.generate(torch.tensor([ids]), max_new_tokens=NEW, do_sample=False, pad_token_id=0)
        want = out[0, len(ids) :].tolist()
        assert g["ids"] == want[: len(g["ids"])] and g["forced"] is False
        assert len(g["steps"]) == len(g["ids"]) and all(s["rank"] == 0 for s in g["steps"])
        assert any(g["from_template"]) and not all(g["from_template"])
        assert (site / entry["page"]).is_file()
    forced = report["examples"][1]["generation"]
    assert forced["forced"] is True and forced["text"] == " ok then" and forced["stop_reason"] == "forced"


def test_step_rollout_equals_rollout_of_the_whole_sequence_graph(tiny):
    """The KV-cache rows plus the prompt's own attention, assembled, against model.onnx run once
    over prompt + answer (another graph, no cache)."""
    folder = tiny.export("qwen2-chat")
    (trace,) = Generator(folder, use_cache=False).generate(
        [Prompt("p", "where is my parcel")], GenerationOptions(max_new_tokens=NEW, chat_template=True)
    )
    ids = np.concatenate([trace.prompt_ids, trace.ids[:-1]])
    whole = Tracer(folder, use_cache=False).attentions_for_ids(ids)
    steps = trace.n_prompt - 1 + np.arange(trace.steps)
    np.testing.assert_allclose(analyse_generation(trace).rollout, rollout(whole)[steps], atol=1e-5)


def test_generate_on_a_classifier_is_one_line_and_exit_2(tiny, tmp_path, capsys):
    config = write(tmp_path, tiny.export("bert"), PROMPTS[:1])
    assert main(["build", str(config), "-o", str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "[generate] needs a causal LM" in err[0] and not (tmp_path / "site").exists()


def test_the_answers_flow_scene_is_the_whole_sequence_attention(tiny):
    """The 3D flow of an answer: its lattice holds model.onnx's attention over prompt + answer (run
    once, no cache), and each layer's tubes are every query's top-3 keys of its head average."""
    from attnreport.scenes.answer_flow import answer_flow_scene, answer_lattice

    folder = tiny.export("qwen2-chat")
    (trace,) = Generator(folder, use_cache=False).generate(
        [Prompt("p", "where is my parcel")], GenerationOptions(max_new_tokens=NEW, chat_template=True)
    )
    result = analyse_generation(trace)
    ids = np.concatenate([trace.prompt_ids, trace.ids[:-1]])
    whole = Tracer(folder, use_cache=False).attentions_for_ids(ids)
    lattice, relevance = answer_lattice(result)
    np.testing.assert_allclose(lattice.attentions, whole, atol=1e-5)
    np.testing.assert_allclose(relevance, result.rollout.mean(axis=0))
    scene = answer_flow_scene(result)
    size = len(ids)
    for layer, lines in enumerate(scene.lines):
        mean = whole[layer].mean(axis=0)
        want = set()
        for q in range(size):
            for k in np.argsort(-mean[q], kind="stable")[:3]:
                if mean[q, k] > 0:
                    want.add((int(k), q))
        got = {(round(s[0][0]), round(s[1][0])) for s in lines.segments}
        # ties at the third place may pick either key: every edge drawn is a top-3 weight
        assert got <= want | {(k, q) for k, q in got if np.isclose(mean[q, k], np.sort(mean[q])[-3])}
        assert len(got) == sum(min(3, int((mean[q] > 0).sum())) for q in range(size))
    n = trace.n_prompt
    assert scene.points.labels[n].startswith("answer token 0:")
    assert "Attention flow of the answer" in scene.title


def test_a_causal_lm_given_texts_is_one_line_naming_prompts(tiny, tmp_path, capsys):
    """No classification report of an LM's (class-less) outputs: the kind follows the model."""
    config = write_config(tmp_path / "p", tiny.export("qwen2"), [{"id": "a", "text": "where is my parcel"}])
    assert main(["build", str(config), "-o", str(tmp_path / "site"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "is a causal LM" in err and "[data] prompts" in err and err.count("\n") == 1
    assert not (tmp_path / "site").exists()


def test_a_prompt_past_the_attention_limit_says_which_limit_dropped_its_views(tiny, tmp_path):
    """Past `prompt_attention_limit` the prompt's n x n attention, rollout and 3D scene are dropped;
    report.json and the page name the limit and how to raise it."""
    extra = "prompt_attention_limit = 3\nattributions = []\n"
    config = load_config(write(tmp_path, tiny.export("qwen2-chat"), PROMPTS[:1], extra))
    site = build(config, tmp_path / "site", progress=False, log=lambda m: None).site
    (entry,) = json.loads((site / "report.json").read_text(encoding="utf-8"))["examples"]
    assert entry["generation"]["prompt_attention_limit"] == 3
    page = (site / entry["page"]).read_text(encoding="utf-8")
    assert 'id="prompt-attention-limit"' in page and "(3)" in page
    assert "[generate] prompt_attention_limit" in page
    assert 'id="flow-card"' not in page
