"""BLAKE3 outboards (issue 16, hashing/verification): block-granular verify of
random reads and incremental commit hashes through the mount, checked against
b3sum of the bytes."""

import errno
import os
import random

import pytest

from helpers import b3, write_random


def _expected_after(src_bytes, writes, size):
    out = bytearray(src_bytes)
    if len(out) < size:
        out.extend(b"\0" * (size - len(out)))
    for off, data in writes:
        end = off + len(data)
        if len(out) < end:
            out.extend(b"\0" * (end - len(out)))
        out[off:end] = data
    return bytes(out)


def test_random_writes_into_a_multi_chunk_file_commit_with_the_b3sum_of_the_restored_file(reelfs, tmp_path, mount):
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    src = write_random(tmp_path / "card" / "A001C002.mov", 9 << 20)
    reelfs.ok("ingest", archive, tmp_path / "card", "-m", "card")
    m = mount(archive)
    path = m.mp / "main" / "card" / "A001C002.mov"
    rng = random.Random(16)
    size = src.stat().st_size
    # Small writes in random blocks, one across a 256 KiB block boundary, one
    # in the last (short) block, one that extends the file.
    writes = [(rng.randrange(0, size - 4096), os.urandom(4096)) for _ in range(12)]
    writes += [((5 << 18) - 100, os.urandom(300)), (size - 10, os.urandom(10)), (size + 5000, os.urandom(777))]
    with open(path, "r+b") as f:
        for off, data in writes:
            f.seek(off)
            f.write(data)
        f.flush()
        os.fsync(f.fileno())
    expect = _expected_after(src.read_bytes(), writes, size)
    reelfs.ok("commit", archive, "main", "-m", "random writes")
    out = tmp_path / "restored.mov"
    reelfs.ok("restore", archive, "main/card/A001C002.mov", out)
    assert out.read_bytes() == expect
    import blake3
    want = blake3.blake3(expect).hexdigest()
    assert b3(out) == want
    assert reelfs.json("info", archive, "main/card/A001C002.mov")["content_hash"] == want
    # A second round of writes on the new version (whose outboard the first commit recorded).
    with open(path, "r+b") as f:
        f.seek(3 << 20)
        f.write(b"\x5a" * 4096)
    expect2 = bytearray(expect)
    expect2[3 << 20:(3 << 20) + 4096] = b"\x5a" * 4096
    reelfs.ok("commit", archive, "main", "-m", "one more")
    assert reelfs.json("info", archive, "main/card/A001C002.mov")["content_hash"] == blake3.blake3(bytes(expect2)).hexdigest()
    reelfs.check_deep(archive)


def _flip_in_pack(archive, needle):
    """Flip the first byte of `needle` where a pack stores it (raw chunks)."""
    for p in sorted((archive / "packs").rglob("*.pack")):
        data = bytearray(p.read_bytes())
        at = data.find(needle)
        if at >= 0:
            data[at] ^= 0x01
            p.write_bytes(bytes(data))
            return
    pytest.fail("the bytes were not found in any pack")


def _pread(path, off, n):
    fd = os.open(path, os.O_RDONLY)
    try:
        # No kernel read-ahead: the mount sees just the range asked for.
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        return os.pread(fd, n, off)
    finally:
        os.close(fd)


def test_a_flipped_byte_is_eio_for_reads_of_its_block_and_other_blocks_of_the_chunk_still_read(reelfs, tmp_path, mount):
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    # 1 MiB is one chunk (the chunker's minimum) of four 256 KiB blocks.
    src = write_random(tmp_path / "card" / "clip.mov", 1 << 20)
    reelfs.ok("ingest", archive, tmp_path / "card", "-m", "card")
    data = src.read_bytes()
    bad = 3 * (1 << 18) + 5000  # in the last block
    _flip_in_pack(archive, data[bad:bad + 64])
    m = mount(archive)
    path = m.mp / "main" / "card" / "clip.mov"
    assert _pread(path, 0, 4096) == data[:4096]
    assert _pread(path, (1 << 18) + 8192, 4096) == data[(1 << 18) + 8192:(1 << 18) + 12288]
    with pytest.raises(OSError) as e:
        _pread(path, bad - 100, 4096)
    assert e.value.errno == errno.EIO
    # Still refused the second time (never served unverified), and the good block still reads.
    with pytest.raises(OSError) as e:
        _pread(path, 3 * (1 << 18), 4096)
    assert e.value.errno == errno.EIO
    assert _pread(path, 4096, 4096) == data[4096:8192]
    rc = reelfs("check", archive, "--deep")
    assert rc.returncode != 0 and "main/card/clip.mov" in rc.stdout + rc.stderr
