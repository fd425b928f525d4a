"""Bad input and faults (issue 3, "a clear error, nothing lost"): each gives a
clear error, and the archive stays valid: `reelfs check --deep` exits 0 after it.
"""

import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from helpers import assert_same_tree, b3, write_random


def snapshot(reelfs, archive):
    """What a user sees of an archive: branches, history, files and their hashes."""
    state = {"branches": reelfs.ok("branch", archive).stdout}
    for name in reelfs.ok("branch", archive).stdout.split("\n"):
        if not name:
            continue
        branch = name.split("\t")[0]
        state[f"log {branch}"] = reelfs.json("log", archive, branch)
        state[f"tree {branch}"] = walk(reelfs, archive, branch)
    return state


def walk(reelfs, archive, path):
    out = {}
    for e in reelfs.json("ls", archive, path):
        p = f"{path}/{e['name']}"
        out[p] = (e["kind"], e["size"], e["hash"], e["mode"], e["mtime_ns"])
        if e["kind"] == "dir":
            out.update(walk(reelfs, archive, p))
    return out


def tree_size(path):
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


# ---- sources that are missing or unreadable -------------------------------------

def test_missing_source_is_a_clear_error_and_nothing_is_committed(reelfs, tmp_archive, tmp_path):
    good = write_random(tmp_path / "card" / "A001C001.mov", 100_000).parent
    proc = reelfs("ingest", tmp_archive, good, tmp_path / "no_such_card")
    assert proc.returncode != 0
    assert "no_such_card" in proc.stderr and "No such file or directory" in proc.stderr
    assert proc.stderr.count("No such file or directory") == 1, proc.stderr  # said once
    assert reelfs.ok("ls", tmp_archive, "main").stdout == ""
    assert reelfs.json("log", tmp_archive) == []
    reelfs.check_deep(tmp_archive)


def test_source_that_fails_to_read_fails_alone(reelfs, tmp_archive, tmp_path):
    """/proc/self/mem is a regular file that answers every read with EIO, even
    for root: the other sources of the ingest are still committed."""
    card = tmp_path / "card"
    write_random(card / "A001C001.mov", 300_000)
    write_random(card / "A001C002.mov", 300_000)
    proc = reelfs("ingest", tmp_archive, card, "/proc/self/mem")
    assert proc.returncode == 2, proc.stderr  # 2: committed, but some files failed
    assert "/proc/self/mem" in proc.stderr and "Input/output error" in proc.stderr
    assert reelfs.ok("ls", tmp_archive, "main").stdout.split() == ["card/"]
    restored = tmp_path / "out"
    reelfs.ok("restore", tmp_archive, "main/card", restored)
    assert_same_tree(card, restored)
    reelfs.check_deep(tmp_archive)


@pytest.fixture
def as_nobody():
    """Run reelfs as an unprivileged user, so `chmod 000` means something even
    when the suite runs as root (CI). Returns (prefix argv, a scratch folder the
    user can write)."""
    scratch = Path(tempfile.mkdtemp(prefix="reelfs-perm-"))
    os.chmod(scratch, 0o755)
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.fail("running as root and setpriv (util-linux) is missing: run scripts/install-deps")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        os.chown(scratch, 65534, 65534)
    else:
        prefix = []
    try:
        yield prefix, scratch
    finally:
        for root, dirs, _ in os.walk(scratch):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
        shutil.rmtree(scratch, ignore_errors=True)


def test_unreadable_file_and_folder_fail_alone(reelfs, as_nobody):
    prefix, scratch = as_nobody

    def run(*args, text=True):
        return subprocess.run(prefix + reelfs.argv(args), capture_output=True, text=text,
                              stdin=subprocess.DEVNULL, timeout=300)

    card = scratch / "card"
    write_random(card / "A001C001.mov", 200_000)
    write_random(card / "locked.mov", 200_000)
    write_random(card / "SUB" / "hidden.mov", 200_000)
    write_random(card / "SUB2" / "fine.mov", 200_000)
    for p in card.rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    os.chmod(card, 0o755)
    os.chmod(card / "locked.mov", 0o000)
    os.chmod(card / "SUB", 0o000)
    archive = scratch / "archive"
    assert run("init", archive).returncode == 0
    proc = run("ingest", archive, card)
    assert proc.returncode == 2, proc.stderr
    assert "locked.mov" in proc.stderr and "Permission denied" in proc.stderr
    assert "SUB" in proc.stderr
    ls = run("ls", archive, "main/card").stdout.split()
    assert "A001C001.mov" in ls and "SUB2/" in ls
    assert "locked.mov" not in ls
    out = run("cat", archive, "main/card/A001C001.mov", text=False)
    assert out.returncode == 0
    assert out.stdout == (card / "A001C001.mov").read_bytes()
    assert run("check", archive, "--deep").returncode == 0


