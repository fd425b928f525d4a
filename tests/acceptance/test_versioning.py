"""Versioning, driven as a user would: `reelfs diff`, `reelfs log PATH`, `reelfs merge`,
`reelfs gc`, `reelfs restore BRANCH@COMMIT/PATH`, and old versions in the mount
(`MOUNT/<branch>@<commit>/` and `MOUNT/.history/<branch>/<time>_<commit8>/`).

Branches are built by ingesting different small folders (`reelfs ingest --branch`).
Random content is fresh os.urandom each run. Every mount is real and always
unmounted in a `finally`.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from helpers import Mount, b3, wait_until

KiB = 1 << 10
MiB = 1 << 20


# ---- helpers ------------------------------------------------------------------------

_n = [0]


def put(reelfs, archive: Path, tmp: Path, branch: str, files: dict, to: str = "", msg: str | None = None) -> str:
    """Ingest `files` ({relative path: bytes}) into `branch`; return the new commit id.

    Each top-level folder (or file) of `files` is one source, so paths land in the
    branch as given (below `to`)."""
    _n[0] += 1
    src = tmp / f"src{_n[0]}"
    for rel, data in files.items():
        p = src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    tops = sorted({rel.split("/")[0] for rel in files})
    args = ["ingest", archive, *[src / t for t in tops], "--branch", branch]
    if to:
        args += ["--to", to]
    if msg:
        args += ["-m", msg]
    rep = reelfs.json(*args)
    return rep["commit"]


def head(reelfs, archive, branch) -> str:
    log = reelfs.json("log", archive, branch, "-n", "1")
    return log[0]["commit"] if log else ""


def cat(reelfs, archive, spec) -> bytes:
    p = subprocess.run([str(reelfs.binary), "cat", str(archive), spec], capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


def diff_set(d):
    return sorted((c["status"], c["path"], c.get("old_path")) for c in d["changes"])


@pytest.fixture
def two_branches(tmp_path, reelfs, tmp_archive):
    """main: Day01/{a.txt,b.txt}, Day02/clip.mov, gone.txt.
    grade (from main, then ingests): Day01/a.txt modified, Day02/new.wav added,
    and branches `x`/`y` showing a rename (same bytes at a new path) between them."""
    clip = os.urandom(300 * KiB)
    put(reelfs, tmp_archive, tmp_path, "main", {
        "Day01/a.txt": b"a v1\n", "Day01/b.txt": b"b v1\n", "Day02/clip.mov": clip,
    })
    reelfs.ok("branch", tmp_archive, "grade", "--from", "main")
    put(reelfs, tmp_archive, tmp_path, "grade", {"Day01/a.txt": b"a v2, longer\n", "Day02/new.wav": os.urandom(50 * KiB)})
    return tmp_archive, clip


# ---- diff ---------------------------------------------------------------------------

def test_diff_added_modified_and_sizes(reelfs, two_branches):
    arch, _ = two_branches
    d = reelfs.json("diff", arch, "main", "grade")
    assert diff_set(d) == [("added", "Day02/new.wav", None), ("modified", "Day01/a.txt", None)]
    mod = next(c for c in d["changes"] if c["status"] == "modified")
    assert (mod["old_size"], mod["size"]) == (5, 13)
    add = next(c for c in d["changes"] if c["status"] == "added")
    assert add["size"] == 50 * KiB
    assert d["summary"]["added"] == 1 and d["summary"]["modified"] == 1
    # Reverse direction: the addition is a removal.
    r = reelfs.json("diff", arch, "grade", "main")
    assert diff_set(r) == [("modified", "Day01/a.txt", None), ("removed", "Day02/new.wav", None)]
    # Text output names each change with a letter.
    out = reelfs.ok("diff", arch, "main", "grade").stdout
    assert re.search(r"^A\s+Day02/new.wav", out, re.M) and re.search(r"^M\s+Day01/a.txt", out, re.M)
    # Same branch, or the same commit: nothing.
    assert reelfs.json("diff", arch, "main", "main")["changes"] == []
    # Restricted to a path.
    assert diff_set(reelfs.json("diff", arch, "main", "grade", "Day02")) == [("added", "Day02/new.wav", None)]
    assert reelfs.json("diff", arch, "main", "grade", "Day03")["changes"] == []


def test_diff_reports_rename_not_add_plus_remove(reelfs, tmp_path, tmp_archive):
    arch = tmp_archive
    clip = os.urandom(200 * KiB)
    put(reelfs, arch, tmp_path, "main", {"Day01/common.txt": b"shared\n"})
    reelfs.ok("branch", arch, "x", "--from", "main")
    reelfs.ok("branch", arch, "y", "--from", "main")
    put(reelfs, arch, tmp_path, "x", {"Day02/A001C003.mov": clip, "Day02/gone.txt": b"bye\n"})
    put(reelfs, arch, tmp_path, "y", {"Day03/A001C003_v2.mov": clip})
    d = reelfs.json("diff", arch, "x", "y")
    assert diff_set(d) == [
        ("removed", "Day02/gone.txt", None),
        ("renamed", "Day03/A001C003_v2.mov", "Day02/A001C003.mov"),
    ]
    ren = next(c for c in d["changes"] if c["status"] == "renamed")
    assert ren["size"] == 200 * KiB and ren["hash"] == ren["old_hash"] == b3_bytes(clip)
    out = reelfs.ok("diff", arch, "x", "y").stdout
    assert "R  Day02/A001C003.mov -> Day03/A001C003_v2.mov" in out


def b3_bytes(data: bytes) -> str:
    import blake3
    return blake3.blake3(data).hexdigest()


def test_diff_of_commits_and_bad_specs(reelfs, tmp_path, tmp_archive):
    arch = tmp_archive
    c1 = put(reelfs, arch, tmp_path, "main", {"Day01/a.txt": b"1"})
    put(reelfs, arch, tmp_path, "main", {"Day01/b.txt": b"22"})
    d = reelfs.json("diff", arch, f"main@{c1[:8]}", "main")
    assert diff_set(d) == [("added", "Day01/b.txt", None)]
    for bad, why in [("no-such", "no branch"), ("main@ffffffff", "no commit"), ("ma/in", "invalid branch name"),
                     ("main@zz", "not a commit id")]:
        p = reelfs("diff", arch, bad, "main")
        assert p.returncode != 0 and why in p.stderr, (bad, p.stderr)


# ---- log PATH -----------------------------------------------------------------------

def test_log_path_lists_only_commits_that_changed_it(reelfs, tmp_path, tmp_archive):
    arch = tmp_archive
    c1 = put(reelfs, arch, tmp_path, "main", {"Day01/a.txt": b"1", "Day01/b.txt": b"x"}, msg="one")
    put(reelfs, arch, tmp_path, "main", {"Day01/b.txt": b"y"}, msg="two")
    c3 = put(reelfs, arch, tmp_path, "main", {"Day01/a.txt": b"3"}, msg="three")
    log = reelfs.json("log", arch, "main", "Day01/a.txt")
    assert [e["commit"] for e in log] == [c3, c1]
    assert [e["status"] for e in log] == ["modified", "added"]
    assert all(e["path"] == "Day01/a.txt" for e in log)
    assert len(reelfs.json("log", arch, "main")) == 3
    assert len(reelfs.json("log", arch, "main", "Day01/a.txt", "-n", "1")) == 1
    out = reelfs.ok("log", arch, "main", "Day01/a.txt").stdout
    assert "three" in out and "one" in out and "two" not in out


def test_log_path_follows_a_rename(reelfs, tmp_path, tmp_archive):
    """Rename through the mount (the writable mount and `reelfs commit`), then the
    file's history goes back past the rename under its old name."""
    arch = tmp_archive
    clip = os.urandom(256 * KiB)
    c1 = put(reelfs, arch, tmp_path, "main", {"Day01/A001C003.mov": clip, "Day01/other.txt": b"o"}, msg="card")
    mp = tmp_path / "mnt"
    with Mount(reelfs, arch, mp):
        os.makedirs(mp / "main" / "Selects")
        os.rename(mp / "main" / "Day01" / "A001C003.mov", mp / "main" / "Selects" / "hero.mov")
    reelfs.ok("commit", arch, "main", "-m", "move hero to selects")
    c2 = head(reelfs, arch, "main")
    c3 = put(reelfs, arch, tmp_path, "main", {"Selects/hero.mov": clip + b"graded"}, msg="regrade")
    log = reelfs.json("log", arch, "main", "Selects/hero.mov")
    assert [e["commit"] for e in log] == [c3, c2, c1]
    assert log[1]["status"] == "renamed" and log[1]["renamed_from"] == "Day01/A001C003.mov"
    assert log[2]["path"] == "Day01/A001C003.mov"
    # And the diff across the rename says so.
    d = reelfs.json("diff", arch, f"main@{c1[:8]}", f"main@{c2[:8]}")
    assert ("renamed", "Selects/hero.mov", "Day01/A001C003.mov") in diff_set(d)


