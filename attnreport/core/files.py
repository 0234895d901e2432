"""File plumbing shared by the stages: hashes, atomic writes, and folders replaced whole.

A folder that a stage produces (an export, a site) is written beside its target under a
scratch name and swapped in by two renames, so a failed or killed run never leaves half
of one. Scratch folders are named ``.<target>.<kind>-<pid>``; the next run that replaces
the same target undoes what a killed one left (`recover_folder`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from attnreport.core.errors import AttnReportError

_BLOCK = 1 << 20


def _update(digest, path: Path) -> None:
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            digest.update(block)


def sha256_file(path: Path) -> str:
    """The SHA-256 of the file at `path`, as hex, read in blocks so a large file stays on disk."""
    digest = hashlib.sha256()
    _update(digest, Path(path))
    return digest.hexdigest()


def sha256_folder(folder: Path, suffixes: Collection[str]) -> str:
    """One SHA-256 over the files directly in `folder` whose suffix is in `suffixes`: each
    file's name, then its bytes, in name order; so renaming a file changes the hash too."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).iterdir(), key=lambda p: p.name):
        if path.suffix in suffixes and path.is_file():
            digest.update(path.name.encode())
            _update(digest, path)
    return digest.hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a reader sees the old file or the new one, never part of
    one: a temporary file in the same folder (same file system), then `os.replace`."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def scratch_folder(target: Path, kind: str) -> Path:
    """``.<name>.<kind>-<pid>`` beside `target`: this process's scratch space of one kind."""
    target = Path(target)
    return target.with_name(f".{target.name}.{kind}-{os.getpid()}")


def process_alive(pid: str | int) -> bool:
    """Whether a process with this id runs (one of another user counts); a bad id is not one."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _leftovers(target: Path, kind: str) -> list[Path]:
    """Scratch folders of `kind` whose process has ended. This process's own count too: they are
    looked for before it makes any, so one with its id is a dead run's whose id was reused."""
    found = []
    for path in sorted(target.parent.glob(f".{target.name}.{kind}-*")):
        pid = path.name.rsplit("-", 1)[-1]
        if pid == str(os.getpid()) or not process_alive(pid):
            found.append(path)
    return found


def recover_folder(target: Path) -> None:
    """Undo what a killed `replace_folder` of `target` left behind.

    Killed between the two renames of a swap (the target gone, the previous one set aside),
    the previous folder comes back; then the unfinished and set-aside folders of ended runs
    are removed. A running process's scratch folders are left alone.
    """
    target = Path(target)
    olds = _leftovers(target, "old")
    if olds and not target.exists():
        olds.pop(0).rename(target)
    for stale in [*_leftovers(target, "build"), *olds]:
        shutil.rmtree(stale, ignore_errors=True)


def swap_folder(fresh: Path, target: Path) -> None:
    """Put the finished folder `fresh` at `target`, replacing what is there.

    Two renames: the previous folder is set aside, then `fresh` takes its place, then the
    previous one is removed. If the second rename fails the previous folder is put back; a
    kill between them is undone by the next `recover_folder`.
    """
    fresh, target = Path(fresh), Path(target)
    old = scratch_folder(target, "old")
    if target.exists():
        target.rename(old)
    try:
        fresh.rename(target)
    except OSError:
        if old.exists():
            old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def replace_folder(target: Path) -> Iterator[Path]:
    """Build a replacement for `target` in a fresh folder beside it; swap it in if the block ends well.

    ``with replace_folder(out) as fresh: write(fresh)``. Leftovers of killed runs are recovered
    first; if the block raises (or the process is interrupted) `target` is untouched and the
    fresh folder is removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(target)
    fresh = scratch_folder(target, "build")
    fresh.mkdir()
    try:
        yield fresh
        swap_folder(fresh, target)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise


@contextmanager
def folder_lock(target: Path, *, busy: AttnReportError) -> Iterator[None]:
    """Hold an exclusive lock on ``.<name>.lock`` beside `target`, or raise `busy` at once if
    another process holds it. The lock goes with the process, so a killed run never leaves it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(f".{target.name}.lock"), "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise busy from exc
        yield
