"""File plumbing shared by the stages: hashes, atomic writes, and folders replaced whole.

A folder that a stage produces (an export, a site) is written beside its target under a
scratch name and swapped in by two renames, so a failed or killed run never leaves half
of one. Scratch folders are named ``.<target>.<kind>-<pid>``; the next run that replaces
the same target undoes what a killed one left (`recover_folder`).
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import re
import shutil
import stat
from collections.abc import Collection, Iterable, Iterator
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


def scratch_pid(path: Path, target: Path, kind: str) -> int | None:
    """The process id in ``.<target>.<kind>-<pid>``, or None when `path` is not exactly such a
    name (a user's ``.site.old-backup`` is not one)."""
    match = re.fullmatch(rf"\.{re.escape(Path(target).name)}\.{re.escape(kind)}-([0-9]+)", Path(path).name)
    return int(match.group(1)) if match else None


def dead_scratch(target: Path, kind: str) -> list[Path]:
    """Scratch folders of `kind` beside `target` whose process has ended. The target's name is
    escaped before globbing (``site[v]`` is a name, not a pattern) and only numeric process ids
    count. This process's own count too: they are looked for before it makes any, so one with its
    id is a dead run's whose id was reused."""
    target = Path(target)
    found = []
    for path in sorted(target.parent.glob(f".{glob.escape(target.name)}.{glob.escape(kind)}-*")):
        pid = scratch_pid(path, target, kind)
        if pid is not None and (pid == os.getpid() or not process_alive(pid)):
            found.append(path)
    return found


def recover_folder(target: Path) -> None:
    """Undo what a killed `replace_folder` of `target` left behind.

    Killed between the two renames of a swap (the target gone, the previous one set aside),
    the previous folder comes back; then the unfinished and set-aside folders of ended runs
    are removed. A running process's scratch folders are left alone.
    """
    target = Path(target)
    olds = dead_scratch(target, "old")
    if olds and not target.exists():
        olds.pop(0).rename(target)
    for stale in [*dead_scratch(target, "build"), *olds]:
        shutil.rmtree(stale, ignore_errors=True)


def _keep_access(previous: os.stat_result, folder: Path) -> None:
    """Give `folder` the mode and group the folder it replaces had (a site kept ``drwxrws---``
    for a group stays so), as far as this user may; the files inside take the group too."""
    os.chmod(folder, stat.S_IMODE(previous.st_mode))
    if folder.stat().st_gid == previous.st_gid:
        return
    try:
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, -1, previous.st_gid, follow_symlinks=False)
    except PermissionError:
        pass  # not a member of that group: the folder keeps this user's


def swap_folder(fresh: Path, target: Path) -> None:
    """Put the finished folder `fresh` at `target`, replacing what is there.

    Two renames: the previous folder is set aside, then `fresh` takes its place, then the
    previous one is removed. If the second rename fails the previous folder is put back; a
    kill between them is undone by the next `recover_folder`. The new folder keeps the
    previous one's mode and group.
    """
    fresh, target = Path(fresh), Path(target)
    old = scratch_folder(target, "old")
    if target.exists():
        _keep_access(target.stat(), fresh)
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


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def guard_output(
    target: Path,
    *,
    inputs: Iterable[Path | None] = (),
    ours: bool,
    what: str,
    error: type[AttnReportError] = AttnReportError,
) -> Path:
    """Refuse `target` as a folder to replace unless nothing of the user's can be lost; returns
    it resolved.

    Refused: the file system's root and the home folder (whatever they hold), any folder that
    is or holds one of this run's `inputs` (its config, data, templates, model, cache), a path
    that is a file, and a non-empty folder unless `ours` (the caller has checked its own
    marker). Called before any model runs, so a refusal costs nothing.
    """
    target = Path(target).resolve()
    if target == Path(target.anchor) or target == Path.home().resolve():
        raise error(
            f"{target}: is the {'root' if target == Path(target.anchor) else 'home'} folder; "
            f"choose a new folder for the {what}"
        )
    for given in inputs:
        if given is None:
            continue
        path = Path(given).resolve()
        if _inside(path, target):
            raise error(f"{target}: holds {path}, which this run reads; choose a new folder for the {what}")
    if target.exists() and not target.is_dir():
        raise error(f"{target}: exists and is not a folder; choose another output path")
    if target.is_dir() and any(target.iterdir()) and not ours:
        raise error(
            f"{target}: exists, is not empty and is not an attnreport {what}; "
            f"choose an empty or new folder so nothing of yours is replaced"
        )
    return target


def confined_file(folder: Path, name: str, *, error: type[AttnReportError] = AttnReportError) -> Path:
    """``folder / name`` when it is a regular file that resolves inside `folder`, else a one-line
    error: a model folder (untrusted) names files by relative path, and neither ``..``, an
    absolute path nor a symlink may take a read outside it."""
    folder = Path(folder).resolve()
    if not isinstance(name, str) or not name or "\0" in name:
        raise error(f"{folder}: a file name {name!r} in it is not a name; export the model again")
    candidate = folder / name
    path = candidate.resolve()
    if not _inside(path, folder) or path == folder:
        raise error(f"{candidate}: points outside the model folder {folder}; refused, export the model again")
    if not path.is_file():
        raise error(f"{candidate}: missing or not a regular file; export the model again")
    return path
