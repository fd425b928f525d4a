"""A big file's BLAKE3 outboard, stored in pieces (issue 18, "RSS must stay bounded").

The whole-file outboard (one 32-byte CV per 256 KiB block) used to be one catalog
row built from a list held whole in memory; it is now written a 1 MiB piece at a
time into `blob_outboard_pieces`, and `check --deep` verifies it piece by piece.
"""

import os
import sqlite3

from helpers import b3, write_random

MiB = 1 << 20
GiB = 1 << 30
BLOCK = 256 * 1024


def test_a_sparse_gib_file_restores_to_its_b3sum_and_its_outboard_is_stored_in_pieces(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "card"
    src.mkdir()
    clip = src / "A001C001.mov"
    # 1.5 GiB, nearly all hole (read at ingest as zeros), with data at the start,
    # in the middle and in an odd-length tail, so the outboard's blocks differ.
    size = 3 * GiB // 2 + 12345
    write_random(clip, 3 * MiB)
    with open(clip, "r+b") as f:
        f.seek(700 * MiB + 4321)
        f.write(os.urandom(2 * MiB))
        f.truncate(size)
        f.seek(size - 100_000)
        f.write(os.urandom(100_000))
    assert os.stat(clip).st_blocks * 512 < 64 * MiB, "the source should be sparse"
    want = b3(clip)

    reelfs.ok("ingest", tmp_archive, src)
    reelfs.check_deep(tmp_archive)

    db = sqlite3.connect(f"file:{tmp_archive / 'catalog.db'}?mode=ro", uri=True)
    blob = bytes.fromhex(want)
    pieces = db.execute("SELECT piece, block_log, length(cvs) FROM blob_outboard_pieces WHERE blob = ?", (blob,)).fetchall()
    old = db.execute("SELECT count(*) FROM blob_outboards WHERE blob = ?", (blob,)).fetchone()[0]
    db.close()
    blocks = -(-size // BLOCK)
    assert pieces == [(0, 18, 32 * blocks)], pieces
    assert old == 0, "new outboards are not written as one old-style row"

    out = tmp_path / "out"
    out.mkdir()
    reelfs.ok("restore", tmp_archive, "main/card", out)
    got = out / "card" / "A001C001.mov"
    assert got.stat().st_size == size
    assert b3(got) == want
