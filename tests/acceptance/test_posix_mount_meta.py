"""What a file carries besides its bytes, through a writable mount (issue 12):
user extended attributes and hard-link groups survive a rename, chmod, chown
or write made through the mount and its commit; user xattrs are set, read,
listed and removed through the mount (per xattr(7)), committed, diffed and
restored; `rsync -aX` into the mount keeps them. Checked as a user would:
`os.getxattr`/`getfattr -d` on the restored files, inode numbers of links.

Runs as root (chown, and the mount's `-u` cases)."""

import ctypes
import errno
import os
import subprocess

import pytest

from helpers import Mount, b3, write_random

FINDER = bytes(range(32))  # a Finder info block: 32 binary bytes


@pytest.fixture(scope="module", autouse=True)
def need_root():
    if os.geteuid() != 0:
        pytest.fail("these tests run as root (they chown)", pytrace=False)


def xattrs(p):
    return {n: os.getxattr(p, n, follow_symlinks=False) for n in os.listxattr(p, follow_symlinks=False)}


def user_xattrs(p):
    """The attributes a user sets: the mount's derived `user.reelfs.*` left out."""
    return {n: v for n, v in xattrs(p).items() if not n.startswith("user.reelfs.")}


def restore(reelfs, archive, what, dest):
    dest.mkdir(parents=True, exist_ok=True)
    r = reelfs.ok("restore", archive, what, dest)
    assert "warning" not in r.stderr, r.stderr
    return dest


@pytest.fixture
def tagged_card(tmp_path):
    """A card whose files and folder carry user xattrs, with a hard-linked pair."""
    src = tmp_path / "card"
    for name in ("moved.mov", "chmodded.mov", "chowned.mov", "written.mov", "linked.mov"):
        write_random(src / name, 30_000)
        os.setxattr(src / name, "user.com.apple.FinderInfo", FINDER)
        os.setxattr(src / name, "user.label", f"label of {name}".encode())
    os.link(src / "linked.mov", src / "linked-too.mov")
    os.setxattr(src, "user.xdg.comment", b"day one")
    return src


def test_rename_chmod_chown_and_write_through_the_mount_keep_xattrs_and_links(reelfs, tmp_archive, tagged_card, tmp_path):
    reelfs.ok("ingest", tmp_archive, tagged_card, "-m", "card")
    with Mount(reelfs, tmp_archive, tmp_path / "mnt") as m:
        card = m.mp / "main" / "card"
        os.rename(card / "moved.mov", card / "renamed.mov")
        os.chmod(card / "chmodded.mov", 0o600)
        os.chown(card / "chowned.mov", 1234, 5678)
        with open(card / "written.mov", "r+b") as f:
            f.seek(100)
            f.write(b"a patch through the mount")
        os.rename(card / "linked.mov", card / "linked-renamed.mov")
        # Seen in the mount before the commit too.
        assert user_xattrs(card / "renamed.mov")["user.label"] == b"label of moved.mov"
        assert user_xattrs(card / "written.mov")["user.com.apple.FinderInfo"] == FINDER
        reelfs.ok("commit", tmp_archive, "main", "-m", "edits")
    rows = {e["name"]: e for e in reelfs.json("ls", tmp_archive, "main/card")}
    rows = {e["name"]: e for e in reelfs.json("ls", tmp_archive, "main/card")}
    for name in ("renamed.mov", "chmodded.mov", "chowned.mov", "written.mov", "linked-renamed.mov"):
        assert rows[name].get("xattrs", {}).get("user.com.apple.FinderInfo") == FINDER.hex(), (name, rows[name])
    assert rows["linked-renamed.mov"].get("link_group") is not None, rows["linked-renamed.mov"]
    assert rows["linked-renamed.mov"]["link_group"] == rows["linked-too.mov"]["link_group"]
    got = restore(reelfs, tmp_archive, "main/card", tmp_path / "restored") / "card"
    for name, was in (("renamed.mov", "moved.mov"), ("chmodded.mov", None), ("chowned.mov", None), ("written.mov", None)):
        assert xattrs(got / name) == {"user.com.apple.FinderInfo": FINDER, "user.label": f"label of {was or name}".encode()}, name
    assert os.stat(got / "chowned.mov").st_uid == 1234
    assert os.stat(got / "linked-renamed.mov").st_ino == os.stat(got / "linked-too.mov").st_ino
    assert os.stat(got / "linked-too.mov").st_nlink == 2
    # The folder kept its own attribute although things inside it changed.
    assert xattrs(got) == {"user.xdg.comment": b"day one"}
    reelfs.check_deep(tmp_archive)


_libc = ctypes.CDLL(None, use_errno=True)