# ---- not an archive, newer format -------------------------------------------

def test_not_an_archive(reelfs, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("hello")
    src = write_random(tmp_path / "clip.mov", 1000)
    for args in [("ls", plain), ("ls", plain, "main"), ("ingest", plain, src), ("check", plain, "--deep"),
                 ("log", plain), ("stats", plain), ("branch", plain, "x", "--from", "main"),
                 ("ls", tmp_path / "does-not-exist")]:
        proc = reelfs(*args)
        assert proc.returncode != 0, args
        assert "not a reelfs archive" in proc.stderr, (args, proc.stderr)
    # Nothing was created in the folder.
    assert sorted(p.name for p in plain.iterdir()) == ["notes.txt"]
    assert not (tmp_path / "does-not-exist").exists()


def test_newer_format_version_is_refused_and_untouched(reelfs, tmp_archive, tmp_path):
    src = write_random(tmp_path / "card" / "A001C001.mov", 100_000).parent
    reelfs.ok("ingest", tmp_archive, src)
    toml = tmp_archive / "reelfs.toml"
    original = toml.read_text()
    toml.write_text(original.replace("format_version = 2", "format_version = 99"))
    assert "format_version = 99" in toml.read_text()
    packs_before = sorted(p.name for p in (tmp_archive / "packs").rglob("*"))
    for args in [("ls", tmp_archive, "main"), ("ingest", tmp_archive, src), ("check", tmp_archive),
                 ("check", tmp_archive, "--rebuild-catalog"), ("restore", tmp_archive, "main/card", tmp_path / "o")]:
        proc = reelfs(*args)
        assert proc.returncode != 0, args
        assert "newer" in proc.stderr and "99" in proc.stderr and "upgrade reelfs" in proc.stderr, proc.stderr
    assert sorted(p.name for p in (tmp_archive / "packs").rglob("*")) == packs_before
    assert not (tmp_path / "o").exists()
    toml.write_text(original)
    reelfs.check_deep(tmp_archive)
    assert reelfs.ok("ls", tmp_archive, "main/card").stdout.split() == ["A001C001.mov"]


# ---- damaged media ---------------------------------------------------------

def test_truncated_media_is_stored_and_others_continue(reelfs, tmp_archive, media_dir, tmp_path):
    card = tmp_path / "card"
    card.mkdir()
    for name in ["C003C001_h264_25p.mov", "G007_truncated.mov", "K011_notmedia.bin"]:
        shutil.copy2(media_dir / name, card / name)
    proc = reelfs("ingest", tmp_archive, card)
    assert proc.returncode == 0, proc.stderr
    assert "G007_truncated.mov" in proc.stderr and "damaged" in proc.stderr
    assert reelfs.ok("ls", tmp_archive, "main/card").stdout.split() == sorted(p.name for p in card.iterdir())
    g = reelfs.json("info", tmp_archive, "main/card/G007_truncated.mov")
    assert g["damaged"] is True and g["probe_error"]
    assert g["content_hash"] == b3(card / "G007_truncated.mov")
    c = reelfs.json("info", tmp_archive, "main/card/C003C001_h264_25p.mov")
    assert c["damaged"] is False and c["media"]["timecode"] == "10:00:00:00"
    out = tmp_path / "out"
    reelfs.ok("restore", tmp_archive, "main/card", out)
    assert_same_tree(card, out)
    reelfs.check_deep(tmp_archive)


# ---- a file that changes while it is being read ----------------------------------

@pytest.mark.parametrize("small_packs", [False, True], ids=["default-packs", "1MiB-packs"])
def test_file_growing_during_ingest_fails_alone(reelfs, tmp_archive, tmp_path, small_packs):
    if small_packs:
        # Packs are sealed (and rotated) while the growing file is being read;
        # the files before it must survive that.
        toml = tmp_archive / "reelfs.toml"
        text = toml.read_text()
        assert "target_size = 536870912" in text
        toml.write_text(text.replace("target_size = 536870912", "target_size = 1048576"))
    card = tmp_path / "card"
    write_random(card / "a_before.mov", 100_000)
    growing = write_random(card / "b_growing.mov", 100 << 20)
    write_random(card / "c_after.mov", 3 << 20)
    stop = threading.Event()

    def append():
        with open(growing, "ab") as f:
            while not stop.is_set():
                f.write(os.urandom(64 << 10))
                f.flush()
                time.sleep(0.003)

    t = threading.Thread(target=append)
    t.start()
    try:
        proc = reelfs("ingest", tmp_archive, card, "-m", "card")
    finally:
        stop.set()
        t.join()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "b_growing.mov" in proc.stderr and "changed while it was being ingested" in proc.stderr
    assert reelfs.ok("ls", tmp_archive, "main/card").stdout.split() == ["a_before.mov", "c_after.mov"]
    reelfs.check_deep(tmp_archive)
    # Nothing of the growing file was kept: what is stored is about the two others.
    stats = reelfs.json("stats", tmp_archive)
    assert stats["stored_bytes"] < (3 << 20) + 200_000
    # A later writer (it tidies up after interrupted writes) must not lose them.
    growing.unlink()
    write_random(tmp_path / "more" / "d.mov", 50_000)
    reelfs.ok("ingest", tmp_archive, tmp_path / "more")
    reelfs.check_deep(tmp_archive)
    out = tmp_path / "out"
    reelfs.ok("restore", tmp_archive, "main/card", out)
    assert sorted(p.name for p in out.iterdir()) == ["a_before.mov", "c_after.mov"]
    for name in ["a_before.mov", "c_after.mov"]:
        assert b3(out / name) == b3(card / name)
    # Once stable, the file goes in.
    write_random(growing, 2 << 20)
    reelfs.ok("ingest", tmp_archive, card)
    assert "b_growing.mov" in reelfs.ok("ls", tmp_archive, "main/card").stdout.split()
    assert reelfs.json("info", tmp_archive, "main/card/b_growing.mov")["content_hash"] == b3(growing)
    reelfs.check_deep(tmp_archive)


# ---- a second writer ---------------------------------------------------------

def test_second_writer_is_told_who_holds_the_lock(reelfs, tmp_archive, tmp_path):
    src = write_random(tmp_path / "card" / "A001C001.mov", 100_000).parent
    reelfs.ok("ingest", tmp_archive, src)
    # Hold the writer lock the way a running reelfs does (flock + PID).
    with open(tmp_archive / "lock", "r+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        for args in [("ingest", tmp_archive, src), ("branch", tmp_archive, "b2", "--from", "main"),
                     ("check", tmp_archive, "--rebuild-catalog")]:
            proc = reelfs(*args)
            assert proc.returncode != 0, args
            assert f"locked by PID {os.getpid()}" in proc.stderr, proc.stderr
        # Readers are not blocked by a writer.
        assert reelfs.ok("ls", tmp_archive, "main/card").stdout.split() == ["A001C001.mov"]
        reelfs.check_deep(tmp_archive)
    reelfs.ok("branch", tmp_archive, "b2", "--from", "main")
    reelfs.check_deep(tmp_archive)


# ---- disk full -------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 40 MB tmpfs (needs root)."""
    if os.geteuid() != 0:
        pytest.fail("mounting a tmpfs needs root (the suite and CI run as root)")
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_mid_ingest_leaves_archive_as_it_was(reelfs, small_disk, tmp_path):
    archive = small_disk / "archive"
    reelfs.ok("init", archive)
    first = write_random(tmp_path / "day1" / "A001C001.mov", 2 << 20).parent
    reelfs.ok("ingest", archive, first, "-m", "day 1")
    before = snapshot(reelfs, archive)
    big = tmp_path / "day2"
    for i in range(4):
        write_random(big / f"B00{i}C001.mov", 20 << 20)
    proc = reelfs("ingest", archive, big, "-m", "day 2")
    assert proc.returncode != 0
    assert "full" in proc.stderr.lower(), proc.stderr
    assert "No space left on device" in proc.stderr
    assert snapshot(reelfs, archive) == before
    reelfs.check_deep(archive)
    # The space the failed ingest used was given back, and a smaller ingest works.
    assert shutil.disk_usage(small_disk).free > 30 << 20
    small = write_random(tmp_path / "day3" / "C001C001.mov", 5 << 20).parent
    reelfs.ok("ingest", archive, small, "-m", "day 3")
    out = tmp_path / "out"
    reelfs.ok("restore", archive, "main/day3", out)
    assert_same_tree(small, out)
    reelfs.check_deep(archive)
    assert [c["message"] for c in reelfs.json("log", archive)] == ["day 3", "day 1"]


# ---- kill -9 ---------------------------------------------------------------

def test_kill_9_mid_ingest_then_rerun_completes(reelfs, tmp_archive, tmp_path):
    card = tmp_path / "card"
    for i in range(6):
        write_random(card / f"A00{i}C001.mov", 40 << 20)
    first = write_random(tmp_path / "earlier" / "X.mov", 1 << 20).parent
    reelfs.ok("ingest", tmp_archive, first, "-m", "earlier")
    before = snapshot(reelfs, tmp_archive)

    proc = reelfs.popen("ingest", tmp_archive, card, "-m", "card")
    try:
        # Wait until it holds the lock and has written some pack bytes, then kill it.
        deadline = time.time() + 120
        mid_write = False
        while time.time() < deadline and proc.poll() is None:
            if (tmp_archive / "lock").read_text().strip() == str(proc.pid) \
                    and tree_size(tmp_archive / "packs") > (1 << 20) + (30 << 20):
                mid_write = True
                break
            time.sleep(0.01)
        assert proc.poll() is None, "ingest finished before it could be killed; use more data"
        # Killing before anything was written would prove nothing about a kill mid-write.
        assert mid_write, "ingest wrote less than 30 MiB of packs in 120 s: not killed mid-write"
        # Meanwhile a second writer is refused, naming the first.
        second = reelfs("ingest", tmp_archive, first)
        assert second.returncode != 0 and f"locked by PID {proc.pid}" in second.stderr
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    assert snapshot(reelfs, tmp_archive) == before
    check = reelfs.check_deep(tmp_archive)
    rerun = reelfs.json("ingest", tmp_archive, card, "-m", "card")
    assert rerun["commit"] and not rerun["failed"]
    assert rerun["files_stored"] == 6
    out = tmp_path / "out"
    reelfs.ok("restore", tmp_archive, "main/card", out)
    assert_same_tree(card, out)
    check = reelfs.check_deep(tmp_archive)
    assert "interrupted write" not in check.stdout  # the leftover pack was removed
    # No more than the data itself is kept (the killed ingest's bytes are gone).
    assert tree_size(tmp_archive / "packs") < tree_size(card) + (1 << 20) + (4 << 20)


# ---- a flipped byte in a pack -----------------------------------------------

def flip_byte_of(archive, source_file, offset):
    """Find the pack bytes holding `source_file` at `offset` (raw chunks of random
    data are stored as-is) and flip one bit there."""
    with open(source_file, "rb") as f:
        f.seek(offset)
        needle = f.read(64)
    for pack in sorted((archive / "packs").rglob("*.pack")):
        data = pack.read_bytes()
        at = data.find(needle)
        if at >= 0:
            with open(pack, "r+b") as f:
                f.seek(at + 10)
                f.write(bytes([data[at + 10] ^ 0x01]))
            return pack
    raise AssertionError(f"{source_file} bytes not found in any pack")


def test_flipped_byte_is_named_and_never_restored_silently(reelfs, tmp_archive, tmp_path):
    card = tmp_path / "card"
    write_random(card / "A001C001.mov", 2 << 20)
    victim = write_random(card / "A001C002.mov", 3 << 20)
    write_random(card / "A001C003.mov", 2 << 20)
    reelfs.ok("ingest", tmp_archive, card, "--to", "Day01")
    reelfs.ok("branch", tmp_archive, "grade", "--from", "main")
    reelfs.check_deep(tmp_archive)
    flip_byte_of(tmp_archive, victim, 1_500_000)

    proc = reelfs("check", tmp_archive, "--deep")
    assert proc.returncode != 0
    assert "damaged: main/Day01/card/A001C002.mov" in proc.stdout
    assert "damaged: grade/Day01/card/A001C002.mov" in proc.stdout
    assert "A001C001" not in proc.stdout and "A001C003" not in proc.stdout
    rep = reelfs.json("check", tmp_archive, "--deep", expect_rc=1)
    assert "main/Day01/card/A001C002.mov" in rep["damaged_files"]

    # Restoring it fails loudly and leaves nothing at the destination.
    dest = tmp_path / "restored.mov"
    proc = reelfs("restore", tmp_archive, "main/Day01/card/A001C002.mov", dest)
    assert proc.returncode != 0
    assert "damaged" in proc.stderr.lower()
    assert not dest.exists()
    assert not list(tmp_path.glob(".*reelfs-restore*"))
    # cat fails too, and what it wrote before failing is a true prefix.
    proc = reelfs("cat", tmp_archive, "main/Day01/card/A001C002.mov", text=False)
    assert proc.returncode != 0
    assert len(proc.stdout) < victim.stat().st_size
    assert victim.read_bytes().startswith(proc.stdout)
    # The folder: the other files restore fine, the damaged one is missing.
    out = tmp_path / "out"
    proc = reelfs("restore", tmp_archive, "main/Day01/card", out)
    assert proc.returncode != 0 and "A001C002.mov" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["A001C001.mov", "A001C003.mov"]
    for name in ["A001C001.mov", "A001C003.mov"]:
        assert b3(out / name) == b3(card / name)

    # Re-ingesting the good original repairs the archive.
    os.utime(victim)  # a new mtime: the skip cache would otherwise trust it
    reelfs.ok("ingest", tmp_archive, card, "--to", "Day01")
    reelfs.ok("restore", tmp_archive, "main/Day01/card/A001C002.mov", dest)
    assert b3(dest) == b3(victim)
    reelfs.check_deep(tmp_archive)
    # The repair survives a catalog rebuild (which finds both copies in the packs).
    reelfs.ok("check", tmp_archive, "--rebuild-catalog")
    reelfs.check_deep(tmp_archive)
    dest.unlink()
    reelfs.ok("restore", tmp_archive, "grade/Day01/card/A001C002.mov", dest)
    assert b3(dest) == b3(victim)


# ---- rebuilding the catalog from the packs --------------------------------------

def test_rebuild_catalog_gives_back_the_same_archive(reelfs, tmp_archive, media_dir, tmp_path):
    card = tmp_path / "card"
    write_random(card / "A001C001.mov", 3 << 20)
    (card / "notes.txt").write_text("slate 12 take 3\n" * 1000)
    reelfs.ok("ingest", tmp_archive, card, "--to", "Day01", "-m", "day 1")
    reelfs.ok("ingest", tmp_archive, media_dir, "--to", "Day02", "-m", "day 2")
    reelfs.ok("branch", tmp_archive, "grade", "--from", "main")
    write_random(tmp_path / "vfx" / "plate.exr", 200_000)
    reelfs.ok("ingest", tmp_archive, tmp_path / "vfx", "--branch", "grade", "-m", "vfx")
    reelfs.ok("branch", tmp_archive, "scratch", "--from", "main")
    reelfs.ok("branch", tmp_archive, "scratch", "-d")

    def view():
        v = snapshot(reelfs, tmp_archive)
        for p in ["main/Day02/test-media/A001C003_prores_2398.mov", "main/Day02/test-media/G007_truncated.mov",
                  "main/Day02/test-media/D004_bwf.wav", "grade/vfx/plate.exr", "main/Day01/card/notes.txt"]:
            v[p] = reelfs.json("info", tmp_archive, p)
        s = reelfs.json("stats", tmp_archive)
        s.pop("catalog_bytes")
        v["stats"] = s
        return v

    before = view()
    assert "scratch" not in before["branches"]
    for suffix in ["", "-wal", "-shm"]:
        p = tmp_archive / f"catalog.db{suffix}"
        if p.exists():
            p.unlink()
    # Without its catalog the archive says what to do.
    proc = reelfs("ls", tmp_archive, "main")
    assert proc.returncode != 0 and "rebuild-catalog" in proc.stderr
    proc = reelfs.ok("check", tmp_archive, "--rebuild-catalog")
    assert "rebuilt catalog" in proc.stdout
    assert view() == before
    reelfs.check_deep(tmp_archive)
    # A rebuild over an existing catalog keeps the old one and changes nothing.
    proc = reelfs.ok("check", tmp_archive, "--rebuild-catalog")
    assert "old catalog kept" in proc.stdout
    assert view() == before
    # After a rebuild the skip cache is gone, but re-ingest stores nothing new.
    rep = reelfs.json("ingest", tmp_archive, card, "--to", "Day01")
    assert rep["commit"] is None and rep["bytes_new_stored"] == 0
    out = tmp_path / "out"
    reelfs.ok("restore", tmp_archive, "main/Day02/test-media", out)
    assert_same_tree(media_dir, out)
