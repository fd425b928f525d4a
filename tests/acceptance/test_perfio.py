"""The mount's byte paths (issue 16, perfio): how bytes move through the mount.

A sequential reader must reach the daemon as large requests: the kernel's default
read-ahead for a FUSE mount (128 KiB) made a 1 GiB `cat` 8,192 round trips."""

import os
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


def resident_bytes(path: Path) -> int:
    """Bytes of `path` in the page cache (`fincore`, util-linux)."""
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


def takes_o_direct(folder: Path) -> bool:
    """Whether the filesystem of `folder` lets a file be opened with O_DIRECT (tmpfs before 6.6 does not)."""
    probe = folder / ".o_direct_probe"
    probe.write_bytes(bytes(4096))
    try:
        os.close(os.open(probe, os.O_RDONLY | os.O_DIRECT))
        return True
    except OSError:
        return False
    finally:
        probe.unlink()


def test_restore_writes_checked_bytes_around_the_page_cache(reelfs, tmp_archive, tmp_path):
    # Copying pack -> file in the kernel (copy_file_range) was still a copy, and
    # page-cache pages for every restored byte cost the VM more than the copy:
    # restore writes each checked 8 MiB window from its own buffer with O_DIRECT
    # where the destination allows it, and still hands back exact bytes.
    src = tmp_path / "card"
    src.mkdir()
    size = 24 * MiB + 5 * 4096 + 123   # the last window is padded to the alignment, then cut
    write_random(src / "A001C001.mov", size)
    reelfs.ok("ingest", tmp_archive, src)
    out = tmp_path / "out"
    out.mkdir()
    reelfs.ok("restore", tmp_archive, "main/card", out)
    restored = out / "card" / "A001C001.mov"
    assert restored.stat().st_size == size
    if takes_o_direct(out):
        cached = resident_bytes(restored)
        assert cached < MiB, f"{cached} of {size} restored bytes went through the page cache"
    assert b3(restored) == b3(src / "A001C001.mov")


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
