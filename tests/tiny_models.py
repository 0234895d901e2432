"""Tiny, randomly initialised Hugging Face checkpoints, built offline from configs.

One per architecture family we support, each with a real `tokenizers` tokenizer trained
on a few sentences, saved as safetensors exactly like a downloaded checkpoint.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "the card was charged twice for the same order",
    "refill please",
    "my blood pressure readings have been high all week",
    "where is my parcel and when will it arrive",
    "lock my account now someone is using my card",
] * 4

FAMILIES = ("bert", "distilbert", "roberta", "gpt2", "gpt2-cls", "llama", "qwen2")


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


def _bytelevel(transformers, *, bos: bool):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        CORPUS,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<|endoftext|>", "<pad>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
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
    elif family == "qwen2":
        cfg = T.Qwen2Config(
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
        model, tok = T.Qwen2ForCausalLM(cfg), _bytelevel(T, bos=False)
    else:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder
