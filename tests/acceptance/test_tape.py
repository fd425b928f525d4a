"""Tape workflow (issue 15): plan, write onto an LTFS mount, verify, ls, where,
export. Plain folders stand in for LTFS mounts (to reelfs an LTFS mount is a
folder); a small tmpfs gives a real ENOSPC mid-file, as a full cartridge does.
ASC MHL manifests are checked with `ascmhl` (PyPI), a third-party tool."""

import csv
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import b3, write_random

ASCMHL = Path(sys.executable).parent / "ascmhl"
BARCODE = re.compile(r"^[A-Z][0-9]{5}L8$")


def md5(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@pytest.fixture
def shot(tmp_path, reelfs, media_dir):
    """An archive with one day of footage: a real ProRes clip and BWF, and
    camera-card-like folders of smaller files. Returns (archive, source dir)."""
    src = tmp_path / "src" / "Day01"
    (src / "A001").mkdir(parents=True)
    (src / "SOUND").mkdir(parents=True)
    shutil.copy(media_dir / "D004_bwf.wav", src / "SOUND" / "D004_bwf.wav")
    write_random(src / "A001" / "A001C001.mov", 1_500_000)
    write_random(src / "A001" / "A001C002.mov", 2_600_000)  # larger than a cartridge below: split
    write_random(src / "A001" / "A001C003.mov", 300_000)
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    reelfs.ok("ingest", archive, src, "-m", "Day 01")
    return archive, src


def plan(reelfs, archive, *args):
    return reelfs.json("tape", "plan", archive, "main/Day01", "--capacity", "2M", *args)


def write(reelfs, archive, plan_name, barcode, mnt, *extra, expect_rc=0):
    mnt.mkdir(parents=True, exist_ok=True)
    return reelfs.json("tape", "write", archive, plan_name, "--tape", barcode, "--ltfs-mount", mnt, *extra, expect_rc=expect_rc)


def join_parts(mounts, tape_path, parts):
    """`cat` of the parts, in order, from whichever folder holds each."""
    names = [f"{tape_path}.part{n:03d}of{parts:03d}" for n in range(1, parts + 1)]
    found = []
    for n in names:
        hits = [m / n for m in mounts if (m / n).is_file()]
        assert hits, f"{n} is on none of {mounts}"
        found.append(str(hits[0]))
    return subprocess.run(["cat", *found], capture_output=True, check=True).stdout


def test_plan_lays_out_cartridges_with_lto_barcodes_and_splits(reelfs, shot):
    archive, src = shot
    p = plan(reelfs, archive, "--copies", "2", "--pool", "ShowX")
    assert p["name"] == "plan-1" and p["pool"] == "ShowX" and p["copies"] == 2
    assert p["files"] == 4
    tapes = p["tapes"]
    assert all(BARCODE.match(t["barcode"]) for t in tapes), tapes
    copy1 = [t for t in tapes if t["copy"] == 1]
    copy2 = [t for t in tapes if t["copy"] == 2]
    assert [t["barcode"][0] for t in copy1] == ["A"] * len(copy1)
    assert [t["barcode"][0] for t in copy2] == ["B"] * len(copy2)
    assert len(copy1) == len(copy2) >= 3
    # Every byte once per copy; no cartridge over what it may hold.
    total = sum(f.stat().st_size for f in src.rglob("*") if f.is_file())
    assert sum(t["bytes"] for t in copy1) == total == p["bytes"]
    assert all(t["bytes"] <= p["usable"] < p["capacity"] for t in tapes)
    assert [s["source"] for s in p["splits"]] == ["main/Day01/A001/A001C002.mov"]
    assert p["splits"][0]["parts"] == len(p["splits"][0]["barcodes"]) >= 2
    # A second plan numbers its barcodes after the first's: a volume serial is never reused.
    p2 = plan(reelfs, archive)
    assert p2["name"] == "plan-2"
    assert not {t["barcode"] for t in p2["tapes"]} & {t["barcode"] for t in tapes}
    listing = reelfs.json("tape", "ls", archive)
    assert {c["barcode"] for c in listing["cartridges"]} == {t["barcode"] for t in tapes + p2["tapes"]}


def test_write_verify_xattrs_mhl_and_split_join(reelfs, shot, tmp_path):
    archive, src = shot
    p = plan(reelfs, archive)
    mounts = []
    for t in p["tapes"]:
        mnt = tmp_path / "ltfs" / t["barcode"]
        out = write(reelfs, archive, p["name"], t["barcode"], mnt, "--verify")
        assert out["write"]["abandoned"] is None and out["write"]["failed"] == []
        assert out["verify"]["mismatches"] == [] and out["verify"]["verified"] == len(out["write"]["written"])
        mounts.append(mnt)
        # The set catalog and the manifest are on every cartridge.
        assert (mnt / "reelfs-catalog" / f"{p['name']}.json").is_file()
        assert (mnt / "ascmhl" / "ascmhl_chain.xml").is_file()
    # Whole files are byte-identical under their archive paths, with LTFS hash xattrs.
    for rel in ["Day01/A001/A001C001.mov", "Day01/A001/A001C003.mov", "Day01/SOUND/D004_bwf.wav"]:
        on = [m / rel for m in mounts if (m / rel).is_file()]
        assert len(on) == 1, rel
        assert b3(on[0]) == b3(src.parent / rel)
        assert os.getxattr(on[0], "user.ltfs.hash.md5sum").decode() == md5(src.parent / rel)
        # No SHA-1 attribute: nothing reads it (README, Tape).
        assert "user.ltfs.hash.sha1sum" not in os.listxattr(on[0])
        # The camera original's modification time, not the time it was written.
        assert os.stat(on[0]).st_mtime_ns == os.stat(src.parent / rel).st_mtime_ns, rel
    # The split file: `cat` of the parts gives the original.
    split = p["splits"][0]
    joined = join_parts(mounts, "Day01/A001/A001C002.mov", split["parts"])
    assert joined == (src / "A001" / "A001C002.mov").read_bytes()
    # The join list on tape says the same.
    joins = (mounts[-1] / "reelfs-catalog" / f"{p['name']}-joins.txt").read_text()
    assert "cat 'Day01/A001/A001C002.mov.part001of" in joins and "> 'Day01/A001/A001C002.mov'" in joins
    # The CSV lists every file with its cartridge and MD5.
    rows = list(csv.DictReader(open(mounts[-1] / "reelfs-catalog" / f"{p['name']}.csv")))
    wav = [r for r in rows if r["tape_path"] == "Day01/SOUND/D004_bwf.wav"]
    assert len(wav) == 1 and wav[0]["md5"] == md5(src / "SOUND" / "D004_bwf.wav")
    # ASC MHL: the reference tool re-verifies each cartridge against the manifest
    # (a new generation that checks every file), and catches a flipped byte.
    for mnt in mounts:
        check = tmp_path / "mhlcheck" / mnt.name
        shutil.copytree(mnt, check)
        proc = subprocess.run([str(ASCMHL), "create", str(check), "-h", "xxh64", "-v"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "mismatch" not in (proc.stdout + proc.stderr).lower()
        on_tape = [f.relative_to(check).as_posix() for f in check.rglob("*") if f.is_file() and "ascmhl" not in f.parts]
        for rel in on_tape:
            assert re.search(rf"verified\s+{re.escape(rel)}\s+xxh64: OK", proc.stdout), (rel, proc.stdout)
    damaged = tmp_path / "mhl-damaged"
    shutil.copytree(mounts[0], damaged)
    victim = next(f for f in damaged.rglob("*.mov*") if f.is_file())
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    proc = subprocess.run([str(ASCMHL), "create", str(damaged), "-h", "xxh64"], capture_output=True, text=True)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    # ls and where, offline.
    where = reelfs.json("tape", "where", archive, "main/Day01/A001/A001C002.mov")
    assert [c["part"] for c in where["copies"]] == list(range(1, split["parts"] + 1))
    assert all(c["state"] == "verified" for c in where["copies"])
    files = reelfs.json("tape", "ls", archive, "--tape", p["tapes"][0]["barcode"])["files"]
    assert files and all(f["state"] == "verified" for f in files)


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MiB tmpfs: a cartridge that fills up mid-file with a real ENOSPC."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def test_enospc_mid_file_abandons_it_and_the_rest_goes_to_the_next_cartridge(reelfs, tmp_path, small_tmpfs):
    src = tmp_path / "src" / "Day02"
    for i in range(1, 4):
        write_random(src / "B001" / f"B001C00{i}.mov", 400_000)
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    reelfs.ok("ingest", archive, src, "-m", "Day 02")
    p = reelfs.json("tape", "plan", archive, "main/Day02", "--capacity", "20M")
    assert [t["barcode"] for t in p["tapes"]] == ["A00001L8"]
    out = write(reelfs, archive, p["name"], "A00001L8", small_tmpfs, expect_rc=2)["write"]
    ab = out["abandoned"]
    assert ab is not None and "end of medium" in ab["error"], out
    done = [w["tape_path"] for w in out["written"]]
    assert len(done) >= 1 and ab["tape_path"] not in done
    # Nothing half-written is left under the abandoned name; what completed is whole.
    assert not (small_tmpfs / ab["tape_path"]).exists()
    for rel in done:
        assert b3(small_tmpfs / rel) == b3(src.parent / rel)
    # The rest went to a new cartridge of the same copy, in plan order.
    assert out["moved_to"] == "A00002L8" and out["moved"] == 3 - len(done)
    first = reelfs.json("tape", "ls", archive, "--tape", "A00001L8")
    assert first["cartridge"]["state"] == "full"
    states = {f["tape_path"]: f["state"] for f in first["files"]}
    assert states[ab["tape_path"]] == "abandoned"
    assert all(states[d] == "written" for d in done)
    out2 = write(reelfs, archive, p["name"], "A00002L8", tmp_path / "next", "--verify")
    assert {w["tape_path"] for w in out2["write"]["written"]} == {f"Day02/B001/B001C00{i}.mov" for i in range(1, 4)} - set(done)
    where = reelfs.json("tape", "where", archive, f"main/{ab['tape_path']}")
    assert {(c["barcode"], c["state"]) for c in where["copies"]} == {("A00001L8", "abandoned"), ("A00002L8", "verified")}


def test_verify_names_a_mismatch_and_queues_the_file_for_the_next_cartridge(reelfs, shot, tmp_path):
    archive, src = shot
    p = reelfs.json("tape", "plan", archive, "main/Day01/SOUND", "--capacity", "20M")
    mnt = tmp_path / "ltfs"
    write(reelfs, archive, p["name"], "A00001L8", mnt)
    victim = mnt / "Day01/SOUND/D004_bwf.wav"
    data = bytearray(victim.read_bytes())
    data[1000] ^= 0x01
    victim.write_bytes(bytes(data))
    proc = reelfs("tape", "verify", archive, "--tape", "A00001L8", "--ltfs-mount", mnt)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "MISMATCH Day01/SOUND/D004_bwf.wav" in proc.stderr and "A00002L8" in proc.stderr
    where = reelfs.json("tape", "where", archive, "main/Day01/SOUND/D004_bwf.wav")
    assert {(c["barcode"], c["state"]) for c in where["copies"]} == {("A00001L8", "bad"), ("A00002L8", "queued")}


def test_export_writes_json_csv_html_and_mhl_and_never_overwrites(reelfs, shot, tmp_path):
    archive, src = shot
    p = plan(reelfs, archive)
    first = p["tapes"][0]["barcode"]
    write(reelfs, archive, p["name"], first, tmp_path / "ltfs")
    out = tmp_path / "box"
    rep = reelfs.json("tape", "export", archive, p["name"], out)
    names = {Path(f).relative_to(out).as_posix() for f in rep["files"]}
    assert {f"{p['name']}.json", f"{p['name']}.csv", f"{p['name']}.html", f"{p['name']}-joins.txt", f"{first}/ascmhl/ascmhl_chain.xml"} <= names
    cat = json.loads((out / f"{p['name']}.json").read_text())
    assert {c["barcode"] for c in cat["cartridges"]} == {t["barcode"] for t in p["tapes"]}
    html = (out / f"{p['name']}.html").read_text()
    assert all(t["barcode"] in html for t in p["tapes"]) and "A001C002.mov.part001of" in html
    # The exported manifest verifies the files of that cartridge with ascmhl.
    shutil.copytree(tmp_path / "ltfs" / "Day01", out / first / "Day01")
    proc = subprocess.run([str(ASCMHL), "create", str(out / first), "-h", "xxh64"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    again = reelfs("tape", "export", archive, p["name"], out)
    assert again.returncode == 1 and "exists already" in again.stderr


def test_bad_input_is_refused_with_what_to_do(reelfs, shot, tmp_path):
    archive, src = shot
    p = plan(reelfs, archive)
    mnt = tmp_path / "ltfs"
    mnt.mkdir()
    r = reelfs("tape", "write", archive, "no-such-plan", "--tape", "A00001L8", "--ltfs-mount", mnt)
    assert r.returncode == 1 and "no tape plan named 'no-such-plan'" in r.stderr and "tape ls" in r.stderr
    r = reelfs("tape", "write", archive, p["name"], "--tape", "Z99999L8", "--ltfs-mount", mnt)
    assert r.returncode == 1 and "no cartridge Z99999L8" in r.stderr
    r = reelfs("tape", "verify", archive, "--tape", "Z99999L8", "--ltfs-mount", mnt)
    assert r.returncode == 1 and "no cartridge Z99999L8" in r.stderr
    r = reelfs("tape", "write", archive, p["name"], "--tape", "A00001L8")
    assert r.returncode == 1 and "--ltfs-mount DIR" in r.stderr
    r = reelfs("tape", "write", archive, p["name"], "--tape", "A00001L8", "--device", tmp_path / "dev")
    # No such device: the error names it and says what --device takes.
    assert r.returncode == 1 and "cannot open device" in r.stderr and "reelfs tape format" in r.stderr
    r = reelfs("tape", "write", archive, p["name"], "--tape", "A00001L8", "--ltfs-mount", tmp_path / "missing")
    assert r.returncode == 1 and "--ltfs-mount" in r.stderr
    # An emulated cartridge's folder that does not exist yet: make it first
    # (a mistyped drive path must not become a folder).
    r = reelfs("tape", "format", "--device", tmp_path / "cart-new", "--tape", "A00001L8", "--capacity", "100M")
    assert r.returncode == 1 and "does not exist" in r.stderr and "mkdir -p" in r.stderr, r.stderr
    assert not (tmp_path / "cart-new").exists()
    r = reelfs("tape", "plan", archive, "main/Day01", "--generation", "LTO-99")
    assert r.returncode == 1 and "LTO-8" in r.stderr
    r = reelfs("tape", "plan", archive, "main/Day01", "--capacity", "12X")
    assert r.returncode != 0 and "capacity" in r.stderr
    r = reelfs("tape", "plan", archive, "main/NoSuchFolder")
    assert r.returncode == 1 and "main/NoSuchFolder" in r.stderr
    r = reelfs("tape", "where", archive, "main/Day01/nothing.mov")
    assert r.returncode == 1 and "no tape plan" in r.stderr
    assert list(mnt.iterdir()) == []


def test_a_path_with_dotdot_in_the_catalog_never_leaves_the_volume_or_export_dir(reelfs, shot, tmp_path):
    archive, src = shot
    p = reelfs.json("tape", "plan", archive, "main/Day01/SOUND", "--capacity", "20M")
    db = sqlite3.connect(archive / "catalog.db")
    db.execute("UPDATE tape_items SET tape_path = '../../escaped.wav' WHERE barcode = 'A00001L8'")
    db.commit()
    box = tmp_path / "deep" / "er"
    mnt = box / "ltfs"
    mnt.mkdir(parents=True)
    out = write(reelfs, archive, p["name"], "A00001L8", mnt, expect_rc=2)["write"]
    assert out["written"] == [] and "refusing the path '../../escaped.wav'" in out["failed"][0]["error"]
    assert not (tmp_path / "escaped.wav").exists() and not (box / "escaped.wav").exists()
    assert not any(f.name == "escaped.wav" for f in tmp_path.rglob("*"))
    # A barcode made into a path is refused by export, which writes nothing.
    db.execute("UPDATE tape_cartridges SET barcode = '../../x' WHERE barcode = 'A00001L8'")
    db.commit()
    db.close()
    dest = box / "export"
    r = reelfs("tape", "export", archive, p["name"], dest)
    assert r.returncode == 1 and "not a barcode" in r.stderr
    assert not (box / "x").exists() and not (tmp_path / "x").exists()


def test_write_and_verify_through_reelfs_own_ltfs_writer_on_an_emulated_cartridge(reelfs, shot, tmp_path):
    """`--device DIR`: the plan goes onto a cartridge reelfs formats and writes
    itself (no LTFS driver), files land on the data partition with their start
    blocks in the tape catalog, and `tape verify` reads them back off it."""
    archive, src = shot
    p = reelfs.json("tape", "plan", archive, "main/Day01", "--capacity", "50M")
    barcode = p["tapes"][0]["barcode"]
    cart = tmp_path / "cart"
    cart.mkdir()
    reelfs.ok("tape", "format", "--device", cart, "--tape", barcode, "--capacity", "100M")
    out = reelfs.json("tape", "write", archive, p["name"], "--tape", barcode, "--device", cart, "--verify")
    assert out["verify"]["mismatches"] == [] and out["verify"]["verified"] == 4, out
    rep = reelfs.json("tape", "verify", archive, "--tape", barcode, "--device", cart)
    assert rep["mismatches"] == [] and rep["verified"] == 4, rep
    where = reelfs.json("tape", "where", archive, "main/Day01/A001/A001C002.mov")
    (copy,) = where["copies"]
    assert copy["state"] == "verified" and copy["partition"] == "b" and copy["start_block"] > 0, where
    # The cartridge is records in the reference file-backend layout: data
    # records on partition 1 (b), an end-of-data mark on each partition.
    names = {f.name for f in cart.iterdir()}
    assert "0_0_R" in names and any(n.startswith("1_") and n.endswith("_E") for n in names)
    # Every byte of the original is on the data partition, in its records.
    data = b"".join((cart / n).read_bytes() for n in sorted((n for n in names if n.startswith("1_") and n.endswith("_R")), key=lambda n: int(n.split("_")[1])))
    original = (src / "A001" / "A001C002.mov").read_bytes()
    assert original in data
