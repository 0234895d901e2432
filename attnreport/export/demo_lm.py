"""A small Qwen2 trained from scratch on the bundled Q&A corpus: the demo's LM until SmolLM2
replaced it, kept as the tests' and benchmarks' cheapest causal LM with known answers (and the
Chinese prompts the demo's real model cannot answer).

Over 400 lines because it is one fixed recipe (corpus split, tokenizer, template, model,
training, evaluation) that must change together: its cache key covers all of it.

No hub weights can be downloaded where the tests run, so this model is trained here:
a byte-level BPE tokenizer with a ChatML chat template (Qwen2.5's shape) and a few-layer Qwen2
with grouped-query attention, trained on ``examples/demo/qa.jsonl`` (question -> answer, loss on
the answer and its ``<|im_end|>``), saved as an ordinary Hugging Face checkpoint folder.

The held-out split keeps back single paraphrases (never an intent's first question), so every
answer is learnt from its other questions and the held-out figures say how far the model carries
a question it never saw to the right answer. Held-out perplexity is low even so, because once an
answer has begun the model continues it from memory; the greedy figures are the honest ones (the
share of held-out questions that set out on the right answer, and on the right domain). A split
by whole intents was tried on a development split: the model then does worse than the unigram
baseline, since it memorises 100-odd answers and knows no language beyond them. The recipe is
fixed and seeded, and single-threaded, so the weights do not depend on the machine's core count;
it was chosen on a development split carved from the training split, never on the held-out one.
The unigram baseline is the training answers' token frequencies, add-one smoothed.

Torch and transformers are imported inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from attnreport.core.errors import ConfigError
from attnreport.core.resources import bundled

PAD, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = (PAD, IM_START, IM_END)
HELD_OUT = 0.2
#: ChatML as Qwen2.5 writes it, without Qwen's default system message
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the trained weights, next to the corpus. A new recipe gets a new name."""

    name: str = "qwen2-qa-v2"
    vocab_size: int = 3000
    hidden_size: int = 128
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate_size: int = 384
    max_positions: int = 256
    steps: int = 300
    batch: int = 32
    learning_rate: float = 3e-3
    warmup: int = 30
    weight_decay: float = 0.1
    attention_dropout: float = 0.0
    seed: int = 0
    #: one thread: fastest measured on a shared 2-core machine, and the same weights on any machine
    threads: int = 1


RECIPE = Recipe()


def qa_rows(path: Path | None = None) -> list[dict]:
    """The question-and-answer pairs of the bundled corpus (or of `path`), in file order."""
    path = Path(path) if path is not None else bundled("examples") / "demo" / "qa.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def split_qa(rows: list[dict], *, held_out: float = HELD_OUT, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Keep back `held_out` of each domain's pairs: single paraphrases, by id.

    The same on every machine. Per domain, intents are drawn in a seeded permutation of their
    sorted ids and one paraphrase of each drawn intent is kept back, never the intent's first
    (lowest id) question, so every answer keeps at least one question in training: the held-out
    figure measures how well the model carries a question it never saw to the right answer.
    """
    rng = np.random.default_rng(seed)
    kept: set[str] = set()
    for domain in sorted({r["domain"] for r in rows}):
        group = [r for r in rows if r["domain"] == domain]
        by_intent: dict[str, list[str]] = {}
        for r in sorted(group, key=lambda r: r["id"]):
            by_intent.setdefault(r["intent"], []).append(r["id"])
        intents = sorted(i for i, ids in by_intent.items() if len(ids) > 1)
        for i in rng.permutation(len(intents))[: round(held_out * len(group))]:
            others = by_intent[intents[i]][1:]
            kept.add(others[rng.integers(len(others))])
    train = [r for r in rows if r["id"] not in kept]
    test = [r for r in rows if r["id"] in kept]
    return sorted(train, key=lambda r: r["id"]), sorted(test, key=lambda r: r["id"])


def prompt_text(question: str) -> str:
    """What the chat template renders for one user message, with the generation prompt."""
    return f"{IM_START}user\n{question}{IM_END}\n{IM_START}assistant\n"


def tokenizer_texts(rows: list[dict]) -> list[str]:
    """What the tokenizer learns from: each pair as the chat template lays it out, without the
    special tokens (they are never split), so that the role names are tokens of their own too."""
    return [t for r in rows for t in (f"user\n{r['question']}", f"assistant\n{r['answer']}")]


#: Han characters, kana and CJK punctuation: each is a pre-token of its own
CJK_CHARACTER = "[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]"


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE `tokenizers.Tokenizer` over `texts`: any text encodes, none to an unknown.

    Chinese has no spaces, so GPT-2's pre-tokenizer hands BPE a whole sentence, and on a corpus this
    small BPE learns whole sentences as single tokens (one token for a whole question): nothing left
    to attend to or attribute. Each CJK character is split off first, so a Chinese prompt is read
    character by character (a real Qwen2 vocabulary has words such as 苹果 and 公司)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(CJK_CHARACTER), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tok


def tokenizer_config(tok, *, max_length: int) -> dict:
    """``tokenizer_config.json`` for `tok`, in the shape of Qwen2.5-Instruct's."""
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": IM_END,
        "pad_token": PAD,
        "unk_token": None,
        "additional_special_tokens": [IM_START, IM_END],
        "added_tokens_decoder": {
            str(tok.token_to_id(t)): {
                "content": t,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
            for t in SPECIAL_TOKENS
        },
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "errors": "replace",
        "model_max_length": max_length,
        "split_special_tokens": False,
    }


