"""Generation traces in onnxruntime against independent references: transformers' generate, PyTorch
eager attentions, teacher forcing, the logit lens in PyTorch, transformers' chat templates, and a
hand-built copy circuit whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from attnreport.core.errors import ConfigError, InputError
from attnreport.core.modelcard import ModelCard
from attnreport.trace import ChatTemplate, GenerationOptions, Generator, Prompt

CAUSAL = ["gpt2", "llama", "qwen2"]
PROMPTS = [
    "the card was charged twice for the same order",
    "refill please",
    "my blood pressure readings have been high all week and where is my parcel",
]
NEW = 10


def load(checkpoint):
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(str(checkpoint), attn_implementation="eager")
    return model.eval(), transformers.AutoTokenizer.from_pretrained(str(checkpoint))


@pytest.fixture(scope="module")
def generated(tiny):
    """Each causal family's traces of PROMPTS, generated in one left-padded batch."""
    out = {}
    for family in CAUSAL:
        gen = Generator(tiny.export(family), use_cache=False, batch_size=3)
        out[family] = gen.generate_texts(PROMPTS, GenerationOptions(max_new_tokens=NEW))
    return out


def reference(model, prompt_ids, answer_ids):
    """PyTorch eager on prompt + answer (all but its last token): per position attentions
    [L, H, m, m], hidden [L + 1, m, d], logits [m, V]."""
    import torch

    ids = torch.tensor([list(prompt_ids) + list(answer_ids[:-1])])
    with torch.no_grad():
        out = model(input_ids=ids, output_attentions=True, output_hidden_states=True)
    return (
        torch.stack(out.attentions, 1)[0].numpy(),
        torch.stack(out.hidden_states, 1)[0].numpy(),
        out.logits[0].numpy(),
        out.hidden_states,
    )


@pytest.mark.parametrize("family", CAUSAL)
def test_greedy_tokens_match_transformers_generate(tiny, generated, family):
    import torch
    from transformers import GenerationConfig

    model, tok = load(tiny.checkpoint(family))
    config = GenerationConfig(do_sample=False, max_new_tokens=NEW, eos_token_id=[0], pad_token_id=1)
    for prompt, trace in zip(PROMPTS, generated[family], strict=True):
        ids = tok(prompt, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            want = model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config
            )
        want = want[0, ids.shape[1] :].tolist()
        assert trace.prompt_ids.tolist() == ids[0].tolist()
        assert trace.ids.tolist() == want
        assert trace.stop_reason == ("eos" if want[-1] == 0 and len(want) < NEW else "max_new_tokens")
        assert trace.answer == tok.decode(want, skip_special_tokens=True)


