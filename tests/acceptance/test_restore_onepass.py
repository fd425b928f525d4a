"""Restore in one hashing pass (issue 16, restore row).

Restore checks each stored byte once, against the file's BLAKE3 outboard (the
block chaining values whose root is the file id, what `b3sum` prints), instead
of once against its chunk id and once more for the whole file. These tests pin
what that must keep: a flipped byte in a pack fails the restore naming the file
and the damaged chunk, and nothing unverified is left under the file's name;
files without an outboard (archives from before outboards) or with one that does
not match their id restore through the old whole-chunk checks."""

import os
import sqlite3

from helpers import b3, write_random

MiB = 1 << 20


def ingest_card(reelfs, archive, tmp_path, size=24 * MiB):
    src = tmp_path / "card"
    src.mkdir()
    write_random(src / "A001C001.mov", size)
    reelfs.ok("ingest", archive, src)
    return src / "A001C001.mov"


def flip_byte_at(archive, clip, at):
    """Flip the stored byte of `clip` at file offset `at` in its pack; return the
    id (hex) of the chunk that holds it."""
    with open(clip, "rb") as f:
        f.seek(at)
        needle = f.read(64)
    for pack in sorted((archive / "packs").rglob("*.pack")):
        data = pack.read_bytes()
        pos = data.find(needle)
        if pos >= 0:
            with open(pack, "r+b") as f:
                f.seek(pos)
                f.write(bytes([data[pos] ^ 0x01]))
            break
    else:
        raise AssertionError("the clip's bytes are in no pack")
    con = sqlite3.connect(archive / "catalog.db")
    (chunk,) = con.execute(
        "SELECT lower(hex(chunk)) FROM extents WHERE file_offset <= ? AND ? < file_offset + length", (at, at)).fetchone()
    con.close()
    return chunk


def test_a_flipped_byte_fails_the_restore_naming_the_file_and_its_chunk_and_leaves_nothing(reelfs, tmp_archive, tmp_path):
    clip = ingest_card(reelfs, tmp_archive, tmp_path)
    chunk = flip_byte_at(tmp_archive, clip, 13 * MiB + 12345)
    out = tmp_path / "out"
    out.mkdir()
    p = reelfs("restore", tmp_archive, "main/card", out)
    said = p.stderr + p.stdout
    assert p.returncode != 0, "a restore of a damaged chunk succeeded"
    assert "A001C001.mov" in said and chunk in said, f"the error names neither the file nor chunk {chunk}:\n{said}"
    assert "check --deep" in said, said
    assert not (out / "card" / "A001C001.mov").exists(), "a damaged restore left a file under its name"
    assert not any(n.startswith(".reelfs-restore-") for n in os.listdir(out)), os.listdir(out)


def test_files_without_an_outboard_restore_with_chunk_checks_and_still_catch_a_flipped_byte(reelfs, tmp_archive, tmp_path):
    clip = ingest_card(reelfs, tmp_archive, tmp_path)
    # What a catalog from before outboards (or rebuilt from the packs) has: no file outboards.
    con = sqlite3.connect(tmp_archive / "catalog.db")
    # This version stores a file's outboard in pieces (one for this clip);
    # older ones kept it in one blob_outboards row. Neither is left.
    assert con.execute("SELECT count(*) FROM blob_outboard_pieces").fetchone()[0] == 1
    con.execute("DELETE FROM blob_outboard_pieces")
    con.execute("DELETE FROM blob_outboards")
    con.commit()
    con.close()
    out = tmp_path / "out"
    out.mkdir()
    reelfs.ok("restore", tmp_archive, "main/card", out)
    assert b3(out / "card" / "A001C001.mov") == b3(clip)
    chunk = flip_byte_at(tmp_archive, clip, 5 * MiB)
    again = tmp_path / "again"
    again.mkdir()
    p = reelfs("restore", tmp_archive, "main/card", again)
    assert p.returncode != 0 and chunk in (p.stderr + p.stdout), p.stderr
    assert not (again / "card" / "A001C001.mov").exists()


def test_a_file_outboard_that_does_not_match_the_file_id_is_not_trusted(reelfs, tmp_archive, tmp_path):
    clip = ingest_card(reelfs, tmp_archive, tmp_path)
    # Outboard rows are derived data: one that does not merge to the file id
    # (a bug, a bad edit) is ignored, and the restore checks the bytes as before.
    con = sqlite3.connect(tmp_archive / "catalog.db")
    (cvs,) = con.execute("SELECT cvs FROM blob_outboard_pieces").fetchone()
    con.execute("UPDATE blob_outboard_pieces SET cvs = ?", (bytes([cvs[0] ^ 1]) + cvs[1:],))
    con.commit()
    con.close()
    out = tmp_path / "out"
    out.mkdir()
    reelfs.ok("restore", tmp_archive, "main/card", out)
    assert b3(out / "card" / "A001C001.mov") == b3(clip)
