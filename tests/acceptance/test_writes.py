"""Copy-on-write writes through the mount (issue 6): what an editor or a script
does to files in a branch folder, checked against a plain file doing the same."""

import errno
import os
import random
import shutil
import signal
import subprocess

import pytest

from helpers import b3, heads_refreshed, wait_until, write_random


@pytest.fixture
def rw(tmp_path, reelfs, mount):
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    src = tmp_path / "card"
    write_random(src / "A001C001.mov", 3 << 20)
    write_random(src / "sub" / "notes.bin", 100_000)
    reelfs.ok("ingest", archive, src, "-m", "card")
    yield mount(archive, mp=tmp_path / "mnt"), archive, src


def test_create_write_read_commit_and_other_branch_does_not_see_it(rw, reelfs, tmp_path):
    m, archive, src = rw
    reelfs.ok("branch", archive, "grade", "--from", "main")
    card = m.mp / "main" / "card"
    (card / "new.txt").write_bytes(b"hello reelfs\n")
    assert (card / "new.txt").read_bytes() == b"hello reelfs\n"
    (card / "dir" / "deeper").mkdir(parents=True)
    shutil.copy(src / "A001C001.mov", card / "dir" / "deeper" / "copy.mov")
    assert b3(card / "dir" / "deeper" / "copy.mov") == b3(src / "A001C001.mov")
    # Invisible in the other branch, before and after the commit.
    heads_refreshed(reelfs, archive, m.mp)
    assert not (m.mp / "grade" / "card" / "new.txt").exists()
    status = reelfs.json("status", archive, "main")
    changed = {r["path"]: r["change"] for r in status}
    assert changed["card/new.txt"] == "written"
    assert changed["card/dir/deeper/copy.mov"] == "written"
    reelfs.ok("commit", archive, "main", "-m", "edits")
    assert reelfs.json("status", archive, "main") == []
    assert reelfs.ok("cat", archive, "main/card/new.txt").stdout == "hello reelfs\n"
    assert not (m.mp / "grade" / "card" / "new.txt").exists()
    log = reelfs.json("log", archive, "main")
    assert log[0]["message"] == "edits"
    out = tmp_path / "restored.mov"
    reelfs.ok("restore", archive, "main/card/dir/deeper/copy.mov", out)
    assert b3(out) == b3(src / "A001C001.mov")
    reelfs.check_deep(archive)


def test_small_overwrite_in_a_big_file_stores_about_one_chunk(rw, reelfs):
    m, archive, src = rw
    before = reelfs.json("stats", archive)["stored_bytes"]
    path = m.mp / "main" / "card" / "A001C001.mov"
    with open(path, "r+b") as f:
        f.seek(1_500_000)
        f.write(b"\xAB" * 4096)
        f.flush()
        os.fsync(f.fileno())
    after = reelfs.json("stats", archive)["stored_bytes"]
    assert 0 < after - before <= 64 * 1024, after - before
    expect = bytearray((src / "A001C001.mov").read_bytes())
    expect[1_500_000:1_500_000 + 4096] = b"\xAB" * 4096
    assert path.read_bytes() == bytes(expect)
    reelfs.ok("commit", archive, "main")
    assert b3(path) == reelfs.json("info", archive, "main/card/A001C001.mov")["content_hash"]
    reelfs.check_deep(archive)