def save_tokenizer(tok, out: Path, *, max_length: int) -> None:
    """Write ``tokenizer.json`` and ``tokenizer_config.json`` (with the chat template) into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    settings = tokenizer_config(tok, max_length=max_length)
    (out / "tokenizer_config.json").write_text(
        json.dumps(settings, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def encode_pairs(tok, rows: list[dict]) -> list[tuple[list[int], int]]:
    """Each pair as (ids, n_prompt): the rendered prompt, then the answer and ``<|im_end|>``."""
    end = tok.token_to_id(IM_END)
    out = []
    for r in rows:
        prompt = tok.encode(prompt_text(r["question"])).ids
        answer = tok.encode(r["answer"]).ids
        out.append((prompt + answer + [end], len(prompt)))
    return out


def unigram_perplexity(train: list[tuple[list[int], int]], test: list[tuple[list[int], int]], vocab: int):
    """Perplexity on the test targets of a unigram model of the training targets, add-one smoothed."""
    counts = np.zeros(vocab)
    for ids, n in train:
        np.add.at(counts, ids[n:], 1)
    logp = np.log((counts + 1) / (counts.sum() + vocab))
    targets = np.concatenate([ids[n:] for ids, n in test])
    return float(np.exp(-logp[targets].mean()))


def _batch(torch, pairs, pad: int):
    """Right-padded input ids, attention mask, and labels (-100 outside the answer)."""
    width = max(len(ids) for ids, _ in pairs)
    ids = torch.full((len(pairs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    labels = torch.full((len(pairs), width), -100, dtype=torch.long)
    for i, (seq, n) in enumerate(pairs):
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
        labels[i, n : len(seq)] = torch.tensor(seq[n:])
    return ids, mask, labels


def _batches(pairs: list[tuple[list[int], int]], recipe: Recipe) -> list[list[int]]:
    """`recipe.steps` batches of pair indices: epochs of a seeded permutation, each cut into
    windows of 8 batches sorted by length (less padding), the batches of an epoch shuffled."""
    rng = np.random.default_rng(recipe.seed)
    out: list[list[int]] = []
    while len(out) < recipe.steps:
        order = rng.permutation(len(pairs)).tolist()
        epoch = []
        for start in range(0, len(order), 8 * recipe.batch):
            window = sorted(order[start : start + 8 * recipe.batch], key=lambda i: len(pairs[i][0]))
            epoch += [window[k : k + recipe.batch] for k in range(0, len(window), recipe.batch)]
        out += [epoch[i] for i in rng.permutation(len(epoch))]
    return out[: recipe.steps]


def _answer_loss(torch, model, pairs, pad: int):
    """Mean cross-entropy of the answer tokens; the unembedding runs on answer positions only."""
    ids, mask, labels = _batch(torch, pairs, pad)
    hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
    target = labels[:, 1:]
    chosen = target != -100
    return torch.nn.functional.cross_entropy(model.lm_head(hidden[chosen]).float(), target[chosen])


def _mean_nll(torch, model, pairs, pad: int, *, batch: int = 64) -> float:
    """Mean negative log-likelihood (nats) per answer token over `pairs`."""
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(pairs), batch):
            ids, mask, labels = _batch(torch, pairs[start : start + batch], pad)
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            target = labels[:, 1:]
            nll = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100, reduction="sum"
            )
            total += float(nll)
            count += int((target != -100).sum())
    return total / count


def greedy_answer(torch, model, tok, question: str, *, max_new_tokens: int = 64) -> str:
    """The model's greedy answer to `question`, up to ``<|im_end|>``, decoded (no special tokens)."""
    end = tok.token_to_id(IM_END)
    ids = tok.encode(prompt_text(question)).ids
    model.eval()
    with torch.no_grad():
        out = model.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones((1, len(ids)), dtype=torch.long),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=end,
            pad_token_id=tok.token_to_id(PAD),
        )
    answer = out[0, len(ids) :].tolist()
    return tok.decode(answer[: answer.index(end)] if end in answer else answer)


