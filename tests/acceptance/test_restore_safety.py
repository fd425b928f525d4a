"""Restore, extract and slice -o write only where the user asked (issue 11,
"Writes outside DEST"), and a new archive is private to its owner.

Each test plants what a hostile local user could plant in a destination (links
to other folders and files, names that used to be temporaries) or aims the
output at the archive itself, then checks what a user would: the victim's bytes
and modes, what is in DEST, the archive's packs, and who can read them.
Runs as root (the suite does): mount --bind, groupadd and setpriv are real.
"""

import json
import os
import shutil
import stat
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from helpers import b3, write_random

T = 1_600_000_000_123_456_789


def snapshot(folder):
    """{relative path: (kind, mode, bytes hash or link target)} of everything below."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for n in dirs + files:
            p = os.path.join(root, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, folder)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                out[rel] = ("file", stat.S_IMODE(st.st_mode), b3(p))
    return out


def packs_snapshot(archive):
    """Everything under the archive except SQLite's -wal/-shm, which a reader may touch."""
    return {k: v for k, v in snapshot(archive).items() if not k.endswith(("-wal", "-shm"))}


def leftovers(folder):
    return [n for n in os.listdir(folder) if n.startswith(".reelfs")]


@pytest.fixture
def s_tree(tmp_path):
    """`s/` with a file at the top and a sub-folder, ingested as main/S/s."""
    s = tmp_path / "src" / "s"
    write_random(s / "top.txt", 70_000, 0o640, T)
    write_random(s / "sub" / "a.bin", 300_000, 0o600, T + 1)
    write_random(s / "sub" / "b.bin", 1000, 0o644, T + 2)
    os.chmod(s / "sub", 0o700)
    return s


@pytest.fixture
def s_archive(reelfs, tmp_archive, s_tree):
    reelfs.ok("ingest", tmp_archive, s_tree, "--to", "S")
    return tmp_archive


@pytest.fixture
def victim(tmp_path):
    """A folder and a file outside DEST that a planted link points at."""
    v = tmp_path / "victim"
    v.mkdir()
    os.chmod(v, 0o755)
    (v / "keep.txt").write_bytes(b"the victim's own bytes\n")
    os.chmod(v / "keep.txt", 0o644)
    return v


# ---- links planted in DEST ----------------------------------------------------------

def test_restore_does_not_follow_a_folder_link_planted_in_dest(reelfs, s_archive, s_tree, victim, tmp_path):
    d = tmp_path / "d"
    (d / "s").mkdir(parents=True)
    os.symlink(victim, d / "s" / "sub")
    before = snapshot(victim)
    reelfs.ok("restore", s_archive, "main/S/s", d)
    assert snapshot(victim) == before, "the restore wrote into or chmodded the link's target"
    sub = d / "s" / "sub"
    assert not sub.is_symlink() and sub.is_dir()
    assert stat.S_IMODE(os.lstat(sub).st_mode) == 0o700
    for n in ["a.bin", "b.bin"]:
        assert b3(sub / n) == b3(s_tree / "sub" / n), n
    assert sorted(os.listdir(sub)) == ["a.bin", "b.bin"]
    assert leftovers(d) == [] and leftovers(d / "s") == []


def test_restore_does_not_write_through_a_link_at_the_old_temporary_name(reelfs, s_archive, s_tree, victim, tmp_path):
    d = tmp_path / "d"
    (d / "s").mkdir(parents=True)
    os.symlink(victim / "keep.txt", d / "s" / ".top.txt.reelfs-restore")
    before = snapshot(victim)
    reelfs.ok("restore", s_archive, "main/S/s", d)
    assert snapshot(victim) == before
    top = d / "s" / "top.txt"
    assert not top.is_symlink(), "the planted link was renamed into place"
    assert b3(top) == b3(s_tree / "top.txt")
    assert stat.S_IMODE(os.lstat(top).st_mode) == 0o640
    assert os.lstat(top).st_mtime_ns == T
    assert leftovers(d) == []


