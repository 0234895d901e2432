"""core.files: hashes against hashlib, atomic writes, folder swaps that survive a kill, the lock."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from attnreport.core.errors import BuildError
from attnreport.core.files import (
    atomic_write,
    folder_lock,
    recover_folder,
    replace_folder,
    sha256_file,
    sha256_folder,
    swap_folder,
)
from attnreport.core.padding import pad_batch


def contents(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def scratch(tmp_path, name="model"):
    return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(f".{name}."))


def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- hashes ----------------------------------------------------------------------------------------


def test_sha256_file_equals_hashlib_across_blocks(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, size=(1 << 20) * 2 + 17, dtype=np.uint8).tobytes()
    (tmp_path / "big.bin").write_bytes(data)
    assert sha256_file(tmp_path / "big.bin") == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert sha256_file(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def test_sha256_folder_hashes_names_then_bytes_in_name_order(tmp_path):
    (tmp_path / "b.safetensors").write_bytes(b"weights-b")
    (tmp_path / "a.bin").write_bytes(b"weights-a")
    (tmp_path / "config.json").write_bytes(b"{}")
    (tmp_path / "sub.bin").mkdir()  # a folder with a matching suffix is not a file
    by_hand = hashlib.sha256(b"a.bin" + b"weights-a" + b"b.safetensors" + b"weights-b").hexdigest()
    assert sha256_folder(tmp_path, (".safetensors", ".bin")) == by_hand
    with_config = hashlib.sha256(b"a.binweights-ab.safetensorsweights-bconfig.json{}").hexdigest()
    assert sha256_folder(tmp_path, {".json", ".bin", ".safetensors"}) == with_config
    assert sha256_folder(tmp_path, ()) == hashlib.sha256().hexdigest()


def test_the_three_former_hashers_are_sha256_folder(tmp_path):
    """The manifest's weights hash and the cache's checkpoint key keep their values."""
    from attnreport.export.checkpoint import weights_sha256
    from attnreport.pipeline import checkpoint_key

    for name, data in [("model.safetensors", b"w" * 3000), ("vocab.txt", b"a\nb\n"), ("config.json", b"{}")]:
        (tmp_path / name).write_bytes(data)
    (tmp_path / "README.md").write_bytes(b"not hashed")
    assert weights_sha256(tmp_path) == hashlib.sha256(b"model.safetensors" + b"w" * 3000).hexdigest()
    suffixes = (".json", ".safetensors", ".bin", ".txt", ".model")
    by_hand = hashlib.sha256(b"config.json{}" + b"model.safetensors" + b"w" * 3000 + b"vocab.txta\nb\n")
    assert checkpoint_key(tmp_path) == sha256_folder(tmp_path, suffixes)[:24] == by_hand.hexdigest()[:24]


# -- atomic writes ---------------------------------------------------------------------------------


def test_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "entry.json"
    atomic_write(path, b"first")
    atomic_write(path, b"second")
    assert path.read_bytes() == b"second" and os.listdir(tmp_path) == ["entry.json"]

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, b"third")
    assert path.read_bytes() == b"second" and os.listdir(tmp_path) == ["entry.json"]


# -- folder swaps ----------------------------------------------------------------------------------


def test_replace_folder_swaps_in_only_a_finished_folder(tmp_path):
    target = tmp_path / "model"
    with replace_folder(target) as fresh:
        assert fresh.parent == tmp_path and fresh.is_dir() and not target.exists()
        (fresh / "v.txt").write_text("one")
    assert contents(target) == {"v.txt": b"one"} and scratch(tmp_path) == []
    with pytest.raises(RuntimeError, match="half-way"), replace_folder(target) as fresh:
        (fresh / "v.txt").write_text("two")
        raise RuntimeError("half-way")
    assert contents(target) == {"v.txt": b"one"} and scratch(tmp_path) == []
    with replace_folder(target) as fresh:
        (fresh / "w.txt").write_text("three")
    assert contents(target) == {"w.txt": b"three"} and scratch(tmp_path) == []


def test_failed_second_rename_puts_the_previous_folder_back(tmp_path):
    target, fresh = tmp_path / "model", tmp_path / "elsewhere"
    target.mkdir()
    (target / "v.txt").write_text("old")
    with pytest.raises(OSError):
        swap_folder(fresh, target)  # fresh does not exist: the second rename fails
    assert contents(target) == {"v.txt": b"old"} and scratch(tmp_path) == []


def test_kill_between_the_renames_brings_the_previous_folder_back(tmp_path):
    """The state a kill between the two renames leaves: no target, the previous folder set
    aside, the finished one unswapped; the next run restores the previous one first."""
    target, pid = tmp_path / "model", dead_pid()
    (tmp_path / f".model.old-{pid}").mkdir()
    (tmp_path / f".model.old-{pid}" / "v.txt").write_text("previous")
    (tmp_path / f".model.build-{pid}").mkdir()
    (tmp_path / f".model.build-{pid}" / "v.txt").write_text("unswapped")
    recover_folder(target)
    assert contents(target) == {"v.txt": b"previous"} and scratch(tmp_path) == []
    # with the target in place, a leftover set-aside folder is only removed
    (tmp_path / f".model.old-{pid}").mkdir()
    (tmp_path / f".model.build-{pid}").mkdir()
    with replace_folder(target) as fresh:
        (fresh / "v.txt").write_text("next")
    assert contents(target) == {"v.txt": b"next"} and scratch(tmp_path) == []


def test_a_real_kill_between_the_renames_is_recovered(tmp_path):
    target = tmp_path / "model"
    with replace_folder(target) as fresh:
        (fresh / "v.txt").write_text("previous")
    code = (
        "import os, pathlib, signal, sys\n"
        "from attnreport.core.files import replace_folder\n"
        "rename = pathlib.Path.rename\n"
        "def killed_after_the_first(self, to):\n"
        "    moved = rename(self, to)\n"
        "    if '.old-' in str(to):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return moved\n"
        "pathlib.Path.rename = killed_after_the_first\n"
        "with replace_folder(pathlib.Path(sys.argv[1])) as fresh:\n"
        "    (fresh / 'v.txt').write_text('unswapped')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)])
    assert proc.wait(timeout=60) == -9
    assert not target.exists()
    assert scratch(tmp_path) == [f".model.build-{proc.pid}", f".model.old-{proc.pid}"]
    recover_folder(target)
    assert contents(target) == {"v.txt": b"previous"} and scratch(tmp_path) == []


def test_a_running_processs_scratch_folders_are_left_alone(tmp_path):
    target = tmp_path / "model"
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other:
        try:
            (tmp_path / f".model.build-{other.pid}").mkdir()
            (tmp_path / f".model.old-{other.pid}").mkdir()  # it is between its two renames
            recover_folder(target)
            assert not target.exists()
            assert scratch(tmp_path) == [f".model.build-{other.pid}", f".model.old-{other.pid}"]
        finally:
            other.kill()
    recover_folder(target)
    assert target.is_dir() and scratch(tmp_path) == []


def test_this_processs_own_id_on_a_leftover_is_a_reused_id(tmp_path):
    """In a container every run can have the same process id: a leftover with ours is stale."""
    (tmp_path / f".model.build-{os.getpid()}").mkdir()
    (tmp_path / f".model.build-{os.getpid()}" / "stale").write_text("x")
    with replace_folder(tmp_path / "model") as fresh:
        assert list(fresh.iterdir()) == []
    assert scratch(tmp_path) == []


def test_folder_lock_refuses_a_second_holder_then_frees(tmp_path):
    target = tmp_path / "site"
    busy = BuildError("busy")
    with folder_lock(target, busy=busy):
        holder = (
            "import sys, pathlib\n"
            "from attnreport.core.errors import BuildError\n"
            "from attnreport.core.files import folder_lock\n"
            "try:\n"
            "    with folder_lock(pathlib.Path(sys.argv[1]), busy=BuildError('busy')):\n"
            "        sys.exit(0)\n"
            "except BuildError:\n"
            "    sys.exit(3)\n"
        )
        assert subprocess.run([sys.executable, "-c", holder, str(target)], timeout=60).returncode == 3
        with pytest.raises(BuildError, match="busy"), folder_lock(target, busy=busy):
            pass  # a second open file in the same process is a second holder too
    with folder_lock(target, busy=busy):
        pass


# -- padding ---------------------------------------------------------------------------------------


def test_pad_batch_pads_right_and_masks_the_real_tokens():
    ids, mask = pad_batch([[5, 6, 7], np.array([8]), [9, 10]], pad_id=0)
    np.testing.assert_array_equal(ids, [[5, 6, 7], [8, 0, 0], [9, 10, 0]])
    np.testing.assert_array_equal(mask, [[1, 1, 1], [1, 0, 0], [1, 1, 0]])
    assert ids.dtype == mask.dtype == np.int64
    ids, mask = pad_batch([[1, 2]], pad_id=99)
    assert ids.tolist() == [[1, 2]] and mask.tolist() == [[1, 1]]
    with pytest.raises(ValueError, match="at least one row"):
        pad_batch([], pad_id=0)