def nearest_row(answer: str, rows: list[dict]) -> dict:
    """The corpus row whose answer shares the longest prefix with `answer` (the first on a tie):
    which of the corpus's answers a generated one set out to give."""

    def shared(r: dict) -> int:
        n = 0
        for x, y in zip(answer, r["answer"], strict=False):
            if x != y:
                break
            n += 1
        return n

    return max(sorted(rows, key=lambda r: r["id"]), key=shared)


def _import_torch():
    try:
        import torch
        import transformers
    except ImportError as exc:
        message = "training the demo LM needs torch: pip install torch==2.13.0 'attnreport[export]'"
        raise ConfigError(message) from exc
    return torch, transformers


def train_demo_lm(
    out: Path,
    *,
    rows: list[dict] | None = None,
    recipe: Recipe = RECIPE,
    log: Callable[[str], None] = lambda m: None,
) -> dict:
    """Train the demo LM on the training split of `rows` (the bundled corpus by default) into `out`.

    `out` becomes a Hugging Face checkpoint folder (config.json, model.safetensors,
    generation_config.json, tokenizer.json, tokenizer_config.json with the chat template).
    Returns the recipe and what was measured: steps, seconds, final training loss, held-out and
    unigram perplexity on the held-out answers, what greedy decoding answers to the held-out
    questions (the share exactly right, and the share that set out on the right intent's answer
    and on an answer of the right domain), parameter count, split sizes.
    """
    torch, transformers = _import_torch()
    rows = qa_rows() if rows is None else rows
    train, test = split_qa(rows)
    if not train or not test:
        raise ConfigError(f"the demo LM needs training and held-out pairs; got {len(train)} and {len(test)}")
    started = time.perf_counter()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    try:
        tok = train_tokenizer(tokenizer_texts(train), recipe.vocab_size)
        vocab = tok.get_vocab_size()
        pad, end = tok.token_to_id(PAD), tok.token_to_id(IM_END)
        train_pairs, test_pairs = encode_pairs(tok, train), encode_pairs(tok, test)
        longest = max(len(ids) for ids, _ in train_pairs + test_pairs)
        if longest > recipe.max_positions:
            message = f"a corpus pair has {longest} tokens, more than the recipe's {recipe.max_positions}"
            raise ConfigError(message)

        torch.manual_seed(recipe.seed)
        config = transformers.Qwen2Config(
            vocab_size=vocab,
            hidden_size=recipe.hidden_size,
            num_hidden_layers=recipe.layers,
            num_attention_heads=recipe.heads,
            num_key_value_heads=recipe.kv_heads,
            intermediate_size=recipe.intermediate_size,
            max_position_embeddings=recipe.max_positions,
            tie_word_embeddings=True,
            attention_dropout=recipe.attention_dropout,
            bos_token_id=None,
            eos_token_id=end,
            pad_token_id=pad,
        )
        model = transformers.Qwen2ForCausalLM._from_config(config, attn_implementation="sdpa")
        parameters = sum(p.numel() for p in model.parameters())
        log(
            f"training the demo LM ({parameters / 1e6:.2f}M parameters, vocab {vocab}) on "
            f"{len(train)} pairs (held out: {len(test)}) for {recipe.steps} steps"
        )
        groups = [  # no weight decay on norms and biases
            {"params": [p for p in model.parameters() if p.dim() >= 2], "weight_decay": recipe.weight_decay},
            {"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0},
        ]
        optimiser = torch.optim.AdamW(
            groups,
            lr=recipe.learning_rate,
            betas=(0.9, 0.98),
        )

        def rate(step: int) -> float:  # linear warm-up, then cosine down to a tenth
            if step < recipe.warmup:
                return (step + 1) / recipe.warmup
            progress = (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup)
            return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, rate)
        batches = _batches(train_pairs, recipe)
        losses = []
        model.train()
        for step, chosen in enumerate(batches):
            loss = _answer_loss(torch, model, [train_pairs[i] for i in chosen], pad)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            scheduler.step()
            optimiser.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            if (step + 1) % max(1, recipe.steps // 6) == 0 or step + 1 == recipe.steps:
                log(f"training the demo LM: step {step + 1}/{recipe.steps}, loss {np.mean(losses[-20:]):.3f}")
        train_seconds = time.perf_counter() - started

        train_nll = _mean_nll(torch, model, train_pairs, pad)
        test_nll = _mean_nll(torch, model, test_pairs, pad)
        answers = [greedy_answer(torch, model, tok, r["question"]) for r in test]
        exact = sum(a == r["answer"] for a, r in zip(answers, test, strict=True))
        nearest = [nearest_row(a, rows) for a in answers]
        right_intent = sum(n["intent"] == r["intent"] for n, r in zip(nearest, test, strict=True))
        right_domain = sum(n["domain"] == r["domain"] for n, r in zip(nearest, test, strict=True))
        facts = {
            "recipe": asdict(recipe),
            "steps": recipe.steps,
            "seconds": round(train_seconds, 1),
            "train_loss": round(float(np.mean(losses[-20:])), 4),
            "train_perplexity": round(math.exp(train_nll), 3),
            "heldout_perplexity": round(math.exp(test_nll), 3),
            "unigram_perplexity": round(unigram_perplexity(train_pairs, test_pairs, vocab), 3),
            "heldout_exact_answers": round(exact / len(test), 3),
            "heldout_right_intent": round(right_intent / len(test), 3),
            "heldout_right_domain": round(right_domain / len(test), 3),
            "parameters": parameters,
            "vocab_size": vocab,
            "train_pairs": len(train),
            "heldout_pairs": len(test),
            "heldout_ids": [r["id"] for r in test],
        }
        _save(out, model, tok, config, recipe, facts, transformers)
    finally:
        torch.set_num_threads(previous_threads)
    return facts


@contextlib.contextmanager
def _quiet(transformers):
    """No progress bars or advice from transformers while saving."""
    verbosity = transformers.utils.logging.get_verbosity()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        transformers.utils.logging.enable_progress_bar()
        transformers.utils.logging.set_verbosity(verbosity)


def _save(out: Path, model, tok, config, recipe: Recipe, facts: dict, transformers) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.config._attn_implementation = "eager"
    model.generation_config = transformers.GenerationConfig(
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        do_sample=False,
        max_new_tokens=64,
    )
    with _quiet(transformers):
        model.save_pretrained(str(out))
    save_tokenizer(tok, out, max_length=recipe.max_positions)
    (out / "training.json").write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")


def reduced(recipe: Recipe = RECIPE, **changes) -> Recipe:
    """A copy of `recipe` with `changes` and a name that says it is not the demo's."""
    return replace(recipe, name=f"{recipe.name}-reduced", **changes)