def test_restore_replaces_a_link_at_a_files_own_path(reelfs, s_archive, s_tree, victim, tmp_path):
    d = tmp_path / "d"
    (d / "s").mkdir(parents=True)
    os.symlink(victim / "keep.txt", d / "s" / "top.txt")
    single = tmp_path / "single.txt"
    os.symlink(victim / "keep.txt", single)
    before = snapshot(victim)
    reelfs.ok("restore", s_archive, "main/S/s", d)
    reelfs.ok("restore", s_archive, "main/S/s/top.txt", single)
    assert snapshot(victim) == before
    for p in [d / "s" / "top.txt", single]:
        assert not p.is_symlink(), p
        assert b3(p) == b3(s_tree / "top.txt"), p


# ---- extract --out with planted links -------------------------------------------------

@pytest.fixture
def clip_archive(reelfs, tmp_archive, media_dir):
    reelfs.ok("ingest", tmp_archive, media_dir / "A001C003_prores_2398.mov", "--to", "Day01")
    return tmp_archive


def extract_one(reelfs, archive, out, rc=0):
    proc = reelfs("extract", archive, "main/Day01/A001C003_prores_2398.mov",
                  "--in", "01:00:00:10", "--out-tc", "01:00:00:20", "--out", out, "--json")
    assert proc.returncode == rc, proc.stderr
    return proc


def test_extract_does_not_write_through_links_planted_in_out(reelfs, clip_archive, victim, tmp_path):
    ref = tmp_path / "ref"
    rep = json.loads(extract_one(reelfs, clip_archive, ref).stdout)
    name = Path(rep["pulls"][0]["output"]).name
    out = tmp_path / "out"
    out.mkdir()
    (victim / "other.txt").write_bytes(b"another victim\n")
    os.symlink(victim / "keep.txt", out / f".{name}.part")
    os.symlink(victim / "other.txt", out / "report.json")
    before = snapshot(victim)
    extract_one(reelfs, clip_archive, out)
    assert snapshot(victim) == before
    assert not (out / name).is_symlink() and b3(out / name) == b3(ref / name)
    assert not (out / "report.json").is_symlink()
    assert json.loads((out / "report.json").read_text())["extracted"] == 1
    assert [n for n in os.listdir(out) if n.startswith(".reelfs")] == []


# ---- DEST inside the archive --------------------------------------------------------------

def refused(proc):
    assert proc.returncode != 0, proc.stdout
    assert "inside the archive" in proc.stderr, proc.stderr
    assert "outside the archive" in proc.stderr


def test_restore_refuses_dest_inside_the_archive_by_any_spelling(reelfs, s_archive, tmp_path):
    a = s_archive
    os.symlink(a, tmp_path / "lnk")
    (tmp_path / "out").mkdir()
    pack = sorted((a / "packs").rglob("*.pack"))[0]
    spellings = [
        a / "packs",                                    # direct path, existing folder
        a / "packs" / "new" / "deeper",                 # would be created inside
        pack,                                           # overwrite a pack
        a / "catalog.db",                               # overwrite the catalog
        tmp_path / "lnk" / "packs",                     # through a symlink
        tmp_path / "out" / ".." / a.name / "cache",     # through ..
    ]
    before = packs_snapshot(a)
    for dest in spellings:
        refused(reelfs("restore", a, "main/S/s/top.txt", dest))
        refused(reelfs("restore", a, "main/S/s", dest))
        assert packs_snapshot(a) == before, dest
    reelfs.check_deep(a)


def test_restore_refuses_dest_inside_the_archive_through_a_bind_mount(reelfs, s_archive, tmp_path):
    a = s_archive
    bm = tmp_path / "bm"
    bm.mkdir()
    subprocess.run(["mount", "--bind", str(a), str(bm)], check=True)
    try:
        before = packs_snapshot(a)
        pack = sorted((bm / "packs").rglob("*.pack"))[0]
        for dest in [bm / "packs", pack, bm / "catalog.db"]:
            refused(reelfs("restore", a, "main/S/s/top.txt", dest))
        refused(reelfs("extract", a, "main/S/s/top.txt", "--in", "01:00:00:00",
                       "--out-tc", "01:00:00:01", "--out", bm / "pulls"))
        assert packs_snapshot(a) == before
    finally:
        subprocess.run(["umount", str(bm)], check=True)
    reelfs.check_deep(a)


