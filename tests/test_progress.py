"""Progress off a terminal: plain lines, at least a start and an end per stage, and a tenth between."""

from __future__ import annotations

import io

from attnreport.core.progress import counted


def test_plain_lines_every_tenth_and_at_the_end():
    stream = io.StringIO()  # not a terminal, like a CI log or a pipe
    assert list(counted(range(40), stage="tracing", total=40, stream=stream)) == list(range(40))
    lines = stream.getvalue().splitlines()
    assert lines[:-1] == ["tracing 1/40"] + [f"tracing {n}/40" for n in range(4, 40, 4)]
    assert lines[-1].startswith("tracing 40/40, done in ") and lines[-1].endswith(" s")


def test_unknown_total_and_disabled():
    stream = io.StringIO()
    list(counted(iter(range(5)), stage="writing", unit="page", stream=stream))  # no len: no total
    lines = stream.getvalue().splitlines()
    assert lines[0] == "writing 1" and lines[-1].startswith("writing 5, done in ")
    assert len(lines) == 2
    quiet = io.StringIO()
    assert list(counted(range(3), stage="x", enabled=False, stream=quiet)) == [0, 1, 2]
    assert quiet.getvalue() == ""