# ---- merge --------------------------------------------------------------------------

def test_merge_clean_has_two_parents(reelfs, tmp_path, two_branches):
    arch, _ = two_branches
    put(reelfs, arch, tmp_path, "main", {"Day01/b.txt": b"b v2\n"})
    m0, g0 = head(reelfs, arch, "main"), head(reelfs, arch, "grade")
    rep = reelfs.json("merge", arch, "grade", "--into", "main", "-m", "bring in the grade")
    assert rep["outcome"] == "merged"
    assert rep["parents"] == [m0, g0]
    log = reelfs.json("log", arch, "main", "-n", "1")
    assert log[0]["parents"] == [m0, g0] and log[0]["merge"] is True and log[0]["message"] == "bring in the grade"
    assert cat(reelfs, arch, "main/Day01/a.txt") == b"a v2, longer\n"
    assert cat(reelfs, arch, "main/Day01/b.txt") == b"b v2\n"
    assert len(cat(reelfs, arch, "main/Day02/new.wav")) == 50 * KiB
    assert sorted(c["path"] for c in rep["changes"]) == ["Day01/a.txt", "Day02/new.wav"]
    # grade is untouched.
    assert cat(reelfs, arch, "grade/Day01/b.txt") == b"b v1\n"
    reelfs.check_deep(arch)


