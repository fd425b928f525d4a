"""Tape release and recall (issue 15): the disk copy of files verified on
enough cartridges is freed (packs shrink through gc), the catalog, media facts
and the mount's sizes and xattrs stay, reading refuses with the cartridges'
names, and a recall from a cartridge (read in tape order, BLAKE3-checked)
brings back exactly the original bytes. Plain folders stand in for LTFS
mounts; one emulated cartridge covers `--device`."""

import errno
import os
import shutil
from pathlib import Path

import pytest

from helpers import b3, write_random


def pack_bytes(archive):
    return sum(p.stat().st_size for p in (Path(archive) / "packs").rglob("*") if p.is_file())


@pytest.fixture
def two_copies(tmp_path, reelfs, media_dir):
    """An archive with a real BWF and two random clips, written and verified
    on two copies (A00001L8 and B00001L8, both folder volumes)."""
    src = tmp_path / "src" / "Day01"
    (src / "SOUND").mkdir(parents=True)
    shutil.copy(media_dir / "D004_bwf.wav", src / "SOUND" / "D004_bwf.wav")
    write_random(src / "A001" / "A001C001.mov", 3_000_000)
    write_random(src / "A001" / "A001C002.mov", 2_000_000)
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    reelfs.ok("ingest", archive, src, "-m", "Day 01")
    p = reelfs.json("tape", "plan", archive, "main/Day01", "--capacity", "2T", "--copies", "2")
    vols = {}
    for t in p["tapes"]:
        vol = tmp_path / "vol" / t["barcode"]
        vol.mkdir(parents=True)
        out = reelfs.json("tape", "write", archive, p["name"], "--tape", t["barcode"], "--ltfs-mount", vol, "--verify")
        assert out["verify"]["mismatches"] == [], out
        vols[t["barcode"]] = vol
    assert sorted(vols) == ["A00001L8", "B00001L8"]
    return archive, src.parent, p["name"], vols


def test_release_frees_the_disk_copy_and_reading_names_the_cartridges(reelfs, two_copies, mount, tmp_path):
    archive, src, plan, vols = two_copies
    before = pack_bytes(archive)
    rep = reelfs.json("tape", "release", archive, plan, "--copies", "2")
    assert sorted(f["source"] for f in rep["released"]) == [
        "main/Day01/A001/A001C001.mov", "main/Day01/A001/A001C002.mov", "main/Day01/SOUND/D004_bwf.wav"]
    assert all(f["barcodes"] == ["A00001L8", "B00001L8"] for f in rep["released"])
    # The packs really shrank: the random clips alone are 5 MB.
    assert pack_bytes(archive) < before - 4_500_000
    assert rep["gc"]["bytes_freed"] > 4_500_000
    # Browsing is unchanged: ls, media facts.
    ls = reelfs.json("ls", archive, "main/Day01/A001")
    assert {e["name"]: e["size"] for e in ls} == {"A001C001.mov": 3_000_000, "A001C002.mov": 2_000_000}
    # check knows released content is intentional, plain and deep.
    for deep in ([], ["--deep"]):
        r = reelfs("check", archive, *deep)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "3 released file content(s) are on tape only" in r.stdout, r.stdout
    # restore and cat refuse, naming the cartridges and the recall command.
    for cmd in (["restore", archive, "main/Day01/A001/A001C001.mov", tmp_path / "out"],
                ["cat", archive, "main/Day01/A001/A001C001.mov"]):
        r = reelfs(*cmd, text=False)
        err = r.stderr.decode(errors="replace")
        assert r.returncode != 0
        assert "A00001L8,B00001L8" in err and "reelfs tape recall" in err, err
    assert not (tmp_path / "out" / "A001C001.mov").exists()
    # In the mount: same size, location xattr, EIO on read with a log line naming the tapes.
    m = mount(archive)
    f = m.mp / "main" / "Day01" / "A001" / "A001C001.mov"
    assert f.stat().st_size == 3_000_000
    assert os.getxattr(f, "user.reelfs.location") == b"tape:A00001L8,B00001L8"
    with pytest.raises(OSError) as e:
        with open(f, "rb") as fh:
            fh.read(4096)
    assert e.value.errno == errno.EIO
    assert "A00001L8,B00001L8" in m.log()