def test_fsx_random_operations_match_a_plain_file(rw, reelfs, tmp_path):
    """fsx-style: random writes, truncates, reads and reopens against a reference."""
    m, archive, _ = rw
    rnd = random.Random(1234)
    target = m.mp / "main" / "fsx.bin"
    ref = tmp_path / "fsx.ref"
    target.write_bytes(b"")
    ref.write_bytes(b"")
    for step in range(300):
        op = rnd.choice(["write", "write", "write", "truncate", "read", "reopen"])
        size = ref.stat().st_size
        if op == "write":
            off = rnd.randrange(0, size + 200_000)
            data = rnd.randbytes(rnd.randrange(1, 150_000))
            for p in (target, ref):
                with open(p, "r+b") as f:
                    f.seek(off)
                    f.write(data)
        elif op == "truncate":
            n = rnd.randrange(0, size + 100_000)
            os.truncate(target, n)
            os.truncate(ref, n)
        elif op == "read":
            off = rnd.randrange(0, size + 10)
            n = rnd.randrange(1, 300_000)
            with open(target, "rb") as f:
                f.seek(off)
                got = f.read(n)
            with open(ref, "rb") as f:
                f.seek(off)
                want = f.read(n)
            assert got == want, f"step {step}: read {off}+{n} differs"
        assert target.stat().st_size == ref.stat().st_size, f"step {step} ({op})"
    assert target.read_bytes() == ref.read_bytes()
    reelfs.ok("commit", archive, "main", "-m", "fsx")
    assert reelfs.json("info", archive, "main/fsx.bin")["content_hash"] == b3(ref)
    reelfs.check_deep(archive)


