"""The tape write and verify paths (issue 15): camera originals go to an
`--ltfs-mount` volume in large blocks with write-behind (each block dropped
from the page cache once it is on disk), and `tape verify` drops what it
reads the same way: writing a show to tape does not leave it in the archive
server's page cache (evicting what its other users read), and verify checks
what the disk holds, not the copy a write left in memory.
Checked the way an operator would: `fincore` (util-linux) says how much of a
file is in the page cache."""

import os
import subprocess

from helpers import b3, write_random

SIZE = 24 << 20  # three 8 MiB blocks
TAIL = 12_345  # a last block that is not a whole number of 4 KiB pages


def cached_bytes(path):
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip())


def direct_io_works(folder):
    probe = folder / ".probe"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_WRONLY | os.O_DIRECT, 0o600)
    except OSError:
        return False
    os.close(fd)
    probe.unlink()
    return True


def test_write_and_verify_bypass_the_page_cache_and_keep_the_bytes(reelfs, tmp_path):
    src = tmp_path / "src" / "Day03"
    write_random(src / "A003C001.mov", SIZE + TAIL)
    write_random(src / "A003C002.mov", 5_000)
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    reelfs.ok("ingest", archive, src, "-m", "Day 03")
    vol = tmp_path / "vol"
    vol.mkdir()
    assert direct_io_works(vol), f"{vol}: this test needs a filesystem that takes O_DIRECT (ext4, xfs)"
    p = reelfs.json("tape", "plan", archive, "main/Day03", "--capacity", "2T")
    barcode = p["tapes"][0]["barcode"]
    out = reelfs.json("tape", "write", archive, p["name"], "--tape", barcode, "--ltfs-mount", vol)
    assert sorted(w["tape_path"] for w in out["write"]["written"]) == ["Day03/A003C001.mov", "Day03/A003C002.mov"]
    big = vol / "Day03" / "A003C001.mov"
    assert b3(big) == b3(src / "A003C001.mov")
    # Drop what the b3() read above left in the cache (POSIX_FADV_DONTNEED
    # on a clean file), so the next figure is verify's doing alone.
    fd = os.open(big, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    assert cached_bytes(big) <= 64 << 10, "dropping the cache did not work here: the check below would mean nothing"
    v = reelfs.json("tape", "verify", archive, "--tape", barcode, "--ltfs-mount", vol)
    assert v["mismatches"] == [] and v["verified"] == 2, v
    # Only the unaligned tail (at most a few pages) went through the cache.
    assert cached_bytes(big) <= 64 << 10, f"verify left {cached_bytes(big)} bytes of {big.name} in the page cache"


def test_a_freshly_written_clip_is_not_left_in_the_page_cache(reelfs, tmp_path):
    src = tmp_path / "src" / "Day03"
    write_random(src / "A003C001.mov", SIZE + TAIL)
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    reelfs.ok("ingest", archive, src, "-m", "Day 03")
    vol = tmp_path / "vol"
    vol.mkdir()
    assert direct_io_works(vol), f"{vol}: this test needs a filesystem that takes O_DIRECT (ext4, xfs)"
    p = reelfs.json("tape", "plan", archive, "main/Day03", "--capacity", "2T")
    barcode = p["tapes"][0]["barcode"]
    reelfs.json("tape", "write", archive, p["name"], "--tape", barcode, "--ltfs-mount", vol)
    big = vol / "Day03" / "A003C001.mov"
    # At most a few pages stay cached; before O_DIRECT, all 24 MiB stayed.
    assert cached_bytes(big) <= 64 << 10, f"tape write left {cached_bytes(big)} bytes of {big.name} in the page cache"
    assert b3(big) == b3(src / "A003C001.mov")
    assert big.stat().st_size == SIZE + TAIL
