"""Damage that `check --deep` must see (issue 11, "integrity"): catalog rows that
no longer match the pack records they index, a catalog with a damaged header, a
pack lost before a catalog rebuild, and re-ingest after a lost pack.

The catalog is damaged the way a bad disk or a stray tool would: with sqlite3
UPDATEs on the exact column, or by overwriting header bytes of catalog.db.
"""

import sqlite3

import pytest

from helpers import b3, write_random


def ingest_card(reelfs, archive, tmp_path, name="card", sizes=(2 << 20, 3 << 20), dest="Day01"):
    card = tmp_path / name
    files = [write_random(card / f"A001C00{i + 1}.mov", s) for i, s in enumerate(sizes)]
    reelfs.ok("ingest", archive, card, "--to", dest)
    return card, files


def sql(archive, statement, args=()):
    con = sqlite3.connect(archive / "catalog.db")
    try:
        rows = con.execute(statement, args).fetchall()
        con.commit()
        return rows
    finally:
        con.close()


def flip_first_byte(value: bytes) -> bytes:
    return bytes([value[0] ^ 0x01]) + value[1:]


def assert_catalog_damage_reported(proc, *paths):
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED" in proc.stdout
    for p in paths:
        assert p in proc.stdout, (p, proc.stdout)
    assert "--rebuild-catalog" in proc.stdout
    assert "panicked" not in proc.stderr


# ---- bullet 1: catalog rows checked against their records ------------------------

def test_flipped_tree_entry_name_is_found_by_check_deep(reelfs, tmp_archive, tmp_path):
    card, files = ingest_card(reelfs, tmp_archive, tmp_path)
    reelfs.ok("branch", tmp_archive, "grade", "--from", "main")
    reelfs.check_deep(tmp_archive)
    (name,) = sql(tmp_archive, "SELECT name FROM tree_entries WHERE name = 'A001C002.mov'")[0]
    sql(tmp_archive, "UPDATE tree_entries SET name = ? WHERE name = ?", ("A001C00\x32.mav", name))

    proc = reelfs("check", tmp_archive, "--deep")
    assert_catalog_damage_reported(proc, "main/Day01/card", "grade/Day01/card")
    rep = reelfs.json("check", tmp_archive, "--deep", expect_rc=1)
    assert "main/Day01/card" in rep["catalog_damage"]

    reelfs.ok("check", tmp_archive, "--rebuild-catalog")
    reelfs.check_deep(tmp_archive)
    assert reelfs.ok("cat", tmp_archive, "main/Day01/card/A001C002.mov", text=False).stdout == files[1].read_bytes()


@pytest.mark.parametrize("how", ["flipped-byte", "other-chunk"])
def test_damaged_extent_chunk_reference_is_found_by_check_deep(reelfs, tmp_archive, tmp_path, how):
    card, files = ingest_card(reelfs, tmp_archive, tmp_path)
    reelfs.ok("branch", tmp_archive, "grade", "--from", "main")
    reelfs.check_deep(tmp_archive)
    victim = bytes.fromhex(b3(files[1]))
    other = bytes.fromhex(b3(files[0]))
    (chunk,) = sql(tmp_archive, "SELECT chunk FROM extents WHERE blob = ? ORDER BY file_offset LIMIT 1", (victim,))[0]
    if how == "flipped-byte":
        new = flip_first_byte(chunk)
    else:
        # A reference to a chunk that exists: the old "extent points at a known
        # chunk" test cannot see this one.
        (new,) = sql(tmp_archive, "SELECT chunk FROM extents WHERE blob = ? LIMIT 1", (other,))[0]
    sql(tmp_archive, "UPDATE extents SET chunk = ? WHERE blob = ? AND chunk = ?", (new, victim, chunk))

    proc = reelfs("check", tmp_archive, "--deep")
    assert_catalog_damage_reported(proc, "main/Day01/card/A001C002.mov", "grade/Day01/card/A001C002.mov")
    assert "A001C001.mov" not in proc.stdout

    reelfs.ok("check", tmp_archive, "--rebuild-catalog")
    reelfs.check_deep(tmp_archive)
    out = tmp_path / "out.mov"
    reelfs.ok("restore", tmp_archive, "grade/Day01/card/A001C002.mov", out)
    assert b3(out) == b3(files[1])


def test_damaged_commit_and_branch_rows_are_found_by_check_deep(reelfs, tmp_archive, tmp_path):
    ingest_card(reelfs, tmp_archive, tmp_path)
    reelfs.ok("branch", tmp_archive, "grade", "--from", "main")
    reelfs.check_deep(tmp_archive)
    sql(tmp_archive, "UPDATE commits SET message = 'day 2' WHERE branch = 'main'")
    proc = reelfs("check", tmp_archive, "--deep")
    assert_catalog_damage_reported(proc, "commit ")
    reelfs.ok("check", tmp_archive, "--rebuild-catalog")
    reelfs.check_deep(tmp_archive)
    (head,) = sql(tmp_archive, "SELECT head FROM branches WHERE name = 'main'")[0]
    sql(tmp_archive, "UPDATE branches SET head = ? WHERE name = 'grade'", (flip_first_byte(head),))
    proc = reelfs("check", tmp_archive, "--deep")
    assert_catalog_damage_reported(proc, "branch grade")


