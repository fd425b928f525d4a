"""reelfs.mount(): the archive mounted by this process for a `with` block (a real
FUSE mount), unmounted after it, also when the block raises."""

import os

import pytest

import reelfs

from conftest import PRORES

CLIP = f"main/Day01/A001/{PRORES}"


def _is_mounted(path):
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == str(path) for line in f)


def test_mount_serves_files_and_slices_for_the_block(day01, media_dir, tmp_path):
    mp = tmp_path / "mnt"
    mp.mkdir()
    with reelfs.mount(day01, mp, read_only=True) as m:
        assert m.mounted and _is_mounted(mp)
        assert sorted(os.listdir(mp)) == ["main"]
        assert (mp / CLIP).read_bytes() == (media_dir / PRORES).read_bytes()
        spec = f"{CLIP}@01:00:01:00-01:00:01:12+6"
        assert (mp / spec).read_bytes() == day01.slice(spec).open().read()
        assert os.getxattr(mp / CLIP, "user.reelfs.timecode") == b"01:00:00:00"
    assert not _is_mounted(mp) and not m.mounted
    assert os.listdir(mp) == []


def test_mount_unmounts_when_the_block_raises(day01, tmp_path):
    mp = tmp_path / "mnt"
    mp.mkdir()
    with pytest.raises(RuntimeError):
        with reelfs.mount(day01.path, mp, read_only=True):
            assert _is_mounted(mp)
            raise RuntimeError("boom")
    assert not _is_mounted(mp)


def test_writes_through_the_mount_show_in_status_and_commit(tmp_path):
    a = reelfs.Archive.init(tmp_path / "a")
    mp = tmp_path / "mnt"
    mp.mkdir()
    with reelfs.mount(a, mp):
        (mp / "main" / "notes.txt").write_bytes(b"hello\n")
        assert [(s.path, s.change) for s in a.status("main")] == [("notes.txt", "written")]
    # Staged, not committed: open() reads what the mount shows.
    with a.open("main/notes.txt") as fh:
        assert fh.read() == b"hello\n" and fh.content_hash is None
    commit = a.commit("main", message="notes")
    assert commit and a.log("main")[0].message == "notes"
    with a.open("main/notes.txt") as fh:
        assert fh.read() == b"hello\n"


def test_mount_errors_say_what_is_wrong(day01, tmp_path):
    with pytest.raises(reelfs.Error) as e:
        reelfs.mount(day01, tmp_path / "missing").start()
    assert e.value.path == str(tmp_path / "missing")