def test_merge_fast_forward_and_up_to_date(reelfs, two_branches):
    arch, _ = two_branches
    g = head(reelfs, arch, "grade")
    p = reelfs.ok("merge", arch, "grade", "--into", "main")
    assert "fast-forward" in p.stdout
    assert head(reelfs, arch, "main") == g
    # No new commit: main's history is grade's, commit for commit.
    assert [c["commit"] for c in reelfs.json("log", arch, "main")] == [c["commit"] for c in reelfs.json("log", arch, "grade")]
    assert reelfs.json("merge", arch, "grade", "--into", "main")["outcome"] == "up-to-date"
    assert reelfs.json("merge", arch, "main", "--into", "grade")["outcome"] == "up-to-date"


def test_merge_conflict_lists_paths_and_merges_nothing(reelfs, tmp_path, two_branches):
    arch, clip = two_branches
    put(reelfs, arch, tmp_path, "main", {"Day01/a.txt": b"a edited on main\n", "Day01/b.txt": b"b v2\n"})
    put(reelfs, arch, tmp_path, "main", {"Day02/new.wav": b"main's own new.wav"})
    # A change on the merged side that conflicts with nothing: it must arrive.
    put(reelfs, arch, tmp_path, "grade", {"Day03/grade_only.txt": b"only on grade\n"})
    before = head(reelfs, arch, "main")
    grade_head = head(reelfs, arch, "grade")
    p = reelfs("merge", arch, "grade", "--into", "main")
    assert p.returncode == 1
    assert "CONFLICT (modify/modify)  Day01/a.txt" in p.stdout
    assert "CONFLICT (add/add)  Day02/new.wav" in p.stdout
    assert "nothing was merged" in p.stderr
    rep = reelfs.json("merge", arch, "grade", "--into", "main", expect_rc=1)
    assert rep["outcome"] == "conflicts"
    assert sorted(c["path"] for c in rep["conflicts"]) == ["Day01/a.txt", "Day02/new.wav"]
    assert head(reelfs, arch, "main") == before
    # Resolving only one of two: still nothing merged.
    p = reelfs("merge", arch, "grade", "--into", "main", "--theirs", "Day01/a.txt")
    assert p.returncode == 1 and "Day02/new.wav" in p.stdout and "Day01/a.txt" not in p.stdout
    assert head(reelfs, arch, "main") == before
    # Both resolved: merged, each as asked, and the non-conflicting change too.
    rep = reelfs.json("merge", arch, "grade", "--into", "main", "--theirs", "Day01/a.txt", "--ours", "Day02")
    assert rep["outcome"] == "merged"
    assert {c["path"]: c["resolved"] for c in rep["conflicts"]} == {"Day01/a.txt": "theirs", "Day02/new.wav": "ours"}
    assert cat(reelfs, arch, "main/Day01/a.txt") == b"a v2, longer\n"
    assert cat(reelfs, arch, "main/Day02/new.wav") == b"main's own new.wav"
    assert cat(reelfs, arch, "main/Day01/b.txt") == b"b v2\n"
    assert cat(reelfs, arch, "main/Day02/clip.mov") == clip
    assert cat(reelfs, arch, "main/Day03/grade_only.txt") == b"only on grade\n"
    # The merge commit has both heads as parents, main's first.
    assert rep["parents"] == [before, grade_head]
    log = reelfs.json("log", arch, "main", "-n", "1")
    assert log[0]["commit"] == rep["commit"] == head(reelfs, arch, "main")
    assert log[0]["parents"] == [before, grade_head] and log[0]["merge"] is True
    reelfs.check_deep(arch)


