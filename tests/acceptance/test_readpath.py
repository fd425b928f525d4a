"""The archive read path (issue 16, read rows): memory and integrity of chunk loads.

Chunk loads reuse buffers (archive/chunk_buffers.rs) and each large buffer is a
mapping of its own, so the mount's resident memory follows what its cache counts;
`reelfs cat` writes straight from the verified chunks. None of it may ever hand out
a byte that was not verified."""

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
