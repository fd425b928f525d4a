"""Restore's whole-file check (issue 16, restore row).

Restore hashes the whole file on a thread of its own, fed the same verified
chunk buffers the bytes are copied from. These tests pin what that must keep:
the id checked is exactly the file's BLAKE3 over every byte written (data and
holes, in order), and a file whose chunks each verify but whose bytes are not
the file's is refused, leaving nothing under its name."""

import os
import sqlite3

from helpers import b3, write_random

MiB = 1 << 20


def test_a_restored_file_of_data_and_holes_has_the_b3sum_of_the_source(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "card"
    src.mkdir()
    clip = src / "A001C001.mov"
    # Several chunks of data, a long zero run, then more data: every kind of
    # extent goes through the copy and the hasher, in file order.
    write_random(clip, 20 * MiB)
    with open(clip, "ab") as f:
        f.write(b"\0" * (12 * MiB))
        f.write(os.urandom(5 * MiB + 4321))
    reelfs.ok("ingest", tmp_archive, src)
    out = tmp_path / "out"
    out.mkdir()
    reelfs.ok("restore", tmp_archive, "main/card", out)
    got = out / "card" / "A001C001.mov"
    assert got.stat().st_size == clip.stat().st_size
    assert b3(got) == b3(clip)


def test_chunks_that_verify_but_are_not_the_files_bytes_fail_the_restore_and_leave_nothing(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "card"
    src.mkdir()
    write_random(src / "A001C001.mov", 24 * MiB)
    write_random(src / "B001C001.mov", 24 * MiB)
    reelfs.ok("ingest", tmp_archive, src)
    # Point one extent of A at a chunk of B that holds as many bytes: every chunk still matches its own id, so only the
    # whole-file check can see that A's bytes are wrong.
    con = sqlite3.connect(tmp_archive / "catalog.db")
    a_rows = con.execute(
        "SELECT blob, file_offset, length, chunk FROM extents ORDER BY blob, file_offset").fetchall()
    by_blob = {}
    for blob, off, length, chunk in a_rows:
        by_blob.setdefault(blob, []).append((off, length, chunk))
    assert len(by_blob) == 2, by_blob.keys()
    a, b = sorted(by_blob)
    a_ext, b_ext = by_blob[a], by_blob[b]
    assert len(a_ext) >= 2, f"want a multi-chunk file, got {len(a_ext)} extents"
    raw = dict(con.execute("SELECT hash, raw_len FROM chunks"))
    # A's shortest extent, and B's longest chunk: chunk sizes vary (CDC), and
    # the longest of B is at least as long as the shortest of A for files of
    # the same size.
    off, length, _ = min(a_ext, key=lambda e: e[1])
    other = max((c for _, _, c in b_ext), key=lambda c: raw[c])
    assert raw[other] >= length, (raw[other], length)
    con.execute("UPDATE extents SET chunk = ?, chunk_offset = 0 WHERE blob = ? AND file_offset = ?", (other, a, off))
    con.commit()
    con.close()
    out = tmp_path / "out"
    out.mkdir()
    p = reelfs("restore", tmp_archive, "main/card", out)
    assert p.returncode != 0, "a restore of wrong bytes succeeded"
    said = (p.stderr + p.stdout).lower()
    assert "does not match its blake3" in said, p.stderr
    names = {q.name for q in (out / "card").iterdir()} if (out / "card").exists() else set()
    # Exactly one of the two files is wrong; it is not there, the other is.
    assert len(names) == 1, names
    good = names.pop()
    assert b3(out / "card" / good) == b3(src / good)
    assert not any(n.startswith(".reelfs-restore-") for n in os.listdir(out)), os.listdir(out)


def test_a_restore_across_more_packs_than_the_descriptor_limit_leaves_open_restores_every_byte(reelfs, tmp_archive, tmp_path):
    # A chunk store keeps a pack open after its first read, but never more
    # than half the process's descriptor limit: past it, the pack used least
    # recently is closed. Reading 80 packs with `ulimit -n 64` must not fail
    # with "Too many open files".
    import resource
    toml = tmp_archive / "reelfs.toml"
    text = toml.read_text()
    assert "target_size = 536870912" in text
    toml.write_text(text.replace("target_size = 536870912", "target_size = 1048576"))
    src = tmp_path / "src"
    files = [write_random(src / f"f{i:02}.bin", 1_100_000 + i) for i in range(80)]
    reelfs.ok("ingest", tmp_archive, src, "--to", "Day01")
    assert len(list((tmp_archive / "packs").rglob("*.pack"))) >= 80

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    out = tmp_path / "out"
    proc = reelfs("restore", tmp_archive, "main/Day01", out, preexec_fn=low_limit)
    assert proc.returncode == 0, proc.stderr
    restored = {p.name: p for p in out.rglob("*.bin")}
    assert len(restored) == len(files)
    for f in files:
        assert restored[f.name].read_bytes() == f.read_bytes(), f.name
