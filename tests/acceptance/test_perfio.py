"""The mount's byte paths (issue 16, perfio): how bytes move through the mount.

A sequential reader must reach the daemon as large requests: the kernel's default
read-ahead for a FUSE mount (128 KiB) made a 1 GiB `cat` 8,192 round trips."""

import os
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