def test_merge_errors(reelfs, tmp_path, tmp_archive):
    arch = tmp_archive
    # `other` is made while main is empty: the two histories never meet.
    reelfs.ok("branch", arch, "other", "--from", "main")
    put(reelfs, arch, tmp_path, "main", {"Day01/a.txt": b"a"})
    put(reelfs, arch, tmp_path, "other", {"Day09/z.txt": b"z"})
    before = head(reelfs, arch, "main")
    p = reelfs("merge", arch, "other", "--into", "main")
    assert p.returncode != 0 and "unrelated" in p.stderr and "nothing was merged" in p.stderr
    for args, why in [
        (["other", "--into", "ma/in"], "invalid branch name"),
        (["other", "--into", "main@abcd"], "invalid branch name"),
        (["oth/er", "--into", "main"], "invalid branch name"),
        (["other@ffffffff", "--into", "main"], "no commit"),
        (["other@xyz", "--into", "main"], "not a commit id"),
        (["nope", "--into", "main"], "no branch named 'nope'"),
        (["other", "--into", "nope"], "no branch named 'nope'"),
    ]:
        p = reelfs("merge", arch, *args)
        assert p.returncode != 0 and why in p.stderr, (args, p.stderr)
    assert head(reelfs, arch, "main") == before
    reelfs.check_deep(arch)


def test_merge_of_an_older_commit(reelfs, tmp_path, tmp_archive):
    arch = tmp_archive
    put(reelfs, arch, tmp_path, "main", {"Day01/a.txt": b"a"})
    reelfs.ok("branch", arch, "vfx", "--from", "main")
    c1 = put(reelfs, arch, tmp_path, "vfx", {"Day01/plate1.exr": b"p1"})
    put(reelfs, arch, tmp_path, "vfx", {"Day01/plate2.exr": b"p2"})
    put(reelfs, arch, tmp_path, "main", {"Day01/b.txt": b"b"})
    rep = reelfs.json("merge", arch, f"vfx@{c1[:10]}", "--into", "main")
    assert rep["outcome"] == "merged" and rep["parents"][1] == c1
    names = {c["path"] for c in rep["changes"]}
    assert names == {"Day01/plate1.exr"}