def test_extract_and_slice_refuse_output_inside_the_archive(reelfs, clip_archive, tmp_path):
    a = clip_archive
    os.symlink(a / "cache", tmp_path / "lnk")
    before = packs_snapshot(a)
    for out in [a / "pulls", tmp_path / "lnk", a / "packs"]:
        refused(extract_one(reelfs, a, out, rc=1))
    for o in [a / "slice.mov", tmp_path / "lnk" / "slice.mov", a / "catalog.db"]:
        refused(reelfs("slice", a, "main/Day01/A001C003_prores_2398.mov@01:00:00:10-01:00:00:20", "-o", o))
    assert packs_snapshot(a) == before
    # The same commands still write outside the archive.
    extract_one(reelfs, a, tmp_path / "pulls")
    reelfs.ok("slice", a, "main/Day01/A001C003_prores_2398.mov@01:00:00:10-01:00:00:20", "-o", tmp_path / "s.mov")
    assert (tmp_path / "s.mov").stat().st_size > 0


# ---- temporary names --------------------------------------------------------------------

def test_names_that_were_temporaries_restore_beside_their_files(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "src" / "c"
    write_random(src / "x", 50_000, 0o644, T)
    write_random(src / ".x.reelfs-restore", 60_000, 0o600, T + 5)
    write_random(src / "y.mov", 1000)
    write_random(src / ".y.mov.part", 2000)
    reelfs.ok("ingest", tmp_archive, src)
    d = tmp_path / "d"
    d.mkdir()
    reelfs.ok("restore", tmp_archive, "main/c", d)
    assert sorted(os.listdir(d / "c")) == sorted(os.listdir(src))
    for n in os.listdir(src):
        assert b3(d / "c" / n) == b3(src / n), n
    assert stat.S_IMODE(os.lstat(d / "c" / ".x.reelfs-restore").st_mode) == 0o600
    assert leftovers(d) == []


def test_a_255_byte_name_restores(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "src" / "long"
    name = "A001C003_" + "n" * (255 - len("A001C003_") - 4) + ".mov"
    assert len(name.encode()) == 255
    write_random(src / name, 40_000, 0o644, T)
    reelfs.ok("ingest", tmp_archive, src)
    d = tmp_path / "d"
    d.mkdir()
    reelfs.ok("restore", tmp_archive, "main/long", d)
    assert b3(d / "long" / name) == b3(src / name)
    reelfs.ok("restore", tmp_archive, f"main/long/{name}", d / "single.mov")
    assert b3(d / "single.mov") == b3(src / name)
    assert leftovers(d) == []


# ---- permissions of the archive -------------------------------------------------------------

@pytest.fixture
def open_dir():
    """A folder every local user can enter (pytest's tmp_path is 0700 above us,
    which would hide the archive from other users whatever its own modes)."""
    d = Path(tempfile.mkdtemp(prefix="reelfs-perm-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d)


def modes(archive):
    """(relative path, mode, gid) of the archive root and everything below it."""
    out = [(".", os.lstat(archive))]
    for root, dirs, files in os.walk(archive):
        for n in dirs + files:
            p = os.path.join(root, n)
            out.append((os.path.relpath(p, archive), os.lstat(p)))
    return out


def ingest_some(reelfs, archive, where):
    src = where / "card"
    write_random(src / "A001C001.mov", 200_000, 0o644)
    write_random(src / "secret.txt", 1000, 0o600)
    reelfs.ok("ingest", archive, src)


def test_a_new_archive_is_private_whatever_the_umask(reelfs, open_dir):
    a = open_dir / "archive"
    loose = lambda: os.umask(0)  # noqa: E731
    reelfs.ok("init", a, preexec_fn=loose)
    ingest_some(reelfs, a, open_dir)
    reelfs.ok("branch", a, "grade", preexec_fn=loose)  # a later pack, written with umask 0
    names = set()
    for rel, st in modes(a):
        names.add(rel)
        want = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
        assert stat.S_IMODE(st.st_mode) == want, f"{rel}: {oct(stat.S_IMODE(st.st_mode))}"
    assert {"packs", "cache", "catalog.db", "reelfs.toml", "lock"} <= names
    assert len([n for n in names if n.endswith(".pack")]) >= 2


def test_another_local_user_cannot_read_packs_or_catalog(reelfs, open_dir):
    a = open_dir / "archive"
    reelfs.ok("init", a)
    ingest_some(reelfs, a, open_dir)
    pack = max((a / "packs").rglob("*.pack"), key=lambda p: p.stat().st_size)
    as_nobody = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
    for target in [pack, a / "catalog.db", a / "reelfs.toml"]:
        proc = subprocess.run(as_nobody + ["cat", str(target)], capture_output=True)
        assert proc.returncode != 0 and b"Permission denied" in proc.stderr, target
        assert proc.stdout == b""
    proc = subprocess.run(as_nobody + [str(reelfs.binary), "ls", str(a), "main"], capture_output=True, text=True)
    assert proc.returncode != 0


@pytest.fixture
def group():
    name = "reelfs-t-" + uuid.uuid4().hex[:8]
    subprocess.run(["groupadd", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["groupdel", name], check=True)


def test_init_group_shares_the_archive_with_that_group_only(reelfs, open_dir, group):
    import grp
    gid = grp.getgrnam(group).gr_gid
    a = open_dir / "archive"
    reelfs.ok("init", a, "--group", group, preexec_fn=lambda: os.umask(0o077))
    ingest_some(reelfs, a, open_dir)
    for rel, st in modes(a):
        want = 0o2750 if stat.S_ISDIR(st.st_mode) else 0o640
        assert stat.S_IMODE(st.st_mode) == want, f"{rel}: {oct(stat.S_IMODE(st.st_mode))}"
        assert st.st_gid == gid, rel
    pack = max((a / "packs").rglob("*.pack"), key=lambda p: p.stat().st_size)
    member = ["setpriv", "--reuid", "65534", "--regid", "65534", f"--groups={gid}"]
    outsider = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
    assert subprocess.run(member + ["cat", str(pack)], capture_output=True).stdout == pack.read_bytes()
    proc = subprocess.run(outsider + ["cat", str(pack)], capture_output=True)
    assert proc.returncode != 0 and proc.stdout == b""


def test_init_group_refuses_an_unknown_group_and_creates_nothing(reelfs, tmp_path):
    a = tmp_path / "archive"
    proc = reelfs("init", a, "--group", "no-such-group-" + uuid.uuid4().hex[:6])
    assert proc.returncode != 0
    assert "no group named" in proc.stderr and "groupadd" in proc.stderr
    assert not a.exists()


def test_ctrl_c_removes_the_temporary_folder(reelfs, tmp_archive, tmp_path):
    """Interrupted mid-file, the restore leaves neither its temporary folder nor a
    partial file. The process is stopped (SIGSTOP) as soon as its temporary
    folder appears, so the SIGINT lands while it is certainly still running."""
    import signal
    import time
    src = tmp_path / "src" / "big"
    write_random(src / "A001C001.mov", 48 << 20)
    reelfs.ok("ingest", tmp_archive, src)
    d = tmp_path / "d"
    d.mkdir()
    proc = reelfs.popen("restore", tmp_archive, "main/big", d)
    deadline = time.monotonic() + 120
    while proc.poll() is None and not any("reelfs-restore" in n for n in os.listdir(d)):
        if time.monotonic() > deadline:
            break
    os.kill(proc.pid, signal.SIGSTOP)
    still_running = proc.poll() is None
    os.kill(proc.pid, signal.SIGINT)
    os.kill(proc.pid, signal.SIGCONT)
    out, err = proc.communicate(timeout=120)
    assert still_running, "the restore finished before it could be interrupted"
    assert proc.returncode != 0 and "interrupted" in err, err
    assert [n for n in os.listdir(d) if "reelfs" in n] == []
    assert not (d / "big" / "A001C001.mov").exists()
