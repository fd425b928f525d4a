"""The archive read path (issue 16, read rows): memory and integrity of chunk loads.

Chunk loads reuse buffers (archive/chunk_buffers.rs) and each large buffer is a
mapping of its own, so the mount's resident memory follows what its cache counts;
`reelfs cat` writes straight from the verified chunks. None of it may ever hand out
a byte that was not verified."""

import re
import subprocess
from pathlib import Path

from helpers import b3, write_random

MiB = 1 << 20


def drop_caches():
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def test_the_mount_stays_within_its_cache_size_plus_128_mib_through_cold_sequential_reads(reelfs, tmp_archive, tmp_path, mount):
    # Four 96 MiB clips read one after another, cold: every chunk passes through
    # the read-ahead's 64 MiB cache. Before chunk buffers had mappings of their
    # own, each reader thread's malloc arena kept what the cache had dropped.
    card = tmp_path / "card"
    clips = [write_random(card / f"A001C00{i}.mov", 96 * MiB) for i in range(1, 5)]
    reelfs.ok("ingest", tmp_archive, card)
    m = mount(tmp_archive, "--cache-size", "64M")
    drop_caches()
    for c in clips:
        assert b3(m.mp / "main" / "card" / c.name) == b3(c), f"{c.name} read back through the mount differs"
    peak_mib = m.status("VmHWM") // 1024
    assert peak_mib <= 64 + 128, f"mount daemon peak RSS {peak_mib} MiB with --cache-size 64M (bound: cache + 128 MiB)"


def test_reelfs_cat_of_a_flipped_byte_fails_naming_the_chunk_and_writes_nothing_past_it(reelfs, tmp_archive, tmp_path):
    # `reelfs cat` writes each extent straight from its verified chunk: a chunk
    # whose bytes do not match its BLAKE3 must stop it before any of its bytes.
    card = tmp_path / "card"
    clip = write_random(card / "A001C001.mov", 24 * MiB)
    reelfs.ok("ingest", tmp_archive, card)
    assert reelfs("cat", tmp_archive, "main/card/A001C001.mov", text=False).stdout == clip.read_bytes()
    data = clip.read_bytes()
    packs = sorted((tmp_archive / "packs").rglob("*.pack"))
    at_file = 20 * MiB
    needle = data[at_file:at_file + 64]
    for pack in packs:
        raw = pack.read_bytes()
        at = raw.find(needle)
        if at >= 0:
            with open(pack, "r+b") as f:
                f.seek(at + 10)
                f.write(bytes([raw[at + 10] ^ 0x01]))
            break
    else:
        raise AssertionError("the clip's bytes were not found in any pack")
    proc = reelfs("cat", tmp_archive, "main/card/A001C001.mov", text=False)
    assert proc.returncode != 0
    err = proc.stderr.decode(errors="replace")
    assert "damaged" in err.lower() and "BLAKE3" in err, err
    out = proc.stdout
    assert len(out) <= at_file, f"cat wrote {len(out)} bytes, past the damaged byte at {at_file + 10}"
    assert out == data[:len(out)], "every byte cat wrote before failing is the original's"


