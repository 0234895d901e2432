"""Trace stage: an exported model folder + texts -> one `Trace` per text (onnxruntime only);
prompts -> one `GenerationTrace` per prompt (`Generator`, causal LMs)."""

from attnreport.trace.chat_template import ChatTemplate, Rendered
from attnreport.trace.decoding import (
    EosToken,
    GenerationOptions,
    Greedy,
    MaxNewTokens,
    StopStrings,
    SuppressTokens,
)
from attnreport.trace.generate import GenerationCache, GenerationStats, Generator, Prompt
from attnreport.trace.inputs import BadRow, Row, read_rows
from attnreport.trace.lens import LogitLens, Scores, step_scores
from attnreport.trace.runner import Tracer, TraceStats

__all__ = [
    "BadRow",
    "ChatTemplate",
    "EosToken",
    "GenerationCache",
    "GenerationOptions",
    "GenerationStats",
    "Generator",
    "Greedy",
    "LogitLens",
    "MaxNewTokens",
    "Prompt",
    "Rendered",
    "Row",
    "Scores",
    "StopStrings",
    "SuppressTokens",
    "TraceStats",
    "Tracer",
    "read_rows",
    "step_scores",
]
