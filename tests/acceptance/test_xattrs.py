"""User extended attributes (issue 12): read from the source at ingest (never
`user.reelfs.*`, which the mount derives), kept in the tree, restored on files
and folders, kept by a catalog rebuild, and reported by `diff` when only they
change. Values are bytes (a Finder info block is binary)."""

import os

import pytest

from helpers import b3, write_random

FINDER = bytes(range(32))  # what macOS puts in com.apple.FinderInfo: 32 binary bytes


@pytest.fixture
def tagged_src(tmp_path):
    src = tmp_path / "card"
    clip = write_random(src / "A001C001.mov", 40_000, mode=0o444)  # read-only: attributes still restore
    write_random(src / "plain.bin", 1_000)
    os.setxattr(clip, "user.com.apple.FinderInfo", FINDER)
    os.setxattr(clip, "user.label", b"hero take")
    os.setxattr(clip, "user.reelfs.timecode", b"not kept: the mount derives these")
    os.setxattr(src, "user.xdg.comment", b"day one")
    return src


def xattrs(p):
    return {n: os.getxattr(p, n) for n in os.listxattr(p)}


def test_ingest_keeps_user_xattrs_and_restore_gives_them_back(reelfs, tmp_archive, tagged_src, tmp_path):
    reelfs.ok("ingest", tmp_archive, tagged_src, "-m", "card")
    rows = {e["name"]: e for e in reelfs.json("ls", tmp_archive, "main/card")}
    assert rows["A001C001.mov"]["xattrs"] == {"user.com.apple.FinderInfo": FINDER.hex(), "user.label": b"hero take".hex()}
    assert "xattrs" not in rows["plain.bin"]
    reelfs.ok("check", tmp_archive, "--rebuild-catalog")
    assert {e["name"]: e for e in reelfs.json("ls", tmp_archive, "main/card")} == rows
    dest = tmp_path / "restored"
    dest.mkdir()
    r = reelfs.ok("restore", tmp_archive, "main/card", dest)
    assert "warning" not in r.stderr, r.stderr
    got = dest / "card"
    assert xattrs(got / "A001C001.mov") == {"user.com.apple.FinderInfo": FINDER, "user.label": b"hero take"}
    assert xattrs(got) == {"user.xdg.comment": b"day one"}
    assert xattrs(got / "plain.bin") == {}
    assert b3(got / "A001C001.mov") == b3(tagged_src / "A001C001.mov")


def test_diff_reports_a_change_of_xattrs_alone(reelfs, tmp_archive, tagged_src):
    reelfs.ok("ingest", tmp_archive, tagged_src, "-m", "card")
    reelfs.ok("branch", tmp_archive, "before", "--from", "main")
    os.setxattr(tagged_src / "A001C001.mov", "user.label", b"alt take")
    os.setxattr(tagged_src / "plain.bin", "user.label", b"new")
    reelfs.ok("ingest", tmp_archive, tagged_src, "-m", "relabel")
    out = reelfs.ok("diff", tmp_archive, "before", "main").stdout
    assert "M  card/A001C001.mov" in out and "xattrs changed" in out, out
    changes = {c["path"]: c for c in reelfs.json("diff", tmp_archive, "before", "main")["changes"]}
    assert set(changes) == {"card/A001C001.mov", "card/plain.bin"}, changes
    assert all(c["xattrs"] and c["hash"] == c["old_hash"] for c in changes.values())
