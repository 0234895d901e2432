"""Trace stage: an exported model folder + texts -> one `Trace` per text (onnxruntime only)."""

from attnreport.trace.inputs import BadRow, Row, read_rows
from attnreport.trace.runner import Tracer, TraceStats

__all__ = ["BadRow", "Row", "TraceStats", "Tracer", "read_rows"]
