"""Tape library (issue 15): `--changer LIB` with a folder emulating a library
(slots/NNN/BARCODE/ are cartridges made by `reelfs tape format --device`,
drive0/ the drive). tape write loads the cartridge by barcode, and the next
one when a cartridge fills; verify and recall load what they read; every
cartridge is back in its slot afterwards. (The `mtx` SCSI changer behind the
same trait needs a real library and is not tested here.)"""

import pytest

from helpers import b3


def slot(lib, n, barcode, reelfs, capacity):
    d = lib / "slots" / f"{n:03d}" / barcode
    d.mkdir(parents=True)
    reelfs.ok("tape", "format", "--device", d, "--tape", barcode, "--capacity", capacity)
    return d


def in_slots(lib):
    return {p.parent.name: p.name for p in (lib / "slots").glob("*/*") if p.is_dir()}


@pytest.fixture
def day7(tmp_path, reelfs):
    src = tmp_path / "src" / "Day07"
    # Zeros (one chunk in the archive, sparse at the source): a 100M emulated
    # cartridge, the smallest `tape format` makes, fills after two of them.
    src.mkdir(parents=True)
    for i in range(1, 5):
        with open(src / f"C00{i}.mov", "wb") as f:
            f.truncate(40_000_000 + i)
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    reelfs.ok("ingest", archive, src, "-m", "Day 07")
    p = reelfs.json("tape", "plan", archive, "main/Day07", "--capacity", "1G")
    assert [t["barcode"] for t in p["tapes"]] == ["A00001L8"]
    return archive, src.parent, p["name"]


def test_write_loads_by_barcode_and_the_next_cartridge_when_one_is_full(reelfs, day7, tmp_path):
    archive, src, plan = day7
    lib = tmp_path / "lib"
    # A00001L8 is smaller than the plan assumed: it fills before the plan's end.
    slot(lib, 1, "A00001L8", reelfs, "100M")
    slot(lib, 2, "A00002L8", reelfs, "300M")
    out = reelfs.json("tape", "write", archive, plan, "--tape", "A00001L8", "--changer", lib, "--verify")
    carts = out["cartridges"]
    assert [c["write"]["barcode"] for c in carts] == ["A00001L8", "A00002L8"], out
    assert carts[0]["write"]["closed_early"] and carts[0]["write"]["moved_to"] == "A00002L8"
    assert out["waiting_for"] is None
    assert all(c["verify"]["mismatches"] == [] for c in carts)
    written = [w["tape_path"] for c in carts for w in c["write"]["written"]]
    assert sorted(written) == [f"Day07/C00{i}.mov" for i in range(1, 5)]
    # Both back in their own slots, the drive empty.
    assert in_slots(lib) == {"001": "A00001L8", "002": "A00002L8"}
    assert [p for p in (lib / "drive0").iterdir() if not p.name.startswith(".")] == []
    # verify --changer loads the cartridge it reads.
    v = reelfs.json("tape", "verify", archive, "--tape", "A00002L8", "--changer", lib)
    assert v["mismatches"] == [] and v["verified"] == len(carts[1]["write"]["written"])
    # recall --changer after a release: loads --from, byte-identical restore.
    reelfs.json("tape", "release", archive, plan, "--copies", "1")
    on_b = [f"main/{w['tape_path']}" for w in carts[1]["write"]["written"]]
    rep = reelfs.json("tape", "recall", archive, *on_b, "--from", "A00002L8", "--changer", lib)
    assert rep["refused"] == [] and len(rep["recalled"]) == len(on_b)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for p in on_b:
        name = p.rsplit("/", 1)[1]
        reelfs.ok("restore", archive, p, out_dir / name)
        assert b3(out_dir / name) == b3(src / "Day07" / name)
    assert in_slots(lib) == {"001": "A00001L8", "002": "A00002L8"}


def test_a_cartridge_not_in_the_library_is_asked_for_by_barcode(reelfs, day7, tmp_path):
    archive, src, plan = day7
    lib = tmp_path / "lib"
    slot(lib, 1, "A00001L8", reelfs, "100M")
    (lib / "slots" / "002").mkdir()
    out = reelfs.json("tape", "write", archive, plan, "--tape", "A00001L8", "--changer", lib, expect_rc=2)
    assert out["waiting_for"] == "A00002L8"
    r = reelfs("tape", "write", archive, plan, "--tape", "A00002L8", "--changer", lib)
    assert r.returncode != 0
    assert "no cartridge A00002L8 in the library" in r.stderr and "slot 1: A00001L8" in r.stderr, r.stderr
    # Refused before anything was written.
    assert {f["state"] for f in reelfs.json("tape", "ls", archive, "--tape", "A00002L8")["files"]} == {"queued"}