def test_release_keeps_what_is_verified_on_too_few_copies(reelfs, two_copies):
    archive, src, plan, vols = two_copies
    before = pack_bytes(archive)
    rep = reelfs.json("tape", "release", archive, plan, "--copies", "3")
    assert rep["released"] == [] and len(rep["kept"]) == 3
    assert pack_bytes(archive) == before
    assert reelfs.ok("cat", archive, "main/Day01/A001/A001C002.mov", text=False).stdout == (src / "Day01/A001/A001C002.mov").read_bytes()


def test_recall_brings_back_byte_identical_content_in_tape_order(reelfs, two_copies, tmp_path):
    archive, src, plan, vols = two_copies
    reelfs.json("tape", "release", archive, plan)
    paths = ["main/Day01/SOUND/D004_bwf.wav", "main/Day01/A001/A001C002.mov", "main/Day01/A001/A001C001.mov"]
    rep = reelfs.json("tape", "recall", archive, *paths, "--from", "B00001L8", "--ltfs-mount", vols["B00001L8"])
    assert rep["refused"] == []
    # Tape order (the plan's write order on the cartridge), not the order asked.
    order = [f["tape_path"] for f in reelfs.json("tape", "ls", archive, "--tape", "B00001L8")["files"]]
    assert [f["tape_path"] for f in rep["recalled"]] == [p for p in order if p.startswith("Day01/")]
    out = tmp_path / "out"
    reelfs.ok("restore", archive, "main/Day01", out)
    for rel in ["SOUND/D004_bwf.wav", "A001/A001C001.mov", "A001/A001C002.mov"]:
        assert b3(out / rel) == b3(src / "Day01" / rel), rel
    r = reelfs("check", archive, "--deep")
    assert r.returncode == 0 and "released" not in r.stdout, r.stdout


def test_recall_refuses_a_file_whose_bytes_differ_and_names_it(reelfs, two_copies):
    archive, src, plan, vols = two_copies
    reelfs.json("tape", "release", archive, plan)
    bad = vols["A00001L8"] / "Day01" / "A001" / "A001C001.mov"
    data = bytearray(bad.read_bytes())
    data[1000] ^= 0xFF
    bad.write_bytes(bytes(data))
    r = reelfs("tape", "recall", archive, "main/Day01/A001/A001C001.mov", "main/Day01/A001/A001C002.mov",
               "--from", "A00001L8", "--ltfs-mount", vols["A00001L8"])
    assert r.returncode == 2
    assert "main/Day01/A001/A001C001.mov" in r.stderr and "does not match" in r.stderr, r.stderr
    # The good one came back; the bad one is still released, nothing wrong stored.
    assert reelfs.ok("cat", archive, "main/Day01/A001/A001C002.mov", text=False).stdout == (src / "Day01/A001/A001C002.mov").read_bytes()
    still = reelfs("cat", archive, "main/Day01/A001/A001C001.mov", text=False)
    assert still.returncode != 0 and b"A00001L8" in still.stderr


def test_recall_from_an_emulated_cartridge(reelfs, tmp_path):
    src = tmp_path / "src" / "Day05"
    write_random(src / "C001.mov", 1_500_000)
    write_random(src / "C002.mov", 700_000)
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    reelfs.ok("ingest", archive, src, "-m", "Day 05")
    p = reelfs.json("tape", "plan", archive, "main/Day05", "--capacity", "2T")
    cart = tmp_path / "cart"
    cart.mkdir()
    reelfs.ok("tape", "format", "--device", cart, "--tape", "A00001L8", "--capacity", "100M")
    reelfs.json("tape", "write", archive, p["name"], "--tape", "A00001L8", "--device", cart, "--verify")
    rel = reelfs.json("tape", "release", archive, p["name"], "--copies", "1")
    assert len(rel["released"]) == 2
    rep = reelfs.json("tape", "recall", archive, "main/Day05/C002.mov", "main/Day05/C001.mov", "--from", "A00001L8", "--device", cart)
    blocks = [f["start_block"] for f in rep["recalled"]]
    assert len(blocks) == 2 and blocks == sorted(blocks) and blocks[0] > 0
    out = tmp_path / "out"
    reelfs.ok("restore", archive, "main/Day05", out)
    got = {p.name: b3(p) for p in out.rglob("*.mov")}
    assert got == {"C001.mov": b3(src / "C001.mov"), "C002.mov": b3(src / "C002.mov")}