# ---- gc -----------------------------------------------------------------------------

def test_gc_frees_a_deleted_branch_and_keeps_everything_else(reelfs, tmp_path, tmp_archive):
    arch = tmp_archive
    keep = {"Day01/A001C001.mov": os.urandom(3 * MiB), "Day01/sound.wav": os.urandom(700 * KiB)}
    put(reelfs, arch, tmp_path, "main", keep)
    reelfs.ok("branch", arch, "scratch", "--from", "main")
    unique = os.urandom(5 * MiB)
    put(reelfs, arch, tmp_path, "scratch", {"Day02/take9.mov": unique, "Day01/A001C001.mov": keep["Day01/A001C001.mov"]})
    reelfs.ok("branch", arch, "keepme", "--from", "main")
    put(reelfs, arch, tmp_path, "keepme", {"Day03/kept.mov": os.urandom(2 * MiB)})
    # Nothing to free yet.
    rep0 = reelfs.json("gc", arch)
    assert rep0["chunks_freed"] == 0 and rep0["bytes_freed"] == 0
    reelfs.ok("branch", arch, "scratch", "-d")
    dry = reelfs.json("gc", arch, "--dry-run")
    assert dry["dry_run"] and dry["chunks_freed"] >= 1
    stats_before = reelfs.json("stats", arch)
    rep = reelfs.json("gc", arch)
    assert rep["chunks_freed"] == dry["chunks_freed"]
    assert rep["chunk_bytes_freed"] >= 5 * MiB
    assert rep["bytes_freed"] >= 5 * MiB
    assert rep["problems"] == []
    out = reelfs.ok("gc", arch).stdout
    assert "freed 0 B" in out
    stats_after = reelfs.json("stats", arch)
    assert stats_after["pack_bytes"] <= stats_before["pack_bytes"] - 5 * MiB
    reelfs.check_deep(arch)
    # Everything still on a branch restores byte-identical.
    dest = tmp_path / "restored"
    dest.mkdir()
    reelfs.ok("restore", arch, "main/Day01", "keepme/Day03", dest)
    for rel, data in keep.items():
        assert (dest / "Day01" / Path(rel).name).read_bytes() == data
    assert (dest / "Day03" / "kept.mov").stat().st_size == 2 * MiB
    # History is kept: the first commit of main still restores.
    log = reelfs.json("log", arch, "main")
    assert cat(reelfs, arch, f"main@{log[-1]['commit'][:8]}/Day01/sound.wav") == keep["Day01/sound.wav"]
    # A rebuilt catalog agrees.
    reelfs.ok("check", arch, "--rebuild-catalog")
    reelfs.check_deep(arch)
    assert sorted(b for b in reelfs.ok("branch", arch).stdout.split() if not re.fullmatch(r"[0-9a-f]{12}", b)) == ["keepme", "main"]


def _one_pack_live_and_dead(reelfs, arch, tmp_path):
    """Branch `tmp` holds one pack with a live 1 MiB file (shared with main) and a
    dead 8 MiB one: after `branch tmp -d`, gc compacts or deletes that pack."""
    live = os.urandom(1 * MiB)
    src = tmp_path / "card"
    src.mkdir()
    (src / "live.mov").write_bytes(live)
    (src / "dead.mov").write_bytes(os.urandom(8 * MiB))
    reelfs.ok("branch", arch, "tmp", "--from", "main")
    reelfs.ok("ingest", arch, src, "--branch", "tmp")      # one pack: live + dead
    put(reelfs, arch, tmp_path, "main", {"card/live.mov": live})
    return live


