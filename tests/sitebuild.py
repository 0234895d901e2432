"""Helpers to build small sites from tiny exports in tests."""

from __future__ import annotations

import json
from pathlib import Path

HOSTILE = [
    "<script>window.__pwned = 1</script> please refund",
    '<img src=x onerror="window.__pwned=2"> my card',
    "{{ 7 * 7 }} {% raw %} template syntax",
    "line\u2028separator and \u202eright-to-left\u202c marks",
    "emoji 🏦💊 and accents café",
    "</script><script>window.__pwned=3</script>",
]


def write_config(folder: Path, model: Path, texts: list[dict], *, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data.jsonl"
    data.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    config = folder / "report.toml"
    config.write_text(
        f'title = "Tiny <b>report</b>"\ncache_dir = "cache"\n[model]\npath = "{model}"\n'
        f'[data]\npath = "data.jsonl"\n{extra}',
        encoding="utf-8",
    )
    return config


def sample_rows() -> list[dict]:
    plain = ["where is my parcel", "lock my account now", "refill please"]
    rows = [{"id": f"p{i}", "text": t, "label": "alpha"} for i, t in enumerate(plain)]
    rows += [{"id": f"../h{i}", "text": t, "label": "beta"} for i, t in enumerate(HOSTILE)]
    return rows