@pytest.mark.parametrize("family", CAUSAL)
def test_every_step_matches_pytorch_eager(tiny, generated, family):
    """Attention rows, prompt n x n, hidden states and the step scores, each against PyTorch eager
    run once over prompt + answer (no cache): the rows of the positions that chose each token."""
    import torch

    model, _ = load(tiny.checkpoint(family))
    for trace in generated[family]:
        n, steps = trace.n_prompt, trace.steps
        attn, hidden, logits, _ = reference(model, trace.prompt_ids, trace.ids)
        rows = slice(n - 1, n - 1 + steps)
        np.testing.assert_allclose(trace.attentions, attn[:, :, rows, : n + steps - 1], atol=1e-5)
        np.testing.assert_allclose(trace.prompt_attentions, attn[:, :, :n, :n], atol=1e-5)
        np.testing.assert_allclose(trace.hidden, hidden[:, rows], atol=1e-4, rtol=1e-4)
        p = torch.softmax(torch.from_numpy(logits[rows]).double(), -1).numpy()
        chosen = p[np.arange(steps), trace.ids]
        np.testing.assert_allclose(trace.probability, chosen, rtol=1e-4)
        assert trace.rank.tolist() == [int((p[t] > chosen[t]).sum()) for t in range(steps)]
        np.testing.assert_allclose(trace.entropy, -(p * np.log(p)).sum(-1), rtol=1e-4)
        assert trace.top_ids.shape == (steps, 5)
        assert trace.top_ids[:, 0].tolist() == p.argmax(-1).tolist()
        np.testing.assert_allclose(trace.top_probabilities, np.sort(p, -1)[:, ::-1][:, :5], rtol=1e-4)
        assert trace.attentions.shape[:2] == (2, 4)


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_teacher_forcing_equals_step_by_step(tiny, generated, family):
    """Forcing a generated answer (one pass over prompt + answer) gives the same log-probabilities,
    attention rows, hidden states and lens as generating it one step at a time."""
    gen = Generator(tiny.export(family), use_cache=False, batch_size=2)
    free = generated[family]
    forced = list(gen.generate(Prompt(str(i), t.prompt, tuple(t.ids)) for i, t in enumerate(free)))
    for a, b in zip(free, forced, strict=True):
        assert b.forced and b.stop_reason == "forced"
        assert b.ids.tolist() == a.ids.tolist()
        np.testing.assert_allclose(np.log(b.probability), np.log(a.probability), atol=1e-5)
        np.testing.assert_allclose(b.attentions, a.attentions, atol=1e-6)
        np.testing.assert_allclose(b.hidden, a.hidden, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(b.lens_probability, a.lens_probability, atol=1e-5)
    # a completion given as text is tokenized on its own and appended to the prompt
    (text,) = gen.generate_texts([PROMPTS[1]], completions=[" the card"])
    assert text.ids.tolist() == gen.tokenizer.encode(" the card", add_special_tokens=False).ids


@pytest.mark.parametrize("family", CAUSAL)
def test_logit_lens_matches_pytorch(tiny, generated, family):
    """Layer l < L: softmax(lm_head(final_norm(hidden_l))) in PyTorch at each choosing position;
    layer L: the model's own distribution (so the lens at the last layer is the answer)."""
    import torch

    model, _ = load(tiny.checkpoint(family))
    norm = model.transformer.ln_f if family == "gpt2" else model.model.norm
    for trace in generated[family]:
        n, steps = trace.n_prompt, trace.steps
        _, _, logits, states = reference(model, trace.prompt_ids, trace.ids)
        rows = slice(n - 1, n - 1 + steps)
        with torch.no_grad():
            lens = [model.lm_head(norm(h[0, rows])) for h in states[:-1]] + [torch.from_numpy(logits[rows])]
        p = torch.softmax(torch.stack(lens).double(), -1).numpy()  # [L + 1, T, V]
        chosen = np.take_along_axis(p, trace.ids[None, :, None], -1)[..., 0]
        np.testing.assert_allclose(trace.lens_probability, chosen, rtol=1e-4, atol=1e-7)
        np.testing.assert_array_equal(trace.lens_probability[-1], trace.probability)
        assert trace.lens_rank.tolist() == (p > chosen[..., None]).sum(-1).tolist()
        assert trace.lens_top_ids[:, :, 0].tolist() == p.argmax(-1).tolist()
        assert len(trace.lens_top_tokens) == 3 and len(trace.lens_top_tokens[0][0]) == 5


def test_left_padded_batches_and_chunked_prefill_equal_each_prompt_alone(tiny, generated):
    """Qwen2 (grouped-query attention, rotary): a left-padded batch of three lengths, a prefill in
    chunks of 4 and each prompt alone give the same tokens, rows and scores."""
    folder = tiny.export("qwen2")
    options = GenerationOptions(max_new_tokens=NEW)
    chunked = Generator(folder, use_cache=False, batch_size=3, prefill_chunk=4).generate_texts(
        PROMPTS, options
    )
    for i, prompt in enumerate(PROMPTS):
        (alone,) = Generator(folder, use_cache=False, batch_size=1).generate_texts([prompt], options)
        for other in (generated["qwen2"][i], chunked[i]):
            assert other.ids.tolist() == alone.ids.tolist()
            np.testing.assert_allclose(other.attentions, alone.attentions, atol=1e-6)
            np.testing.assert_allclose(other.prompt_attentions, alone.prompt_attentions, atol=1e-6)
            np.testing.assert_allclose(other.probability, alone.probability, rtol=1e-5)


def test_stop_strings_eos_and_prompt_attention_limit(tiny, generated):
    folder = tiny.export("llama")
    gen = Generator(folder, use_cache=False)
    full = generated["llama"][0]
    stop = gen.tokenizer.decode(full.ids[:4].tolist(), skip_special_tokens=True)
    assert len(stop) > len(gen.tokenizer.decode(full.ids[:3].tolist(), skip_special_tokens=True))
    (trace,) = gen.generate_texts([PROMPTS[0]], GenerationOptions(max_new_tokens=NEW, stop=(stop,)))
    assert trace.stop_reason == "stop_string" and trace.ids.tolist() == full.ids[:4].tolist()
    (short,) = gen.generate_texts([PROMPTS[0]], GenerationOptions(max_new_tokens=2))
    assert short.stop_reason == "max_new_tokens" and short.ids.tolist() == full.ids[:2].tolist()
    n = len(generated["llama"][1].prompt_ids)  # the shorter prompt's tokens: the limit
    limited = gen.generate_texts(PROMPTS[:2], GenerationOptions(max_new_tokens=2, prompt_attention_limit=n))
    assert limited[0].prompt_attentions is None  # longer: only the generated rows are kept
    assert limited[0].extra["prompt_attention_limit"] == n  # the limit that dropped it, for the page
    assert "prompt_attention_limit" not in limited[1].extra
    assert limited[0].attentions.shape == (2, 4, 2, limited[0].n_prompt + 1)
    assert limited[1].prompt_attentions.shape == (2, 4, n, n)
    with pytest.raises(InputError, match="exceeds the model's 64 positions"):
        gen.generate_texts([PROMPTS[2]], GenerationOptions(max_new_tokens=60))


def test_suppressed_tokens_are_scored_but_never_chosen(tiny, generated):
    """A logits processor changes the choice, not the scores: suppressing the greedy token picks the
    runner-up, whose probability and rank are the model's own."""
    full = generated["llama"][0]
    gen = Generator(tiny.export("llama"), use_cache=False)
    options = GenerationOptions(max_new_tokens=1, suppress=(int(full.ids[0]),))
    (trace,) = gen.generate_texts([PROMPTS[0]], options)
    assert trace.ids[0] == full.top_ids[0, 1] and trace.rank[0] == 1
    assert trace.probability[0] == pytest.approx(full.top_probabilities[0, 1])
    assert trace.top_ids.tolist() == full.top_ids[:1].tolist()
    with pytest.raises(ConfigError, match="chat_template"):
        GenerationOptions(system="be brief")


def test_generations_are_cached_by_model_options_and_prompt(tiny, tmp_path):
    folder = tiny.export("gpt2")
    options = GenerationOptions(max_new_tokens=4)
    first = Generator(folder, cache_dir=tmp_path)
    a = first.generate_texts(PROMPTS[:2], options)
    again = Generator(folder, cache_dir=tmp_path)
    b = again.generate_texts(PROMPTS[:2], options)
    assert again.stats.cached == 2 and again.stats.runs == 0 and again._session is None
    for x, y in zip(a, b, strict=True):
        assert x.to_bytes() == y.to_bytes()
    other = Generator(folder, cache_dir=tmp_path)
    other.generate_texts(PROMPTS[:1], GenerationOptions(max_new_tokens=3))
    other.generate_texts(PROMPTS[:1], options, completions=["the card"])
    assert other.stats.cached == 0 and other.stats.generated == 2


def test_chat_template_renders_like_transformers(tiny):
    """Qwen2's ChatML template rendered by our sandboxed jinja2 = transformers' apply_chat_template;
    generation reads exactly apply_chat_template's ids; template tokens are marked."""
    import transformers

    folder = tiny.export("qwen2-chat")
    tok = transformers.AutoTokenizer.from_pretrained(str(tiny.checkpoint("qwen2-chat")))
    template = ChatTemplate.from_folder(folder)
    for system in (None, "be brief"):
        messages = [{"role": "user", "content": PROMPTS[0]}]
        if system:
            messages.insert(0, {"role": "system", "content": system})
        want = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        rendered = template.render(PROMPTS[0], system=system)
        assert rendered.text == want
        assert rendered.text[rendered.start : rendered.end] == PROMPTS[0]
    gen = Generator(folder, use_cache=False)
    (trace,) = gen.generate_texts([PROMPTS[0]], GenerationOptions(max_new_tokens=3, chat_template=True))
    messages = [{"role": "user", "content": PROMPTS[0]}]
    ids = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=True)
    assert trace.prompt_ids.tolist() == list(ids["input_ids"])
    assert trace.template == "chat_template.jinja" and trace.text == template.render(PROMPTS[0]).text
    user = ~trace.from_template
    content = tok.convert_tokens_to_string([t for t, u in zip(trace.prompt_tokens, user, strict=True) if u])
    assert content == PROMPTS[0]
    assert trace.from_template[:3].all() and trace.from_template[-3:].all()
    assert trace.special[0] and trace.prompt_offsets[0].tolist() == [0, 0]
    assert trace.extra["content_span"] == [template.render(PROMPTS[0]).start, template.render(PROMPTS[0]).end]
    # the generation config's eos (the model config's, 0), then the tokenizer's <|im_end|>
    assert ModelCard.load(folder).generation.eos_token_ids == [0, tok.convert_tokens_to_ids("<|im_end|>")]


