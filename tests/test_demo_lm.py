"""The generation demo's own causal LM: corpus, tokenizer, chat template, training, checkpoint.

Training runs a reduced recipe on a slice of the corpus (seconds); the full recipe is checked by
``ATTNREPORT_FULL_DEMO_LM=1 pytest tests/test_demo_lm.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from attnreport.demo_lm import DEMO_PROMPTS, corpus_path, demo_lm_key, held_out_prompt
from attnreport.export.demo_lm import (
    CHAT_TEMPLATE,
    IM_END,
    IM_START,
    PAD,
    RECIPE,
    encode_pairs,
    nearest_row,
    prompt_text,
    qa_rows,
    reduced,
    save_tokenizer,
    split_qa,
    tokenizer_texts,
    train_tokenizer,
    unigram_perplexity,
)

APPLE = "苹果公司成立于哪一年?"
#: small enough to train in seconds, large enough to learn the slice's answers
SMALL = reduced(
    vocab_size=800, hidden_size=64, layers=2, heads=4, kv_heads=2, intermediate_size=128, steps=150, batch=16
)


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return qa_rows()


@pytest.fixture(scope="module")
def tokenizer(rows):
    train, _ = split_qa(rows)
    return train_tokenizer(tokenizer_texts(train), RECIPE.vocab_size)


def test_corpus_is_paraphrased_pairs_in_the_demo_domains(rows):
    assert len(rows) >= 300
    assert len({r["id"] for r in rows}) == len(rows)
    assert len({r["question"] for r in rows}) == len(rows)
    domains = Counter(r["domain"] for r in rows)
    assert {"finance", "medicine", "customer_service"} <= set(domains)
    assert min(domains[d] for d in ("finance", "medicine", "customer_service")) >= 100
    for intent in {r["intent"] for r in rows}:
        group = [r for r in rows if r["intent"] == intent]
        assert len(group) >= 2 and len({r["answer"] for r in group}) == 1, intent
    assert sum(r["lang"] == "zh" for r in rows) >= 10
    assert any(r["question"] == APPLE and r["answer"] == "苹果是一种水果。" for r in rows)


def test_split_is_deterministic_stratified_and_keeps_every_answer_in_training(rows):
    train, test = split_qa(rows)
    assert split_qa(rows) == (train, test)
    assert split_qa(list(reversed(rows))) == (train, test)  # by id, not by file order
    assert {r["id"] for r in train}.isdisjoint({r["id"] for r in test})
    assert len(train) + len(test) == len(rows)
    for domain in ("finance", "medicine", "customer_service"):
        share = sum(r["domain"] == domain for r in test) / sum(r["domain"] == domain for r in rows)
        assert abs(share - 0.2) < 0.02, domain
    trained = {r["intent"] for r in train}
    assert all(r["intent"] in trained for r in test)
    assert len({r["intent"] for r in test}) == len(test)  # one paraphrase per intent at most
    first = {}
    for r in sorted(rows, key=lambda r: r["id"]):
        first.setdefault(r["intent"], r["id"])
    assert set(first.values()) <= {r["id"] for r in train}
    assert APPLE in {r["question"] for r in train}


def test_tokenizer_round_trips_every_corpus_text_without_unknowns(rows, tokenizer):
    vocab = tokenizer.get_vocab_size()
    assert 1000 <= vocab <= RECIPE.vocab_size
    assert tokenizer.get_vocab()[PAD] == 0
    texts = [t for r in rows for t in (r["question"], r["answer"])]
    texts += ["Ünïcödé, emoji 🙂 and 中文 never seen in training\ttabs\n", "苹果公司成立于哪一年?"]
    for text in texts:
        encoding = tokenizer.encode(text)
        assert encoding.ids and all(0 <= i < vocab for i in encoding.ids)
        assert tokenizer.decode(encoding.ids) == text
        # offsets cover the text in order; byte-level tokens may split one character's bytes
        # (Chinese), and then two neighbouring tokens share that character's span
        starts = [a for a, _ in encoding.offsets]
        assert starts == sorted(starts) and all(0 <= a <= b <= len(text) for a, b in encoding.offsets)
        assert {i for a, b in encoding.offsets for i in range(a, b)} == set(range(len(text)))
    # training pairs are tokenized in two pieces: that must equal tokenizing the whole
    for r in rows:
        whole = tokenizer.encode(prompt_text(r["question"]) + r["answer"]).ids
        (ids, n), *_ = encode_pairs(tokenizer, [r])
        assert ids[:-1] == whole and ids[-1] == tokenizer.token_to_id(IM_END)
        assert ids[:n] == tokenizer.encode(prompt_text(r["question"])).ids


def test_chat_template_renders_what_transformers_renders(tokenizer, tmp_path):
    transformers = pytest.importorskip("transformers")
    save_tokenizer(tokenizer, tmp_path, max_length=RECIPE.max_positions)
    tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    assert tok.chat_template == CHAT_TEMPLATE
    assert tok.eos_token == IM_END and tok.pad_token == PAD
    for question in ("How do I report a stolen card?", APPLE):
        messages = [{"role": "user", "content": question}]
        text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        assert text == prompt_text(question) == f"{IM_START}user\n{question}{IM_END}\n{IM_START}assistant\n"
        ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
        assert list(ids["input_ids"]) == tokenizer.encode(prompt_text(question)).ids
        assert tok.convert_ids_to_tokens(ids["input_ids"][:3]) == [IM_START, "user", "Ċ"]
    dialogue = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
    ]
    expected = [
        f"{IM_START}{role}\n{text}{IM_END}\n"
        for role, text in zip(("system", "user", "assistant"), ("Be brief.", "Hi", "Hello."), strict=True)
    ]
    assert tok.apply_chat_template(dialogue, tokenize=False) == "".join(expected)


def test_unigram_baseline_is_add_one_smoothed_frequencies():
    train = [([9, 1, 2, 2], 1), ([9, 2], 1)]  # targets 1, 2, 2, 2 (the prompt token 9 is not counted)
    test = [([9, 1, 3], 1)]  # targets 1, 3
    vocab = 10
    p1, p3 = (1 + 1) / (4 + vocab), (0 + 1) / (4 + vocab)
    assert unigram_perplexity(train, test, vocab) == pytest.approx((p1 * p3) ** -0.5)


def test_nearest_row_names_the_answer_a_generation_set_out_to_give(rows):
    card = next(r for r in rows if r["intent"] == "fin-card-stolen")
    assert nearest_row(card["answer"], rows)["intent"] == "fin-card-stolen"
    assert nearest_row(card["answer"][:30] + " and then something else", rows)["intent"] == "fin-card-stolen"


def test_demo_prompts_are_corpus_questions(rows):
    by_id = {r["id"]: r for r in rows}
    assert len(DEMO_PROMPTS) >= 10
    for corpus_id, prompt in DEMO_PROMPTS:
        assert by_id[corpus_id]["question"] == prompt
    assert APPLE in dict(DEMO_PROMPTS).values()
    _, test = split_qa(rows)
    facts = {"heldout_ids": [r["id"] for r in test]}
    assert 0 < sum(held_out_prompt(i, facts) for i, _ in DEMO_PROMPTS) < len(DEMO_PROMPTS)


def test_cache_key_follows_recipe_and_corpus(tmp_path):
    other = tmp_path / "qa.jsonl"
    other.write_bytes(corpus_path().read_bytes() + b"\n")
    assert demo_lm_key() == demo_lm_key(RECIPE, corpus_path())
    assert demo_lm_key().startswith(RECIPE.name + "-")
    assert len({demo_lm_key(), demo_lm_key(SMALL), demo_lm_key(RECIPE, other)}) == 3


@pytest.fixture(scope="module")
def small_lm(tmp_path_factory, rows):
    """The reduced recipe trained through the cached entry point on a third of the intents."""
    pytest.importorskip("torch")
    from attnreport.demo_lm import demo_lm

    intents = sorted({r["intent"] for r in rows})[::3]
    root = tmp_path_factory.mktemp("demolm")
    corpus = root / "qa.jsonl"
    corpus.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows if r["intent"] in intents),
        encoding="utf-8",
    )
    messages: list[str] = []
    folder, facts = demo_lm(root / "cache", recipe=SMALL, corpus=corpus, log=messages.append)
    return folder, facts, messages, root, corpus


def test_training_beats_the_unigram_baseline_on_held_out_answers(small_lm):
    folder, facts, messages, *_ = small_lm
    assert facts["steps"] == SMALL.steps and facts["parameters"] > 0
    assert facts["heldout_pairs"] > 0 and facts["train_pairs"] > 3 * facts["heldout_pairs"]
    assert any("step" in m for m in messages)
    # both measured on the same held-out answer tokens; the model must be far better
    assert facts["heldout_perplexity"] < facts["unigram_perplexity"] / 5
    assert facts["train_perplexity"] < facts["heldout_perplexity"]
    assert json.loads((folder / "training.json").read_text()) == facts


def test_cache_trains_once(small_lm):
    from attnreport.demo_lm import demo_lm

    folder, facts, _, root, corpus = small_lm
    messages: list[str] = []
    again = demo_lm(root / "cache", recipe=SMALL, corpus=corpus, log=messages.append)
    assert again == (folder, facts) and messages == []
    assert sorted(p.name for p in folder.parent.iterdir()) == ["checkpoint"]  # no scratch, no lock


def test_checkpoint_loads_with_auto_classes_and_generates(small_lm):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    folder, *_ = small_lm
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json"} <= {
        p.name for p in Path(folder).iterdir()
    }
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "qwen2"
    assert config["num_key_value_heads"] < config["num_attention_heads"]  # grouped-query attention
    tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    model = transformers.AutoModelForCausalLM.from_pretrained(str(folder), attn_implementation="eager")
    assert model.generation_config.eos_token_id == tok.convert_tokens_to_ids(IM_END)
    inputs = tok.apply_chat_template(
        [{"role": "user", "content": "How do I report a stolen card?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    n = inputs["input_ids"].shape[1]
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=12, do_sample=False)
        run = model(**inputs, output_attentions=True)
    assert n < out.shape[1] <= n + 12
    assert isinstance(tok.decode(out[0, n:], skip_special_tokens=True), str)
    assert len(run.attentions) == config["num_hidden_layers"]
    assert run.attentions[0].shape == (1, config["num_attention_heads"], n, n)
    rows = run.attentions[0][0].sum(-1)
    assert torch.allclose(rows, torch.ones_like(rows), atol=1e-5)
    assert float(run.attentions[0][0, :, 0, 1:].abs().max()) == 0.0  # causal


FULL = os.environ.get("ATTNREPORT_FULL_DEMO_LM")


@pytest.mark.skipif(not FULL, reason="the full recipe: set ATTNREPORT_FULL_DEMO_LM=1")
def test_full_recipe_answers_trained_demo_prompts(tmp_path, rows):
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer

    from attnreport.demo_lm import demo_lm
    from attnreport.export.demo_lm import greedy_answer

    folder, facts = demo_lm(tmp_path / "cache", log=lambda m: None)
    assert facts["seconds"] < 180
    assert facts["heldout_perplexity"] < facts["unigram_perplexity"] / 50
    transformers = pytest.importorskip("transformers")
    model = transformers.AutoModelForCausalLM.from_pretrained(str(folder), attn_implementation="eager")
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    by_id = {r["id"]: r for r in rows}
    for corpus_id, prompt in DEMO_PROMPTS:
        if not held_out_prompt(corpus_id, facts):
            assert greedy_answer(torch, model, tok, prompt) == by_id[corpus_id]["answer"], prompt
