"""The mount's write path (issue 16, perf): how many round trips a writer pays.

Without FUSE writeback caching, each write(2) into the mount is one request per MiB
plus, first, a `security.capability` lookup the kernel makes to strip privileges.
On a busy machine every round trip waits twice for a CPU, so the writer's
system-call size is what sets the pace: the mount advertises 16 MiB as the
preferred I/O size (st_blksize) and `cp` sizes its buffer by it."""

import errno
import os
import re
import subprocess

import pytest

from helpers import b3, write_random

MiB = 1 << 20


def write_sizes(strace_log):
    """Byte counts that write(2) calls in an `strace` log returned."""
    sizes = []
    for line in strace_log.read_text().splitlines():
        m = re.search(r"\bwrite\(\d+,.*\)\s+=\s+(\d+)", line)
        if m:
            sizes.append(int(m.group(1)))
    return sizes


def test_cp_into_the_mount_writes_16_mib_per_system_call(reelfs, tmp_archive, tmp_path, mount):
    src = tmp_path / "A001C001.mov"
    write_random(src, 40 * MiB)
    m = mount(tmp_archive)
    dst = m.mp / "main" / "A001C001.mov"
    log = tmp_path / "cp.strace"
    p = subprocess.run(["strace", "-e", "trace=write", "-o", str(log), "cp", str(src), str(dst)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert os.stat(dst).st_blksize == 16 * MiB, "the mount's preferred I/O size"
    sizes = write_sizes(log)
    # 40 MiB in 16 MiB writes: 16 + 16 + 8 (with 1 MiB writes it was 40 calls).
    big = [s for s in sizes if s >= MiB]
    assert max(big) == 16 * MiB and len(big) == 3, f"cp wrote {big}"
    assert b3(dst) == b3(src), "the bytes written through the mount differ"


def test_security_xattrs_are_absent_and_user_xattrs_still_answer(reelfs, tmp_archive, tmp_path, mount):
    # The kernel's per-write `security.capability` lookup is answered without a
    # catalog read: only `user.*` names are ever kept. The answer must stay the
    # same (ENODATA), and user names must still be found.
    src = tmp_path / "card"
    src.mkdir()
    write_random(src / "A001C001.mov", 2 * MiB)
    reelfs.ok("ingest", tmp_archive, src)
    m = mount(tmp_archive)
    f = m.mp / "main" / "card" / "A001C001.mov"
    new = m.mp / "main" / "card" / "new.mov"
    new.write_bytes(b"take two")
    os.setxattr(new, "user.take", b"2")
    for path in (f, new):
        for name in ("security.capability", "security.selinux", "trusted.x", "system.x"):
            with pytest.raises(OSError) as e:
                os.getxattr(path, name)
            assert e.value.errno == errno.ENODATA, f"getxattr({path.name}, {name}): {e.value}"
    assert os.getxattr(new, "user.take") == b"2"
    with pytest.raises(FileNotFoundError):
        os.getxattr(m.mp / "main" / "card" / "missing.mov", "security.capability")