def test_gc_with_a_reader_running(reelfs, tmp_path, tmp_archive):
    """A mount reading a file while gc compacts the pack that holds it."""
    arch = tmp_archive
    live = _one_pack_live_and_dead(reelfs, arch, tmp_path)
    mp = tmp_path / "mnt"
    with Mount(reelfs, arch, mp):
        f = mp / "main" / "card" / "live.mov"
        with open(f, "rb") as fh:
            assert fh.read(4096) == live[:4096]
            reelfs.ok("branch", arch, "tmp", "-d")
            rep = reelfs.json("gc", arch)
            assert rep["packs_compacted"] >= 1, rep
            fh.seek(0)
            os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            assert fh.read() == live
        # Once the mount has refreshed its view of the catalog (the deleted branch is
        # gone from its root), reads go through the compacted packs.
        # Listing the root right after gc works (it used to fail with EIO while
        # `tmp`, whose head commit gc removed, was still in the mount's cached heads).
        os.listdir(mp)
        assert wait_until(lambda: "tmp" not in os.listdir(mp), 10)
        with open(f, "rb") as fh:
            assert fh.read() == live
    reelfs.check_deep(arch)


def test_the_mount_closes_a_pack_gc_deleted_so_its_space_is_freed(reelfs, tmp_path, tmp_archive):
    # The mount refreshes its view once a second. It used to read the whole packs
    # table for that (50 cold pages at 100 TB, every second); it now asks only
    # about the packs it has open, and must still close those gc deleted, or
    # their disk space stays in use until the unmount.
    arch = tmp_archive
    live = _one_pack_live_and_dead(reelfs, arch, tmp_path)
    mp = tmp_path / "mnt"
    with Mount(reelfs, arch, mp) as m:
        f = mp / "main" / "card" / "live.mov"
        assert f.read_bytes() == live                        # the mount opens the pack

        def deleted_packs():
            fds = Path(f"/proc/{m.pid}/fd")
            links = []
            for fd in fds.iterdir():
                try:
                    links.append(os.readlink(fd))
                except OSError:
                    pass
            return [t for t in links if "/packs/" in t and t.endswith("(deleted)")]

        reelfs.ok("branch", arch, "tmp", "-d")
        rep = reelfs.json("gc", arch)
        assert rep["packs_compacted"] + rep["packs_deleted"] >= 1, rep
        def refreshed_and_closed():
            os.listdir(mp)                     # a lookup refreshes the mount's view
            return not deleted_packs()

        assert wait_until(refreshed_and_closed, 10), f"the mount still holds packs gc deleted: {deleted_packs()}"
        with open(f, "rb") as fh:
            os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            assert fh.read() == live


# ---- restore and the mount ----------------------------------------------------------

def test_restore_an_old_version(reelfs, tmp_path, tmp_archive):
    arch = tmp_archive
    v1 = os.urandom(64 * KiB)
    c1 = put(reelfs, arch, tmp_path, "main", {"Day01/clip.mov": v1})
    put(reelfs, arch, tmp_path, "main", {"Day01/clip.mov": os.urandom(64 * KiB)})
    dest = tmp_path / "old.mov"
    reelfs.ok("restore", arch, f"main@{c1[:8]}/Day01/clip.mov", dest)
    assert dest.read_bytes() == v1
    p = reelfs("restore", arch, "main@ffffffff/Day01/clip.mov", tmp_path / "x")
    assert p.returncode != 0 and "no commit" in p.stderr