def _strace_daemon(pid, out, calls="mmap,munmap"):
    """strace every thread of the mount daemon for `calls` into `out`; returns once
    strace says it is attached ("Process N attached with T threads"), so no call is missed."""
    proc = subprocess.Popen(["strace", "-f", "-e", f"trace={calls}", "-e", "signal=none", "-o", str(out), "-p", str(pid)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while True:
        line = proc.stderr.readline()
        assert line, f"strace ended before attaching to the mount daemon (exit {proc.wait()})"
        if "attached" in line:
            return proc


def _mounted_random_clip(reelfs, tmp_archive, tmp_path, mount, size, seed, reads):
    """A random clip of `size` bytes ingested and mounted, and `reads` page-aligned
    offsets for 1 MiB reads in it (fixed by `seed`): (mount, path, bytes, offsets)."""
    import random
    clip = write_random(tmp_path / "card" / "A001C001.mov", size)
    data = clip.read_bytes()
    reelfs.ok("ingest", tmp_archive, clip.parent)
    m = mount(tmp_archive)
    rnd = random.Random(seed)
    offsets = [rnd.randrange(0, (len(data) - MiB) // 4096) * 4096 for _ in range(reads)]
    return m, m.mp / "main" / "card" / clip.name, data, offsets


def test_random_1_mib_reads_through_the_mount_reuse_their_buffers_instead_of_mapping_one_per_request(reelfs, tmp_archive, tmp_path, mount):
    # Each 1 MiB FUSE read used to get a fresh buffer, which (buffers from 1 MiB up
    # are mappings of their own) was an mmap, 256 page faults and a munmap per
    # request: the random-read row's p50 rose by a third. The reply buffer now
    # comes from the chunk buffer pool and goes back after the reply is sent.
    import os
    m, path, data, offsets = _mounted_random_clip(reelfs, tmp_archive, tmp_path, mount, 64 * MiB, seed=16, reads=72)
    fd = os.open(path, os.O_RDONLY)
    try:
        for off in offsets[:8]:  # fills the pool
            assert os.pread(fd, MiB, off) == data[off:off + MiB]
        drop_caches()
        trace = tmp_path / "strace.out"
        st = _strace_daemon(m.pid, trace)
        try:
            for off in offsets[8:]:
                assert os.pread(fd, MiB, off) == data[off:off + MiB], f"bytes at {off} differ through the mount"
        finally:
            st.send_signal(2)
            st.wait()
    finally:
        os.close(fd)
    # "PID munmap(ADDR, LEN) = 0", or "PID munmap(ADDR, LEN <unfinished ...>" when
    # another thread's call interleaves.
    unmaps = [(line, re.search(r"munmap\(\w+, (\d+)", line)) for line in trace.read_text().splitlines()]
    big_unmaps = [line for line, u in unmaps if u and int(u.group(1)) >= MiB]
    reads = len(offsets) - 8
    assert len(big_unmaps) <= reads // 16, (
        f"{len(big_unmaps)} munmaps of 1 MiB or more for {reads} random 1 MiB reads: the daemon maps a buffer per request\n"
        + "\n".join(big_unmaps[:5]))


def test_random_1_mib_reads_through_the_mount_read_about_what_they_ask_from_the_packs(reelfs, tmp_archive, tmp_path, mount):
    # The mount's sequential detector took any read within 16 MiB of the one before
    # for a stream and loaded (and verified) 8 MiB and more of whole chunks ahead of
    # it: random 1 MiB reads over 1 GiB read 970 MiB of chunks besides their own
    # blocks, competing for the disk with the reads after them (the p99). Each read
    # now reads its own 256 KiB blocks (1.25 MiB at most) and nothing ahead.
    import os
    m, path, data, offsets = _mounted_random_clip(reelfs, tmp_archive, tmp_path, mount, 192 * MiB, seed=7, reads=96)
    drop_caches()
    trace = tmp_path / "strace.out"
    st = _strace_daemon(m.pid, trace, "pread64")
    fd = os.open(path, os.O_RDONLY)
    try:
        for off in offsets:
            assert os.pread(fd, MiB, off) == data[off:off + MiB], f"bytes at {off} differ through the mount"
    finally:
        os.close(fd)
        st.send_signal(2)
        st.wait()
    # "PID pread64(FD, "..."..., COUNT, OFFSET) = GOT" (or "<... pread64 resumed> ..., COUNT, OFFSET) = GOT").
    # Each read's own blocks are 1.25 MiB (five 256 KiB blocks for an unaligned MiB);
    # two pairs of these reads start within 2 MiB of each other, which is how a
    # stream starts, and may load a window ahead.
    read = sum(int(g.group(1)) for g in re.finditer(r"pread64.*, \d+, \d+\) = (\d+)", trace.read_text()))
    asked = len(offsets) * MiB
    assert read <= 2 * asked, (
        f"the daemon read {read / MiB:.0f} MiB from packs and catalog for {asked / MiB:.0f} MiB of random 1 MiB reads: "
        "it loads chunks ahead of readers that are not sequential")


def test_a_cold_sequential_read_through_the_mount_lets_go_of_the_chunks_it_has_passed(reelfs, tmp_archive, tmp_path, mount):
    # The read-ahead cache kept every chunk a reader had passed until the cache was
    # full, so each load of a cold `cat` got a new buffer, mapped and faulted in page
    # by page (a fifth of the CPU of a cold `cat` through the mount). Chunks more than
    # the out-of-order band behind a sequential reader now leave the cache, and their
    # buffers serve the loads ahead: the daemon holds the band and the window ahead,
    # not the file.
    card = tmp_path / "card"
    clip = write_random(card / "A001C001.mov", 256 * MiB)
    reelfs.ok("ingest", tmp_archive, card)
    m = mount(tmp_archive, "--cache-size", "256M")
    drop_caches()
    assert b3(m.mp / "main" / "card" / clip.name) == b3(clip), "the clip read back through the mount differs"
    peak_mib = m.status("VmHWM") // 1024
    # 298 MiB before chunks were let go, 169 MiB after (--cache-size 256M: a 64 MiB window).
    assert peak_mib <= 224, f"mount daemon peak RSS {peak_mib} MiB after one cold read of a 256 MiB file: it keeps the chunks the reader has passed"


def test_a_cold_sequential_read_through_the_mount_reads_each_stored_byte_once(reelfs, tmp_archive, tmp_path, mount):
    # A sequential reader that caught up with its read-ahead read and verified its
    # own range of the chunk (pread + BLAKE3 on the FUSE thread) while a read-ahead
    # worker was reading and verifying the whole chunk: a cold `cat` read some bytes
    # twice from the packs, hashed them twice and replied from a fresh buffer (perf:
    # a tenth of the mount's CPU). It now waits for the load in flight and replies
    # from the loaded chunk.
    card = tmp_path / "card"
    clip = write_random(card / "A001C001.mov", 192 * MiB)
    reelfs.ok("ingest", tmp_archive, card)
    m = mount(tmp_archive)
    drop_caches()
    trace = tmp_path / "strace.out"
    st = _strace_daemon(m.pid, trace, "pread64")
    try:
        assert b3(m.mp / "main" / "card" / clip.name) == b3(clip), "the clip read back through the mount differs"
    finally:
        st.send_signal(2)
        st.wait()
    # "PID pread64(FD, "..."..., COUNT, OFFSET) = GOT" (or "<... pread64 resumed> ..., COUNT, OFFSET) = GOT").
    read = sum(int(g.group(1)) for g in re.finditer(r"pread64.*, \d+, \d+\) = (\d+)", trace.read_text()))
    size = clip.stat().st_size
    assert read <= size * 1.05, (
        f"the daemon read {read / MiB:.0f} MiB from packs and catalog for one cold read of a {size / MiB:.0f} MiB file: "
        "readers read chunks the read-ahead is already loading")