def test_rename_unlink_chmod_utimens_rmdir(rw, reelfs):
    m, archive, _ = rw
    card = m.mp / "main" / "card"
    os.rename(card / "sub", card / "moved")
    assert (card / "moved" / "notes.bin").is_file()
    assert not (card / "sub").exists()
    os.chmod(card / "moved" / "notes.bin", 0o600)
    os.utime(card / "moved" / "notes.bin", ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    st = (card / "moved" / "notes.bin").stat()
    assert st.st_mode & 0o777 == 0o600 and st.st_mtime_ns == 1_600_000_000_000_000_000
    with pytest.raises(OSError) as e:
        os.rmdir(card / "moved")
    assert e.value.errno == errno.ENOTEMPTY
    os.unlink(card / "moved" / "notes.bin")
    os.rmdir(card / "moved")
    assert sorted(os.listdir(card)) == ["A001C001.mov"]
    reelfs.ok("commit", archive, "main")
    assert [e["name"] for e in reelfs.json("ls", archive, "main/card")] == ["A001C001.mov"]


def test_unlink_and_rename_over_an_open_file_keep_reads_working(rw):
    m, _, src = rw
    card = m.mp / "main" / "card"
    want = (src / "A001C001.mov").read_bytes()
    with open(card / "A001C001.mov", "rb") as f:
        os.unlink(card / "A001C001.mov")
        assert not (card / "A001C001.mov").exists()
        assert f.read() == want
    (card / "a.txt").write_bytes(b"AAA")
    (card / "b.txt").write_bytes(b"BBB")
    with open(card / "b.txt", "rb") as f:
        os.rename(card / "a.txt", card / "b.txt")
        assert f.read() == b"BBB"
    assert (card / "b.txt").read_bytes() == b"AAA"


def test_two_writers_on_one_file_see_each_other(rw):
    m, _, _ = rw
    p = m.mp / "main" / "shared.bin"
    p.write_bytes(b"\0" * 1000)
    a = open(p, "r+b")
    b = open(p, "r+b")
    try:
        a.seek(0)
        a.write(b"A" * 10)
        a.flush()
        b.seek(500)
        b.write(b"B" * 10)
        b.flush()
        with open(p, "rb") as r:
            data = r.read()
        assert data[:10] == b"A" * 10 and data[500:510] == b"B" * 10
    finally:
        a.close()
        b.close()


def test_read_only_mount_old_versions_and_slices_refuse_writes(tmp_path, reelfs, media_dir, mount):
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    reelfs.ok("ingest", archive, media_dir / "A001C003_prores_2398.mov")
    m = mount(archive, "--read-only", mp=tmp_path / "mnt")
    try:
        for op in (lambda: (m.mp / "main" / "x").write_bytes(b"x"),
                   lambda: os.mkdir(m.mp / "main" / "d"),
                   lambda: os.unlink(m.mp / "main" / "A001C003_prores_2398.mov")):
            with pytest.raises(OSError) as e:
                op()
            assert e.value.errno == errno.EROFS
    finally:
        m.umount()
    m = mount(archive, mp=tmp_path / "mnt2")
    try:
        s = m.mp / "main" / "A001C003_prores_2398.mov@01:00:00:00-01:00:00:10"
        assert s.stat().st_size > 0
        with pytest.raises(OSError) as e:
            open(s, "r+b")
        assert e.value.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
    finally:
        m.umount()


def test_mkdir_and_rmdir_at_the_root_create_and_delete_branches(rw, reelfs):
    m, archive, _ = rw
    os.mkdir(m.mp / "grade-v3")
    assert "grade-v3" in [l.split()[0] for l in reelfs.ok("branch", archive).stdout.splitlines()]
    assert (m.mp / "grade-v3" / "card" / "A001C001.mov").is_file()
    for bad in ("bad@name", ".hidden"):
        with pytest.raises(OSError):
            os.mkdir(m.mp / bad)
    os.rmdir(m.mp / "grade-v3")
    # The root lists branches as of the mount's last look at the catalog (once a second).
    assert wait_until(lambda: "grade-v3" not in os.listdir(m.mp), 10)


def test_kill_9_during_writes_keeps_every_fsynced_byte(tmp_path, reelfs, mount):
    """Only fsync makes these bytes durable: every file is still open at the kill
    (close would flush too) and has more bytes written after its fsync, never synced."""
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    m = mount(archive, mp=tmp_path / "mnt")
    synced = {}
    open_files = []
    try:
        for i in range(5):
            data = os.urandom(300_000)
            p = m.mp / "main" / f"f{i}.bin"
            f = open(p, "wb")
            open_files.append(f)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            more = os.urandom(200_000)     # after the fsync: may be lost, must not harm
            f.write(more)
            f.flush()
            synced[p.name] = (data, more)
        # Unsynced writes in flight when the process dies.
        f = open(m.mp / "main" / "inflight.bin", "wb")
        open_files.append(f)
        f.write(os.urandom(1 << 20))
        m.kill(signal.SIGKILL)
    finally:
        for f in open_files:
            try:
                f.close()
            except OSError:
                pass
        subprocess.run(["fusermount3", "-u", "-z", str(m.mp)], capture_output=True)
    reelfs.check_deep(archive)
    m2 = mount(archive, mp=tmp_path / "mnt2")
    try:
        for name, (data, more) in synced.items():
            got = (m2.mp / "main" / name).read_bytes()
            assert len(got) >= len(data), f"{name}: {len(got)} bytes after the kill, {len(data)} were fsynced"
            assert got[:len(data)] == data, f"{name}: fsynced bytes differ after the kill"
            assert (data + more).startswith(got), f"{name}: bytes after the synced ones are not what was written"
    finally:
        m2.umount()
    reelfs.ok("commit", archive, "main")
    reelfs.check_deep(archive)


def test_disk_full_mid_write_gives_enospc_and_stays_consistent(tmp_path, reelfs, mount):
    small = tmp_path / "small"
    small.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(small)], capture_output=True, text=True)
    assert r.returncode == 0, f"cannot mount a tmpfs (tests run as root): {r.stderr}"
    try:
        archive = small / "archive"
        reelfs.ok("init", archive)
        m = mount(archive, mp=tmp_path / "mnt")
        try:
            (m.mp / "main" / "kept.bin").write_bytes(b"k" * 1000)
            with pytest.raises(OSError) as e:
                with open(m.mp / "main" / "huge.bin", "wb") as f:
                    for _ in range(64):
                        f.write(os.urandom(1 << 20))
                        f.flush()
                        os.fsync(f.fileno())
            assert e.value.errno == errno.ENOSPC, e.value
            assert (m.mp / "main" / "kept.bin").read_bytes() == b"k" * 1000
        finally:
            m.umount()
        reelfs.check_deep(archive)
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)
