"""How far a build is, stage by stage, on stderr: a bar on a terminal, plain lines elsewhere.

A build in CI or piped to a log file has no terminal, and tqdm then draws nothing at all: the
reader of the log cannot tell a slow build from a stuck one. So off a terminal each stage writes
a line when its first item is done (the stages stream into each other, so this is the order
they start in), every tenth of its total (or every `EVERY` seconds, whichever comes
first), and one when it ends; on a terminal tqdm draws its bars. In a Jupyter kernel (where
stderr is no terminal either) tqdm's notebook bars are drawn, or, without ipywidgets, its text
bars, which the notebook redraws in place.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator, Sized
from typing import TextIO, TypeVar

from tqdm import tqdm

T = TypeVar("T")

#: the most seconds between two plain lines of one stage
EVERY = 10.0


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _notebook_bar():
    """tqdm's bar class for a Jupyter kernel, None elsewhere: the notebook widget where ipywidgets
    is installed (what ``tqdm.auto`` picks, without its warning when it is not), else the text
    bar."""
    if "ipykernel" not in sys.modules:
        return None
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return None
    from tqdm import notebook

    return notebook.tqdm if notebook.IProgress is not None else tqdm


def counted(
    items: Iterable[T],
    *,
    stage: str,
    total: int | None = None,
    unit: str = "text",
    enabled: bool = True,
    stream: TextIO | None = None,
) -> Iterator[T]:
    """Yield `items`, telling `stream` (default: stderr) how many of `total` `stage` has done
    ("tracing 12/63"); `unit` names them on a terminal's bar."""
    if not enabled:
        yield from items
        return
    stream = stream or sys.stderr
    if total is None and isinstance(items, Sized):
        total = len(items)
    if _is_terminal(stream):
        yield from tqdm(items, desc=stage, total=total, unit=unit, file=stream)
        return
    bar = _notebook_bar()
    if bar is not None:
        yield from bar(items, desc=stage, total=total, unit=unit, file=stream)
        return
    yield from _lines(items, stage=stage, total=total, stream=stream)


def _lines(items: Iterable[T], *, stage: str, total: int | None, stream: TextIO) -> Iterator[T]:
    def say(done: int, end: str = "") -> None:
        of = f"/{total}" if total is not None else ""
        print(f"{stage} {done}{of}{end}", file=stream, flush=True)

    start = last = time.monotonic()
    step = -(-total // 10) if total else 0  # a tenth, rounded up: at most ten lines between
    done = 0
    for item in items:
        done += 1
        now = time.monotonic()
        if done == 1 or (step and done % step == 0) or now - last >= EVERY:
            if total is None or done < total:
                say(done)
            last = now
        yield item
    say(done, f", done in {time.monotonic() - start:.1f} s")


def note(message: str, *, stream: TextIO | None = None) -> None:
    """One line on stderr that does not break a bar being drawn (tqdm's own write)."""
    tqdm.write(message, file=stream or sys.stderr)