# ---- bullet 2: a catalog with a damaged header ------------------------------------

@pytest.mark.parametrize("offset,length", [(0, 8), (24, 60), (28, 4), (100, 8)],
                         ids=["magic", "header-fields", "page-count", "first-page"])
def test_damaged_catalog_header_says_how_to_rebuild(reelfs, tmp_archive, tmp_path, offset, length):
    card, files = ingest_card(reelfs, tmp_archive, tmp_path)
    reelfs.check_deep(tmp_archive)
    with open(tmp_archive / "catalog.db", "r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * length)
    out = tmp_path / "out"
    for args in [("ls", tmp_archive, "main/Day01/card"), ("log", tmp_archive, "main"), ("branch", tmp_archive),
                 ("cat", tmp_archive, "main/Day01/card/A001C001.mov"), ("info", tmp_archive, "main/Day01/card/A001C001.mov"),
                 ("restore", tmp_archive, "main/Day01/card", out), ("ingest", tmp_archive, card),
                 ("check", tmp_archive), ("check", tmp_archive, "--deep"), ("stats", tmp_archive)]:
        proc = reelfs(*args)
        assert proc.returncode != 0, args
        assert "catalog" in proc.stderr and "damaged" in proc.stderr, (args, proc.stderr)
        assert f"reelfs check {tmp_archive} --rebuild-catalog" in proc.stderr, (args, proc.stderr)
        assert "panicked" not in proc.stderr
    assert not out.exists()
    proc = reelfs.ok("check", tmp_archive, "--rebuild-catalog")
    assert "old catalog kept" in proc.stdout
    reelfs.check_deep(tmp_archive)
    reelfs.ok("restore", tmp_archive, "main/Day01/card", out)
    for f in files:
        assert b3(out / f.name) == b3(f)


# ---- bullet 3: a pack lost, then the catalog rebuilt ---------------------------------

def pack_holding(archive, source_file):
    needle = source_file.read_bytes()[1000:1064]
    for pack in sorted((archive / "packs").rglob("*.pack")):
        if needle in pack.read_bytes():
            return pack
    raise AssertionError(f"{source_file} bytes not found in any pack")


def test_lost_pack_after_rebuild_is_named_by_check_ls_and_log(reelfs, tmp_archive, tmp_path):
    card1, files1 = ingest_card(reelfs, tmp_archive, tmp_path, name="card1")
    reelfs.ok("branch", tmp_archive, "grade", "--from", "main")
    card2, files2 = ingest_card(reelfs, tmp_archive, tmp_path, name="card2", sizes=(1 << 20,))
    first = pack_holding(tmp_archive, files1[0])
    assert first != pack_holding(tmp_archive, files2[0])
    first.unlink()

    reelfs.ok("check", tmp_archive, "--rebuild-catalog")
    proc = reelfs("check", tmp_archive, "--deep")
    assert proc.returncode == 1, proc.stdout
    assert "FAILED" in proc.stdout
    # What is lost, by name: grade's only commit, main's first commit, card1's files.
    assert "lost: branch grade" in proc.stdout
    assert "lost: commit" in proc.stdout
    assert "lost: main/Day01/card1" in proc.stdout
    assert "card2" not in proc.stdout
    assert "--rebuild-catalog" not in proc.stdout  # a rebuild cannot bring these back
    rep = reelfs.json("check", tmp_archive, "--deep", expect_rc=1)
    assert any(l.startswith("branch grade") for l in rep["lost"])

    for args in [("ls", tmp_archive, "grade"), ("log", tmp_archive, "grade"), ("log", tmp_archive, "main"),
                 ("ls", tmp_archive, "main/Day01/card1"), ("cat", tmp_archive, "main/Day01/card1/A001C001.mov")]:
        proc = reelfs(*args)
        assert proc.returncode != 0, args
        assert "lost" in proc.stderr and "missing pack" in proc.stderr, (args, proc.stderr)
        assert "rebuild-catalog" not in proc.stderr, (args, proc.stderr)
    # What survived still reads.
    out = tmp_path / "out.mov"
    reelfs.ok("restore", tmp_archive, "main/Day01/card2/A001C001.mov", out)
    assert b3(out) == b3(files2[0])


# ---- bullet 4: re-ingest after a lost pack heals the archive --------------------------

def small_packs(archive):
    toml = archive / "reelfs.toml"
    text = toml.read_text()
    assert "target_size = 536870912" in text
    # Every chunk then seals its own pack, and the metadata goes to the last one:
    # losing a data pack loses bytes, not names.
    toml.write_text(text.replace("target_size = 536870912", "target_size = 1048576"))


@pytest.mark.parametrize("check_first", [False, True], ids=["ingest-at-once", "check-then-ingest"])
def test_reingest_of_unchanged_source_after_lost_pack_heals(reelfs, tmp_archive, tmp_path, check_first):
    small_packs(tmp_archive)
    card, files = ingest_card(reelfs, tmp_archive, tmp_path)
    reelfs.check_deep(tmp_archive)
    lost = pack_holding(tmp_archive, files[1])
    assert lost != pack_holding(tmp_archive, files[0])
    lost.unlink()
    if check_first:
        proc = reelfs("check", tmp_archive, "--deep")
        assert proc.returncode == 1 and "main/Day01/card/A001C002.mov" in proc.stdout

    rep = reelfs.json("ingest", tmp_archive, card, "--to", "Day01")
    # The skip cache must not vouch for A001C002: its bytes are read and stored again.
    assert rep["bytes_read"] >= files[1].stat().st_size
    assert rep["bytes_new_stored"] > 0
    reelfs.check_deep(tmp_archive)
    out = tmp_path / "out"
    reelfs.ok("restore", tmp_archive, "main/Day01/card", out)
    for f in files:
        assert b3(out / f.name) == b3(f)
    # Healed for good: the next ingest trusts the skip cache again.
    rep = reelfs.json("ingest", tmp_archive, card, "--to", "Day01")
    assert rep["bytes_read"] == 0 and rep["commit"] is None


def test_check_deep_finding_a_damaged_chunk_invalidates_the_skip_entry(reelfs, tmp_archive, tmp_path):
    card, files = ingest_card(reelfs, tmp_archive, tmp_path)
    reelfs.check_deep(tmp_archive)
    pack = pack_holding(tmp_archive, files[1])
    data = pack.read_bytes()
    at = data.find(files[1].read_bytes()[1000:1064])
    with open(pack, "r+b") as f:
        f.seek(at + 10)
        f.write(bytes([data[at + 10] ^ 0x01]))
    proc = reelfs("check", tmp_archive, "--deep")
    assert proc.returncode == 1 and "damaged: main/Day01/card/A001C002.mov" in proc.stdout
    # The original card, untouched (same size, mtime, inode): re-ingest repairs.
    rep = reelfs.json("ingest", tmp_archive, card, "--to", "Day01")
    assert rep["bytes_new_stored"] > 0
    reelfs.check_deep(tmp_archive)
    out = tmp_path / "out.mov"
    reelfs.ok("restore", tmp_archive, "main/Day01/card/A001C002.mov", out)
    assert b3(out) == b3(files[1])


def test_cat_and_restore_of_lost_bytes_say_lost_after_rebuild(reelfs, tmp_archive, tmp_path):
    small_packs(tmp_archive)
    card, files = ingest_card(reelfs, tmp_archive, tmp_path)
    pack_holding(tmp_archive, files[1]).unlink()
    proc = reelfs.ok("check", tmp_archive, "--rebuild-catalog")
    assert "lost: main/Day01/card/A001C002.mov" in proc.stdout
    proc = reelfs("check", tmp_archive)
    assert proc.returncode == 1 and "lost: main/Day01/card/A001C002.mov" in proc.stdout
    for args in [("cat", tmp_archive, "main/Day01/card/A001C002.mov"),
                 ("restore", tmp_archive, "main/Day01/card/A001C002.mov", tmp_path / "out.mov")]:
        proc = reelfs(*args)
        assert proc.returncode != 0, args
        assert "lost" in proc.stderr and "rebuild-catalog" not in proc.stderr, (args, proc.stderr)
    assert not (tmp_path / "out.mov").exists()
    # Re-ingesting the original card brings the file back.
    reelfs.ok("ingest", tmp_archive, card, "--to", "Day01")
    reelfs.check_deep(tmp_archive)
    assert reelfs.ok("cat", tmp_archive, "main/Day01/card/A001C002.mov", text=False).stdout == files[1].read_bytes()


def test_branch_deleted_and_created_again_survives_a_rebuild(reelfs, tmp_archive, tmp_path):
    ingest_card(reelfs, tmp_archive, tmp_path, sizes=(100_000,))
    reelfs.ok("branch", tmp_archive, "x", "--from", "main")
    reelfs.ok("branch", tmp_archive, "x", "-d")
    reelfs.ok("branch", tmp_archive, "y", "--from", "main")
    reelfs.ok("branch", tmp_archive, "x", "--from", "main")
    before = reelfs.ok("branch", tmp_archive).stdout
    reelfs.check_deep(tmp_archive)
    reelfs.ok("check", tmp_archive, "--rebuild-catalog")
    assert reelfs.ok("branch", tmp_archive).stdout == before
    reelfs.check_deep(tmp_archive)
