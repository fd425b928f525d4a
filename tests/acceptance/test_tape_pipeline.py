"""How `tape write --device` moves a file's bytes (issue 15): full records go to
the emulated cartridge's disk with `O_DIRECT`, not through the page cache (the
copy into the cache was a third of the write's CPU, and a cartridge's worth of
records evicted what the server's other users had cached), and what is on the
cartridge still reads back byte for byte with the MD5 the LTFS index carries.
What a user checks: `fincore` (util-linux) on the record files, the bytes
joined from the records, `tape verify`, and md5 of the file."""

import csv
import hashlib
import re
import subprocess

from helpers import write_random
from test_tape_write_path import direct_io_works

MiB = 1 << 20


def cached_bytes(paths):
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", *map(str, paths)],
                         capture_output=True, text=True, check=True).stdout
    return sum(int(x) for x in out.split())


def test_full_records_bypass_the_page_cache_and_read_back_whole(reelfs, tmp_path):
    src = tmp_path / "card"
    clip = src / "A001C001.mov"
    write_random(clip, 24 * MiB + 12_345)
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    reelfs.ok("ingest", archive, src)
    p = reelfs.json("tape", "plan", archive, "main/card", "--capacity", "2T")
    bc = p["tapes"][0]["barcode"]
    cart = tmp_path / "cart"
    cart.mkdir()
    assert direct_io_works(cart), f"{cart}: this test needs a filesystem that takes O_DIRECT (ext4, xfs)"
    reelfs.ok("tape", "format", "--device", cart, "--tape", bc, "--capacity", "200M")
    out = reelfs.json("tape", "write", archive, p["name"], "--tape", bc, "--device", cart)
    assert [w["tape_path"] for w in out["write"]["written"]] == ["card/A001C001.mov"], out
    records = sorted((f for f in cart.iterdir() if re.fullmatch(r"1_\d+_R", f.name)), key=lambda f: int(f.name.split("_")[1]))
    full = [f for f in records if f.stat().st_size == 512 << 10]
    assert len(full) >= 48, [f.stat().st_size for f in records]
    # 48 full records of the clip (24 MiB): none of them sits in the page cache
    # (before: all of them, 24 MiB).
    cached = cached_bytes(full)
    assert cached <= 1 * MiB, f"{cached} bytes of {len(full)} full records are in the page cache"
    # The bytes are the clip's, and verify (BLAKE3 against the archive) agrees.
    data = clip.read_bytes()
    assert data in b"".join(f.read_bytes() for f in records)
    v = reelfs.json("tape", "verify", archive, "--tape", bc, "--device", cart)
    assert v["mismatches"] == [] and v["verified"] == 1, v
    # The MD5 the catalog recorded (and the LTFS index carries) is the clip's,
    # and no SHA-1 is recorded (README, Tape).
    reelfs.ok("tape", "export", archive, p["name"], tmp_path / "box")
    rows = list(csv.DictReader(open(next((tmp_path / "box").rglob("*.csv")))))
    clip_row = [r for r in rows if r["tape_path"] == "card/A001C001.mov"]
    assert [(r["md5"], r["sha1"]) for r in clip_row] == [(hashlib.md5(data).hexdigest(), "")], clip_row
