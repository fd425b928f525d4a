"""Recall of a file split across cartridges (issue 15): the plan splits a
clip over two emulated cartridges in a folder library (`--changer LIB`);
after `tape release`, `tape recall --changer` reads part 1 from the first
cartridge, loads the second for part 2, checks each part against the BLAKE3
taken when it was written and the whole file against the archive, and stores
it again, byte-identical. A cartridge the library lacks is asked for by
barcode; a damaged part is refused by name; without a library the refusal
says how to recall it."""

import shutil

import pytest

from helpers import b3, write_random

CLIP = "main/Day09/A009C001.mov"


def slot(lib, n, barcode, reelfs):
    d = lib / "slots" / f"{n:03d}" / barcode
    d.mkdir(parents=True)
    reelfs.ok("tape", "format", "--device", d, "--tape", barcode, "--capacity", "100M")
    return d


def in_slots(lib):
    return {p.parent.name: p.name for p in (lib / "slots").glob("*/*") if p.is_dir()}


@pytest.fixture
def split_released(tmp_path, reelfs):
    """A 3 MB random clip (and a small one) planned on 2M cartridges, so the
    clip is split over A00001L8 and A00002L8; both written and verified
    through the library, then released (the disk copy freed)."""
    src = tmp_path / "src" / "Day09"
    write_random(src / "A009C001.mov", 3_000_000)
    write_random(src / "A009C002.mov", 200_000)
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    reelfs.ok("ingest", archive, src, "-m", "Day 09")
    p = reelfs.json("tape", "plan", archive, "main/Day09", "--capacity", "2M")
    assert [s["source"] for s in p["splits"]] == [CLIP], p
    assert p["splits"][0]["barcodes"] == ["A00001L8", "A00002L8"], p
    lib = tmp_path / "lib"
    slot(lib, 1, "A00001L8", reelfs)
    slot(lib, 2, "A00002L8", reelfs)
    for barcode in ["A00001L8", "A00002L8"]:
        out = reelfs.json("tape", "write", archive, p["name"], "--tape", barcode, "--changer", lib, "--verify")
        assert all(c["verify"]["mismatches"] == [] for c in out["cartridges"]), out
    rel = reelfs.json("tape", "release", archive, p["name"], "--copies", "1")
    assert CLIP in [r["source"] for r in rel["released"]], rel
    assert reelfs("cat", archive, CLIP, text=False).returncode != 0
    return archive, src, lib


def test_recall_puts_a_split_file_back_together_from_both_cartridges(reelfs, split_released, tmp_path):
    archive, src, lib = split_released
    rep = reelfs.json("tape", "recall", archive, CLIP, "--from", "A00001L8", "--changer", lib)
    assert rep["refused"] == [] and rep["waiting_for"] is None, rep
    [f] = rep["recalled"]
    assert f["source"] == CLIP and f["bytes"] == 3_000_000
    assert [p["barcode"] for p in f["parts"]] == ["A00001L8", "A00002L8"]
    assert [p["tape_path"] for p in f["parts"]] == [f"Day09/A009C001.mov.part00{n}of002" for n in (1, 2)]
    assert sum(p["bytes"] for p in f["parts"]) == 3_000_000
    out = tmp_path / "out" / "A009C001.mov"
    out.parent.mkdir()
    reelfs.ok("restore", archive, CLIP, out)
    assert b3(out) == b3(src / "A009C001.mov")
    # Both cartridges back in their own slots, the drive empty.
    assert in_slots(lib) == {"001": "A00001L8", "002": "A00002L8"}
    assert [p for p in (lib / "drive0").iterdir() if not p.name.startswith(".")] == []


def test_recall_from_the_second_cartridge_reads_the_first_part_too(reelfs, split_released, tmp_path):
    archive, src, lib = split_released
    rep = reelfs.json("tape", "recall", archive, CLIP, "--from", "A00002L8", "--changer", lib)
    assert rep["refused"] == [], rep
    assert [p["barcode"] for p in rep["recalled"][0]["parts"]] == ["A00001L8", "A00002L8"]
    assert reelfs.ok("cat", archive, CLIP, text=False).stdout == (src / "A009C001.mov").read_bytes()


def test_a_cartridge_missing_from_the_library_is_asked_for_and_nothing_is_stored(reelfs, split_released, tmp_path):
    archive, src, lib = split_released
    away = tmp_path / "shelf" / "A00002L8"
    away.parent.mkdir()
    shutil.move(lib / "slots" / "002" / "A00002L8", away)
    rep = reelfs.json("tape", "recall", archive, CLIP, "--from", "A00001L8", "--changer", lib, expect_rc=2)
    assert rep["waiting_for"] == "A00002L8" and rep["recalled"] == []
    [refused] = rep["refused"]
    assert refused["source"] == CLIP and "A00002L8" in refused["error"] and "not in the library" in refused["error"]
    still = reelfs("cat", archive, CLIP, text=False)
    assert still.returncode != 0 and b"A00001L8" in still.stderr
    assert in_slots(lib) == {"001": "A00001L8"}
    # Once it is back in a slot, the same command completes.
    shutil.move(away, lib / "slots" / "002" / "A00002L8")
    rep = reelfs.json("tape", "recall", archive, CLIP, "--from", "A00001L8", "--changer", lib)
    assert rep["refused"] == [] and len(rep["recalled"]) == 1
    assert reelfs.ok("cat", archive, CLIP, text=False).stdout == (src / "A009C001.mov").read_bytes()


def test_a_damaged_part_is_refused_by_name(reelfs, split_released):
    archive, src, lib = split_released
    cart = lib / "slots" / "002" / "A00002L8"
    # The emulated cartridge keeps data-partition records as files `1_N_R`;
    # the largest holds part 2's bytes. One byte changed in it.
    rec = max((p for p in cart.iterdir() if p.name.startswith("1_") and p.name.endswith("_R")), key=lambda p: p.stat().st_size)
    data = bytearray(rec.read_bytes())
    data[len(data) // 2] ^= 0xFF
    rec.write_bytes(bytes(data))
    r = reelfs("tape", "recall", archive, CLIP, "--from", "A00001L8", "--changer", lib)
    assert r.returncode == 2
    assert CLIP in r.stderr and "A00002L8" in r.stderr and "does not match" in r.stderr, r.stderr
    still = reelfs("cat", archive, CLIP, text=False)
    assert still.returncode != 0
    assert in_slots(lib) == {"001": "A00001L8", "002": "A00002L8"}


def test_without_a_library_the_refusal_says_how_to_recall_a_split_file(reelfs, split_released):
    archive, src, lib = split_released
    r = reelfs("tape", "recall", archive, CLIP, "--from", "A00001L8", "--device", lib / "slots" / "001" / "A00001L8")
    assert r.returncode == 2
    assert CLIP in r.stderr and "A00001L8, A00002L8" in r.stderr and "--changer" in r.stderr, r.stderr
    assert reelfs("cat", archive, CLIP, text=False).returncode != 0