def getxattr_into(path, name, size):
    """getxattr(2) with a buffer of `size` bytes: (length, errno)."""
    buf = ctypes.create_string_buffer(max(size, 1))
    n = _libc.getxattr(os.fsencode(path), name.encode(), buf if size else None, ctypes.c_size_t(size))
    return n, (ctypes.get_errno() if n < 0 else 0)


def oserror(fn, *args, **kw):
    with pytest.raises(OSError) as e:
        fn(*args, **kw)
    return e.value.errno


def test_user_xattrs_are_set_listed_removed_committed_diffed_and_restored(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "card"
    write_random(src / "A001C001.mov", 20_000)
    reelfs.ok("ingest", tmp_archive, src, "-m", "card")
    reelfs.ok("branch", tmp_archive, "before", "--from", "main")
    with Mount(reelfs, tmp_archive, tmp_path / "mnt") as m:
        card = m.mp / "main" / "card"
        clip = card / "A001C001.mov"
        os.setxattr(clip, "user.com.apple.FinderInfo", FINDER)
        os.setxattr(clip, "user.label", b"hero")
        os.setxattr(card, "user.xdg.comment", b"day one")
        new = card / "new.txt"
        new.write_bytes(b"notes")
        os.setxattr(new, "user.label", b"fresh")
        assert user_xattrs(clip) == {"user.com.apple.FinderInfo": FINDER, "user.label": b"hero"}
        assert user_xattrs(card) == {"user.xdg.comment": b"day one"}
        # The derived attributes are still there, beside the user's.
        assert "user.reelfs.hash" in os.listxattr(clip)
        # xattr(7): create/replace flags, a missing name, a short buffer, sizes.
        assert oserror(os.setxattr, clip, "user.label", b"x", os.XATTR_CREATE) == errno.EEXIST
        assert oserror(os.setxattr, clip, "user.nope", b"x", os.XATTR_REPLACE) == errno.ENODATA
        assert oserror(os.getxattr, clip, "user.nope") == errno.ENODATA
        assert oserror(os.removexattr, clip, "user.nope") == errno.ENODATA
        assert getxattr_into(clip, "user.com.apple.FinderInfo", 0) == (32, 0)
        assert getxattr_into(clip, "user.com.apple.FinderInfo", 8) == (-1, errno.ERANGE)
        assert oserror(os.setxattr, clip, "user.big", b"x" * (64 * 1024 + 1)) == errno.E2BIG
        assert oserror(os.setxattr, clip, "user." + "n" * 300, b"x") == errno.ERANGE
        os.setxattr(clip, "user.max", b"m" * (64 * 1024))
        assert os.getxattr(clip, "user.max") == b"m" * (64 * 1024)
        os.removexattr(clip, "user.max")
        # The mount's own attributes are read-only; other namespaces are not kept.
        assert oserror(os.setxattr, clip, "user.reelfs.location", b"tape") == errno.EPERM
        assert os.getxattr(clip, "user.reelfs.location") == b"disk"
        # Removing one changes nothing (it is derived) and is not an error:
        # rsync -X removes every name its source lacks.
        os.removexattr(clip, "user.reelfs.hash")
        assert os.getxattr(clip, "user.reelfs.hash").startswith(b"blake3:")
        assert oserror(os.setxattr, clip, "trusted.x", b"1") == errno.EOPNOTSUPP
        assert oserror(os.setxattr, clip, "security.x", b"1") == errno.EOPNOTSUPP
        # Archived history is read-only.
        before = m.mp / "before" / "card" / "A001C001.mov"
        assert b3(before) == b3(src / "A001C001.mov")
        os.setxattr(clip, "user.gone", b"soon")
        os.removexattr(clip, "user.gone")
        assert "user.gone" not in os.listxattr(clip)
        # A write keeps them; so does the commit.
        with open(clip, "r+b") as f:
            f.write(b"patched")
        assert user_xattrs(clip)["user.label"] == b"hero"
        reelfs.ok("commit", tmp_archive, "main", "-m", "labels")
        assert user_xattrs(clip) == {"user.com.apple.FinderInfo": FINDER, "user.label": b"hero"}
        assert user_xattrs(card) == {"user.xdg.comment": b"day one"}
        # An xattr-only change after the commit is a change of its own.
        os.setxattr(card / "new.txt", "user.label", b"relabelled")
        reelfs.ok("commit", tmp_archive, "main", "-m", "relabel")
    changes = {c["path"]: c for c in reelfs.json("diff", tmp_archive, "before", "main")["changes"]}
    assert changes["card/A001C001.mov"]["xattrs"], changes
    got = restore(reelfs, tmp_archive, "main/card", tmp_path / "restored") / "card"
    assert xattrs(got / "A001C001.mov") == {"user.com.apple.FinderInfo": FINDER, "user.label": b"hero"}
    assert xattrs(got / "new.txt") == {"user.label": b"relabelled"}
    assert xattrs(got) == {"user.xdg.comment": b"day one"}
    reelfs.check_deep(tmp_archive)


def test_a_user_xattr_alone_is_a_change_diff_reports(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "card"
    write_random(src / "plain.bin", 5_000)
    reelfs.ok("ingest", tmp_archive, src, "-m", "card")
    reelfs.ok("branch", tmp_archive, "before", "--from", "main")
    with Mount(reelfs, tmp_archive, tmp_path / "mnt") as m:
        os.setxattr(m.mp / "main" / "card" / "plain.bin", "user.label", b"x")
        status = {r["path"]: r["change"] for r in reelfs.json("status", tmp_archive, "main")}
        assert "card/plain.bin" in status, status
        reelfs.ok("commit", tmp_archive, "main", "-m", "label")
    out = reelfs.ok("diff", tmp_archive, "before", "main").stdout
    assert "M  card/plain.bin" in out and "xattrs changed" in out, out


def getfattr_dump(root):
    """`getfattr -d -R` as a user runs it, paths made relative, `user.reelfs.*` aside."""
    out = subprocess.run(["getfattr", "-R", "-d", "-m", "^user\\.", "--absolute-names", "-e", "hex", str(root)],
                         capture_output=True, text=True, check=True).stdout
    dump, cur = {}, None
    for line in out.splitlines():
        if line.startswith("# file: "):
            cur = os.path.relpath(line[len("# file: "):], root)
        elif "=" in line and cur is not None and not line.startswith("user.reelfs."):
            k, v = line.split("=", 1)
            dump.setdefault(cur, {})[k] = v
    return dump


def test_rsync_aX_into_the_mount_keeps_xattrs_through_commit_and_restore(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "shoot"
    for name in ("A001C001.mov", "sub/B001C001.wav"):
        write_random(src / name, 10_000)
    os.setxattr(src / "A001C001.mov", "user.com.apple.FinderInfo", FINDER)
    os.setxattr(src / "A001C001.mov", "user.DosStream.AFP_Resource:$DATA", bytes(range(256)) * 4)
    os.setxattr(src / "sub", "user.xdg.comment", b"sound")
    os.setxattr(src / "sub" / "B001C001.wav", "user.label", b"boom")
    reelfs.ok("ingest", tmp_archive, src, "--to", "seed", "-m", "a folder to have a main")
    with Mount(reelfs, tmp_archive, tmp_path / "mnt") as m:
        dest = m.mp / "main" / "shoot"
        r = subprocess.run(["rsync", "-aX", f"{src}/", f"{dest}/"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert getfattr_dump(dest) == getfattr_dump(src)
        reelfs.ok("commit", tmp_archive, "main", "-m", "rsync")
    got = restore(reelfs, tmp_archive, "main/shoot", tmp_path / "restored") / "shoot"
    assert getfattr_dump(got) == getfattr_dump(src)
    assert b3(got / "A001C001.mov") == b3(src / "A001C001.mov")


def test_a_folder_mtime_and_ctime_follow_creates_removes_and_renames_in_it(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "card"
    write_random(src / "edit" / "v1.edl", 1_000)
    (src / "other").mkdir()
    T = 1_000_000_000_000_000_000  # 2001: anything made now is later
    os.utime(src / "edit", ns=(T, T))
    os.utime(src / "other", ns=(T, T))
    reelfs.ok("ingest", tmp_archive, src, "-m", "card")
    with Mount(reelfs, tmp_archive, tmp_path / "mnt") as m:
        edit, other = m.mp / "main" / "card" / "edit", m.mp / "main" / "card" / "other"
        steps = [
            lambda: (edit / "v2.edl").write_bytes(b"new"),  # create
            lambda: os.mkdir(edit / "sub"),  # mkdir
            lambda: os.rmdir(edit / "sub"),  # rmdir
            lambda: os.symlink("v1.edl", edit / "latest.edl"),  # symlink
            lambda: os.unlink(edit / "latest.edl"),  # unlink
            lambda: os.rename(edit / "v2.edl", other / "v2.edl"),  # rename out of one folder into another
        ]
        for step in steps:
            before = os.stat(edit)
            os.utime(edit, ns=(T, T))
            os.utime(other, ns=(T, T))
            step()
            after = os.stat(edit)
            assert after.st_mtime_ns > T and after.st_ctime_ns > T, (step, before, after)
        assert os.stat(other).st_mtime_ns > T
        reelfs.ok("commit", tmp_archive, "main", "-m", "edits")
    dest = restore(reelfs, tmp_archive, "main/card", tmp_path / "restored") / "card"
    assert os.stat(dest / "edit").st_mtime_ns > T and os.stat(dest / "other").st_mtime_ns > T
