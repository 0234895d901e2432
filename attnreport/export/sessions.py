"""The export stage's one way to open an onnxruntime session: for checking a graph it just wrote.

export/ comes before trace/ and cannot use `attnreport.trace.sessions.open_session`; a check
session runs a handful of short inputs once, so it trades speed for memory: no pre-packed copies of
the weights (onnxruntime otherwise keeps a second, re-laid-out copy of each MatMul weight) and no
memory arena kept after a run. Opened one at a time, so the weights are in memory once.
"""

from __future__ import annotations

from pathlib import Path


def open_check_session(path: Path, *, timed: bool = False):
    """An onnxruntime CPU session on the graph at `path`, for the export's checks; `timed` for one
    whose speed is measured and recorded (quantization's tokens per second), which must run as a
    report's sessions do, pre-packed weights included."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if not timed:
        options.enable_cpu_mem_arena = False
        options.add_session_config_entry("session.disable_prepacking", "1")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
