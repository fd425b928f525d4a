"""The mount's byte paths (issue 16, perfio): how bytes move through the mount.

A sequential reader must reach the daemon as large requests: the kernel's default
read-ahead for a FUSE mount (128 KiB) made a 1 GiB `cat` 8,192 round trips."""

import os
import re
import subprocess
from pathlib import Path

from helpers import b3, wait_until, write_random

MiB = 1 << 20


def bdi_read_ahead_kb(mp: Path) -> int:
    dev = os.stat(mp).st_dev
    return int(Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb").read_text())


def test_mount_raises_kernel_read_ahead_to_megabyte_requests(reelfs, tmp_archive, tmp_path, mount):
    src = tmp_path / "card"
    src.mkdir()
    write_random(src / "A001C001.mov", 6 * MiB)
    reelfs.ok("ingest", tmp_archive, src)
    m = mount(tmp_archive, "--read-only")
    # The daemon raises it once the kernel has finished INIT (a bound, not a timing).
    raised = wait_until(lambda: bdi_read_ahead_kb(m.mp) >= 1024, 10)
    assert raised, f"kernel read-ahead of the mount is {bdi_read_ahead_kb(m.mp)} KiB, want >= 1024 (1 MiB requests)\n{m.log()}"
    # And the bytes are still the archived ones, read sequentially in large requests.
    assert b3(m.mp / "main" / "card" / "A001C001.mov") == b3(src / "A001C001.mov")


def copy_file_range_bytes(strace_log: Path) -> int:
    """Bytes that copy_file_range calls in an `strace -f` log returned. A call
    that another thread's event interrupts (a thread exiting, say) is split by
    strace into `copy_file_range(... <unfinished ...>` and a later
    `<... copy_file_range resumed>) = N`: its bytes are on the second line."""
    total = 0
    for line in strace_log.read_text().splitlines():
        m = re.search(r"(?:copy_file_range\(.*\)|<\.\.\. copy_file_range resumed>.*\))\s+=\s+(\d+)", line)
        if m:
            total += int(m.group(1))
    return total


def test_restore_copies_stored_bytes_inside_the_kernel(reelfs, tmp_archive, tmp_path):
    # write(2) of bytes already in memory ran at a quarter of copy_file_range's
    # speed on this disk: restore moves raw stored data pack -> file in the kernel
    # (after verifying each chunk), as `cp` does, and still hands back exact bytes.
    src = tmp_path / "card"
    src.mkdir()
    write_random(src / "A001C001.mov", 24 * MiB)
    reelfs.ok("ingest", tmp_archive, src)
    out = tmp_path / "out"
    out.mkdir()
    log = tmp_path / "strace.log"
    p = subprocess.run(["strace", "-f", "-e", "trace=copy_file_range", "-o", str(log),
                        str(reelfs.binary), "restore", str(tmp_archive), "main/card", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert b3(out / "card" / "A001C001.mov") == b3(src / "A001C001.mov")
    copied = copy_file_range_bytes(log)
    assert copied >= 24 * MiB, f"restore moved {copied} of {24 * MiB} bytes with copy_file_range"


def test_restore_of_a_damaged_chunk_still_fails_and_leaves_nothing(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "card"
    src.mkdir()
    write_random(src / "A001C001.mov", 6 * MiB)
    reelfs.ok("ingest", tmp_archive, src)
    # Flip one byte in the middle of the pack's data (past its header).
    pack = max((tmp_archive / "packs").rglob("*.pack"), key=lambda q: q.stat().st_size)
    with open(pack, "r+b") as f:
        f.seek(3 * MiB)
        b = f.read(1)
        f.seek(3 * MiB)
        f.write(bytes([b[0] ^ 0xFF]))
    out = tmp_path / "out"
    out.mkdir()
    p = reelfs("restore", tmp_archive, "main/card", out)
    assert p.returncode != 0, "restore of a damaged chunk succeeded"
    assert "damage" in (p.stderr + p.stdout).lower() or "mismatch" in (p.stderr + p.stdout).lower(), p.stderr
    assert not (out / "card" / "A001C001.mov").exists(), "a damaged restore left a file behind"