def test_mount_shows_old_versions_read_only(reelfs, tmp_path, tmp_archive):
    arch = tmp_archive
    v1 = {"Day01/A001C001.mov": os.urandom(200 * KiB), "Day01/notes.txt": b"take 1\n"}
    c1 = put(reelfs, arch, tmp_path, "main", v1, msg="first")
    time.sleep(1.1)  # distinct timestamps in .history names
    c2 = put(reelfs, arch, tmp_path, "main", {"Day01/notes.txt": b"take 2\n", "Day02/B.mov": os.urandom(10 * KiB)}, msg="second")
    mp = tmp_path / "mnt"
    with Mount(reelfs, arch, mp):
        # branch@commit: resolved on lookup, not listed.
        old = mp / f"main@{c1[:8]}"
        assert (old / "Day01" / "notes.txt").read_bytes() == b"take 1\n"
        assert (mp / "main" / "Day01" / "notes.txt").read_bytes() == b"take 2\n"
        assert sorted(os.listdir(old)) == ["Day01"]
        assert sorted(os.listdir(mp)) == ["main"]
        assert b3(old / "Day01" / "A001C001.mov") == b3_bytes(v1["Day01/A001C001.mov"])
        assert os.path.isdir(mp / f"main@{c2[:12]}")
        for bad in ["main@ffffffff", "main@zz", "nope@" + c1[:8], f"main@{c1[:2]}"]:
            assert not os.path.exists(mp / bad), bad
        # Read-only.
        for fn in [lambda: open(old / "Day01" / "notes.txt", "w"),
                   lambda: open(old / "Day01" / "new.txt", "w"),
                   lambda: os.mkdir(old / "Day03"),
                   lambda: os.unlink(old / "Day01" / "notes.txt"),
                   lambda: os.rename(old / "Day01" / "notes.txt", old / "Day01" / "n.txt")]:
            with pytest.raises(OSError) as e:
                fn()
            assert e.value.errno in (errno.EROFS, errno.EACCES, errno.EPERM), e.value
        # .history: one folder per commit, newest first, named by UTC time and id.
        hist = mp / ".history"
        assert os.listdir(hist) == ["main"]
        names = os.listdir(hist / "main")
        assert len(names) == 2
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d\.\d\d\.\d\d_[0-9a-f]{8}", n) for n in names)
        by_commit = {n.rsplit("_", 1)[1]: n for n in names}
        assert set(by_commit) == {c1[:8], c2[:8]}
        assert sorted(names, reverse=True)[0] == by_commit[c2[:8]]
        assert (hist / "main" / by_commit[c1[:8]] / "Day01" / "notes.txt").read_bytes() == b"take 1\n"
        assert sorted(os.listdir(hist / "main" / by_commit[c2[:8]])) == ["Day01", "Day02"]
        assert not os.path.exists(hist / "main" / "2000-01-01T00.00.00_00000000")
        assert not os.path.exists(hist / "nope")
        # xattrs name the commit.
        x = subprocess.run(["getfattr", "-d", "-m", "user.reelfs", str(old)], capture_output=True, text=True)
        assert x.returncode == 0, f"getfattr of {old} failed: {x.stderr}"
        assert c1 in x.stdout, x.stdout


# ---- staged writes (the writable mount) and versioning --------------------------------

def test_merge_refuses_while_dst_has_staged_writes_and_gc_keeps_them(reelfs, tmp_path, tmp_archive):
    arch = tmp_archive
    put(reelfs, arch, tmp_path, "main", {"Day01/a.txt": b"a"})
    reelfs.ok("branch", arch, "grade", "--from", "main")
    put(reelfs, arch, tmp_path, "grade", {"Day01/b.txt": b"b"})
    staged = os.urandom(3 * MiB)
    mp = tmp_path / "mnt"
    with Mount(reelfs, arch, mp):
        (mp / "main" / "Day01" / "new.mov").write_bytes(staged)
    # Staged on main, not committed: merge into main is refused, nothing written.
    before = head(reelfs, arch, "main")
    p = reelfs("merge", arch, "grade", "--into", "main")
    assert p.returncode != 0 and "commit or discard staged changes on main first" in p.stderr
    assert head(reelfs, arch, "main") == before
    # Merging main into grade is fine (staging on main is not part of it).
    assert reelfs.json("merge", arch, "main", "--into", "grade")["outcome"] == "up-to-date"
    # gc keeps the staged chunks: committing afterwards still has every byte.
    reelfs.ok("branch", arch, "junk", "--from", "main")
    put(reelfs, arch, tmp_path, "junk", {"Day09/x.bin": os.urandom(2 * MiB)})
    reelfs.ok("branch", arch, "junk", "-d")
    rep = reelfs.json("gc", arch)
    assert rep["chunks_freed"] >= 1 and rep["problems"] == []
    reelfs.ok("commit", arch, "main", "-m", "staged file")
    assert cat(reelfs, arch, "main/Day01/new.mov") == staged
    assert reelfs.json("merge", arch, "grade", "--into", "main")["outcome"] == "merged"
    reelfs.check_deep(arch)
