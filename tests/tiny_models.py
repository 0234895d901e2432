"""Tiny, randomly initialised Hugging Face checkpoints, built offline from configs.

One per architecture family we support, each with a real `tokenizers` tokenizer trained
on a few sentences, saved as safetensors exactly like a downloaded checkpoint; and circuits with
hand-set weights whose answers are known (a copy circuit, a keyword classifier).

Over 400 lines because the hand-set circuits spell out every weight beside the tokenizer it reads:
they are the known answers of the tests, better read whole than split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CORPUS = [
    "the card was charged twice for the same order",
    "refill please",
    "my blood pressure readings have been high all week",
    "where is my parcel and when will it arrive",
    "lock my account now someone is using my card",
] * 4

FAMILIES = ("bert", "distilbert", "roberta", "gpt2", "gpt2-cls", "llama", "qwen2")
#: more tiny models, not in FAMILIES (so not in every export test): Qwen2 with a ChatML template
EXTRA_FAMILIES = ("qwen2-chat",)

#: Qwen2-Instruct's chat template (ChatML), as its tokenizer_config.json carries it
CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _wordpiece(transformers):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    tok.decoder = decoders.WordPiece()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def _bytelevel(transformers, *, bos: bool, chat: bool = False):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    chat_tokens = ["<|im_start|>", "<|im_end|>"] if chat else []
    tok.train_from_iterator(
        CORPUS,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<|endoftext|>", "<pad>", *chat_tokens],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    if chat:  # Qwen2-Instruct: no bos, ChatML template, answers end with <|im_end|>
        return transformers.PreTrainedTokenizerFast(
            tokenizer_object=tok,
            eos_token="<|im_end|>",
            pad_token="<pad>",
            additional_special_tokens=chat_tokens,
            chat_template=CHATML,
        )
    if bos:  # Llama-style: a beginning-of-sequence token before every text
        tok.post_processor = processors.TemplateProcessing(
            single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", 0)]
        )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>", pad_token="<pad>"
    )


def make_tiny(family: str, folder: Path, *, seed: int = 0) -> Path:
    """Write a tiny checkpoint of `family` into `folder` and return it."""
    import torch
    import transformers as T

    torch.manual_seed(seed)
    labels = {
        "id2label": {0: "alpha", 1: "beta", 2: "gamma"},
        "label2id": {"alpha": 0, "beta": 1, "gamma": 2},
    }
    small = dict(vocab_size=300)
    if family == "bert":
        cfg = T.BertConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=64,
            num_labels=3,
            **labels,
            **small,
        )
        model, tok = T.BertForSequenceClassification(cfg), _wordpiece(T)
    elif family == "distilbert":
        cfg = T.DistilBertConfig(
            dim=32,
            n_layers=2,
            n_heads=4,
            hidden_dim=64,
            max_position_embeddings=64,
            num_labels=3,
            **labels,
            **small,
        )
        model, tok = T.DistilBertForSequenceClassification(cfg), _wordpiece(T)
    elif family == "roberta":
        cfg = T.RobertaConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=80,
            num_labels=3,
            pad_token_id=0,
            bos_token_id=2,
            eos_token_id=3,
            **labels,
            **small,
        )
        model, tok = T.RobertaForSequenceClassification(cfg), _wordpiece(T)
    elif family in ("gpt2", "gpt2-cls"):
        cfg = T.GPT2Config(
            n_embd=32,
            n_layer=2,
            n_head=4,
            n_positions=64,
            bos_token_id=0,
            eos_token_id=0,
            pad_token_id=1,
            **small,
        )
        if family == "gpt2-cls":
            cfg.num_labels, cfg.id2label, cfg.label2id = 3, labels["id2label"], labels["label2id"]
            model = T.GPT2ForSequenceClassification(cfg)
        else:
            model = T.GPT2LMHeadModel(cfg)
        tok = _bytelevel(T, bos=False)
    elif family == "llama":
        cfg = T.LlamaConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
            bos_token_id=0,
            eos_token_id=0,
            pad_token_id=1,
            **small,
        )
        model, tok = T.LlamaForCausalLM(cfg), _bytelevel(T, bos=True)
    elif family in ("qwen2", "qwen2-chat"):
        cfg = T.Qwen2Config(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=64,
            max_position_embeddings=128 if family == "qwen2-chat" else 64,  # a template is long
            bos_token_id=0,
            eos_token_id=0,
            pad_token_id=1,
            **small,
        )
        model, tok = T.Qwen2ForCausalLM(cfg), _bytelevel(T, bos=False, chat=family == "qwen2-chat")
    else:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(FAMILIES + EXTRA_FAMILIES)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder


#: the copy circuit's vocabulary: three specials, then words w0 .. w36 (ids 3 .. 39)
COPY_SPECIALS = ["<eos>", "<pad>", "<unk>"]
COPY_WORDS = [f"w{i}" for i in range(37)]


def _save_with_word_tokenizer(model, tok, folder) -> Path:
    """`model` and the word-level tokenizer `tok` (specials <eos>, <pad>, <unk>) saved as a checkpoint."""
    import transformers as T

    fast = T.PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<eos>", bos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    fast.save_pretrained(str(folder))
    return folder


def make_copy_circuit(folder: Path, *, positions: int = 48, sink: bool = False) -> Path:
    """A 2-layer attention-only GPT-2 whose weights are set by hand to copy: layer 0 head 0 is a
    previous-token head, layer 1 head 0 an induction head that finds, by K-composition, the earlier
    position whose previous token is the current token and copies the token there. Given
    ``x S S[:k]`` for distinct tokens S it continues ``S[k], S[k + 1], ...``.

    The residual stream (d = 4V + 2P) has three subspaces: the token (written by the embedding),
    the position (by the position embedding) and the previous token (by layer 0). Each symbol is
    a pair ``e[2i] - e[2i + 1]``, so every residual vector has mean 0 and LayerNorm (weight 1,
    bias 0) only rescales it to norm sqrt(d); the MLPs are zero. The unembedding is the (tied)
    token embedding, so the logits read the token subspace, where layer 1 writes the copied token
    four times as strongly as the current one.

    With `sink`, position 0 is a planted attention sink: every head of both layers attends to it
    (a query bias meeting a key that reads position 0), the copying heads giving it 60% of their
    attention (scores 60 + ln 1.5 against the match's 60), and the token ``<unk>`` (meant for
    position 0) has a zero value vector, so the sink carries nothing. The copying heads' outputs
    are scaled by 1 / 0.4 to make up for the 40% left to them, so the circuit still copies.
    """
    import torch
    import transformers as T
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = len(COPY_SPECIALS) + len(COPY_WORDS)
    d = 4 * vocab + 2 * positions
    tok_at, pos_at, prev_at = 0, 2 * vocab, 2 * vocab + 2 * positions
    cfg = T.GPT2Config(
        vocab_size=vocab,
        n_positions=positions,
        n_embd=d,
        n_layer=2,
        n_head=2,
        n_inner=4,
        scale_attn_weights=False,
        layer_norm_epsilon=1e-9,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=1,
    )
    model = T.GPT2LMHeadModel(cfg).eval()

    def pair(offset: int, i: int) -> torch.Tensor:
        v = torch.zeros(d)
        v[offset + 2 * i], v[offset + 2 * i + 1] = 1.0, -1.0
        return v

    def read(offset: int, i: int) -> torch.Tensor:  # a row vector reading symbol i of a subspace
        return pair(offset, i) / 2

    hd = d // cfg.n_head
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for block in model.transformer.h:
            block.ln_1.weight.fill_(1.0)
            block.ln_2.weight.fill_(1.0)
        model.transformer.ln_f.weight.fill_(1.0)
        for v in range(vocab):
            model.transformer.wte.weight[v] = pair(tok_at, v)
        for p in range(positions):
            model.transformer.wpe.weight[p] = pair(pos_at, p)
        # after LayerNorm the residual is scaled by sqrt(d) / |x|
        scale0 = (d / 4) ** 0.5  # |x|^2 = 2 (token) + 2 (position)
        scale1 = (d / 6) ** 0.5  # and 2 (previous token)
        # layer 0, head 0: query position i meets key position i - 1; the value is the token,
        # written into the previous-token subspace
        w0 = model.transformer.h[0].attn.c_attn.weight  # [d, 3d]: q | k | v, head 0 first
        proj0 = model.transformer.h[0].attn.c_proj.weight  # [d, d]
        for p in range(positions):
            w0[:, p] = read(pos_at, p)  # q: head dim p
            if p + 1 < hd:
                w0[:, d + p + 1] = read(pos_at, p)  # k: head dim p + 1
        for v in range(vocab):
            w0[:, 2 * d + v] = read(tok_at, v)
            proj0[v] = pair(prev_at, v) / scale0
        # layer 1, head 0: query = current token, key = previous token (K-composition with layer
        # 0's output); value = the key position's token, written back into the token subspace x4
        w1 = model.transformer.h[1].attn.c_attn.weight
        proj1 = model.transformer.h[1].attn.c_proj.weight
        for v in range(vocab):
            w1[:, v] = read(tok_at, v)
            w1[:, d + v] = read(prev_at, v)
            w1[:, 2 * d + v] = read(tok_at, v)
            proj1[v] = 4 * pair(tok_at, v) / scale1
        # sharpen both heads: match logits of ~60
        w0[:, : 2 * d] *= 60**0.5 / scale0
        w1[:, : 2 * d] *= 60**0.5 / scale1
        if sink:
            unk, spare = COPY_SPECIALS.index("<unk>"), hd - 8  # a head dimension no pattern uses
            # position 0 holds <unk> and nothing else in both layers: LayerNorm scales it by scale0
            for layer, w, proj in ((0, w0, proj0), (1, w1, proj1)):
                attn = model.transformer.h[layer].attn
                w[:, 2 * d + unk] = 0.0  # the sink's token carries nothing
                for head, score in ((0, 60.0 + float(np.log(1.5))), (1, 20.0)):
                    dim = head * hd + spare
                    attn.c_attn.bias[dim] = 1.0  # every query...
                    w[:, d + dim] = read(pos_at, 0) * score / scale0  # ...meets position 0's key
                proj *= 1 / 0.4

    tok = Tokenizer(
        models.WordLevel({t: i for i, t in enumerate(COPY_SPECIALS + COPY_WORDS)}, unk_token="<unk>")
    )
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return _save_with_word_tokenizer(model, tok, folder)


#: the keyword classifier's vocabulary (lower-cased by its tokenizer) and the words that make a text urgent
KEYWORD_WORDS = [
    "the",
    "my",
    "card",
    "is",
    "was",
    "lost",
    "stolen",
    "please",
    "help",
    "lock",
    "account",
    "now",
    "urgent",
    "soon",
    "he",
    "she",
    "said",
    "call",
    "back",
    "today",
    "it",
    "there",
    "then",
    "they",
    "a",
    "an",
    "and",
    "to",
    "of",
    "for",
    "in",
    "on",
]
KEYWORD_TRIGGERS = ("urgent", "now")


def make_keyword_classifier(folder: Path, *, positions: int = 48) -> Path:
    """A 1-layer attention-only GPT-2 classifier whose weights are set by hand: a text is "urgent"
    when it holds "urgent" or "now", else "routine". Its one head attends uniformly (zero queries
    and keys) and carries a flag, the share of trigger tokens so far, into the last position,
    which the score head reads against a constant (a bias pair in every embedding).

    Every embedding is a sum of pairs ``e[2i] - e[2i + 1]`` (mean 0), so LayerNorm (weight 1,
    bias 0) only rescales; the MLP is zero. At the last token the logits are, with ``f`` the
    trigger share of the text and ``|h|`` the residual's norm: routine ``b sqrt(d) / |h|``,
    urgent ``15 b (2 f) sqrt(d) / |h|``: urgent whenever f > 1/30, so for any text of up to 30
    tokens with a trigger; swapping words that are not triggers leaves the logits exactly as they were.
    """
    import torch
    import transformers as T
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    words = COPY_SPECIALS + list(KEYWORD_WORDS)
    vocab = len(words)
    d = 2 * vocab + 4
    tok_at, bias_at, flag_at = 0, 2 * vocab, 2 * vocab + 2
    cfg = T.GPT2Config(
        vocab_size=vocab,
        n_positions=positions,
        n_embd=d,
        n_layer=1,
        n_head=2,
        n_inner=4,
        layer_norm_epsilon=1e-9,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        summary_first_dropout=0.0,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=1,
        num_labels=2,
        id2label={0: "routine", 1: "urgent"},
        label2id={"routine": 0, "urgent": 1},
    )
    model = T.GPT2ForSequenceClassification(cfg).eval()

    def pair(offset: int, i: int) -> torch.Tensor:
        v = torch.zeros(d)
        v[offset + 2 * i], v[offset + 2 * i + 1] = 1.0, -1.0
        return v

    unit = d**0.5 / 2  # LayerNorm's scale: every embedding has |x|^2 = 4 (a token pair, the bias pair)
    b = 4 / d**0.5
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        block = model.transformer.h[0]
        block.ln_1.weight.fill_(1.0)
        block.ln_2.weight.fill_(1.0)
        model.transformer.ln_f.weight.fill_(1.0)
        for v in range(vocab):
            model.transformer.wte.weight[v] = pair(tok_at, v) + pair(bias_at, 0)
        attn, proj = block.attn.c_attn.weight, block.attn.c_proj.weight  # [d, 3d] q | k | v; [d, d]
        for word in KEYWORD_TRIGGERS:
            attn[:, 2 * d] += pair(tok_at, words.index(word)) / 2  # value dim 0: 1 on a trigger, scaled
        proj[0] = 2 * pair(flag_at, 0) / unit  # writes 2 x (the trigger share) into the flag pair
        model.score.weight[0] = b * pair(bias_at, 0) / 2
        model.score.weight[1] = 15 * b * pair(flag_at, 0) / 2

    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(words)}, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return _save_with_word_tokenizer(model, tok, folder)