def test_chat_template_errors_are_config_errors(tmp_path):
    (tmp_path / "chat_template.jinja").write_text("{{ raise_exception('only system messages') }}")
    template = ChatTemplate.from_folder(tmp_path)
    with pytest.raises(ConfigError, match="only system messages"):
        template.render("hello")
    (tmp_path / "chat_template.jinja").write_text("{{ ''.__class__.__mro__ }}")
    with pytest.raises(Exception, match="unsafe|access"):
        ChatTemplate.from_folder(tmp_path).render("hello")
    (tmp_path / "chat_template.jinja").unlink()
    assert ChatTemplate.from_folder(tmp_path) is None


# ---------------------------------------------------------------------------- the planted circuit


def test_planted_copy_circuit_generates_the_continuation_and_attends_to_its_source(copy_model):
    """x S S[:k] -> S[k:]: the induction head (layer 1, head 0) of each generated token peaks at the
    position right after the earlier occurrence of the current token: the source it copies."""
    from tiny_models import COPY_WORDS

    rng = np.random.default_rng(7)
    seq = [COPY_WORDS[i] for i in rng.choice(np.arange(1, len(COPY_WORDS)), 12, replace=False)]
    k = 3
    prompt = " ".join([COPY_WORDS[0], *seq, *seq[:k]])
    gen = Generator(copy_model, use_cache=False)
    (trace,) = gen.generate_texts([prompt], GenerationOptions(max_new_tokens=len(seq) - k))
    assert trace.tokens == seq[k:]
    assert trace.answer == " ".join(seq[k:])
    induction = trace.attentions[1, 0]  # [T, n + T - 1]
    sources = [1 + k + t for t in range(trace.steps)]  # seq[k + t] sits at 1 + k + t in the prompt
    assert induction.argmax(-1).tolist() == sources
    assert induction.max(-1).min() > 0.99
    assert (trace.probability > 0.5).all() and (trace.rank == 0).all()
    # layer 0, head 0 is a previous-token head over the prompt
    prev = trace.prompt_attentions[0, 0]
    assert prev[1:].argmax(-1).tolist() == list(range(trace.n_prompt - 1))
    # the lens: the copied token is not readable before layer 1 writes it
    assert (trace.lens_rank[2] == 0).all() and (trace.lens_rank[1] > 0).all()


def test_planted_copy_circuit_stops_at_a_copied_eos(copy_model):
    from tiny_models import COPY_WORDS

    seq = [COPY_WORDS[i] for i in (5, 9, 2, 30)] + ["<eos>"] + [COPY_WORDS[i] for i in (11, 12)]
    prompt = " ".join([COPY_WORDS[0], *seq, *seq[:2]])
    (trace,) = Generator(copy_model, use_cache=False).generate_texts(
        [prompt], GenerationOptions(max_new_tokens=8)
    )
    assert trace.stop_reason == "eos" and trace.tokens == [seq[2], seq[3], "<eos>"]
    assert trace.answer == f"{seq[2]} {seq[3]}"
