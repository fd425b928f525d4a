"""Tape write interrupted (issue 15): Ctrl-C (SIGINT) or SIGTERM stops at a
safe point, a kill -9 mid-file leaves a partial file that the rerun removes,
and in every case the volume holds only whole files, the tape catalog says
exactly which, and a rerun completes the cartridge.

The large file is zeros (sparse at the source, one chunk in the archive) so
the test media stays small while writing it takes long enough to be caught
mid-file: its four hashes are computed as it is written."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import b3, write_random

BIG = 256 << 20
BIG_PATH = "Day03/A/A002.mov"


@pytest.fixture
def day3(tmp_path, reelfs):
    """An archive with a small file, a large one and a small one, in that
    plan order, and a one-cartridge plan. Returns (archive, source, plan, barcode)."""
    src = tmp_path / "src" / "Day03"
    write_random(src / "A" / "A001.mov", 300_000)
    with open(src / "A" / "A002.mov", "wb") as f:
        f.truncate(BIG)
    write_random(src / "A" / "A003.mov", 200_000)
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    reelfs.ok("ingest", archive, src, "-m", "Day 03")
    p = reelfs.json("tape", "plan", archive, "main/Day03", "--capacity", "2T")
    (tape,) = p["tapes"]
    return archive, src.parent, p["name"], tape["barcode"]


def start_write(reelfs, archive, plan, barcode, *where):
    return reelfs.popen("tape", "write", archive, plan, "--tape", barcode, *where, "--json",
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_partial(proc, path, full):
    """Poll until `path` exists holding part of its `full` size; True when
    caught mid-file, False when the process ended or the file completed first."""
    while proc.poll() is None:
        try:
            n = path.stat().st_size
        except FileNotFoundError:
            time.sleep(0.001)
            continue
        if 0 < n < full:
            return True
        if n >= full:
            return False
        time.sleep(0.001)
    return False


def tape_files(vol):
    """Files on a folder-volume, catalog and manifest left out."""
    return {str(p.relative_to(vol)) for p in vol.rglob("*") if p.is_file()
            and not str(p.relative_to(vol)).startswith(("reelfs-catalog", "ascmhl"))}


def catalog_states(reelfs, archive, barcode):
    ls = reelfs.json("tape", "ls", archive, "--tape", barcode)
    return {f["tape_path"]: f["state"] for f in ls["files"]}, ls["cartridge"]["state"]


def assert_only_whole_files(vol, src):
    for rel in tape_files(vol):
        assert b3(vol / rel) == b3(src / rel), f"{rel} on the volume differs from the original"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_signal_mid_file_on_an_ltfs_mount_stops_safely_and_a_rerun_completes(reelfs, day3, tmp_path, sig):
    archive, src, plan, barcode = day3
    vol = tmp_path / "ltfs"
    vol.mkdir()
    proc = start_write(reelfs, archive, plan, barcode, "--ltfs-mount", vol)
    caught = wait_partial(proc, vol / BIG_PATH, BIG)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=600)
    assert caught, "the write ended before the large file could be caught mid-file"
    assert proc.returncode == 130, (proc.returncode, err)
    rep = json.loads(out)["write"]
    assert rep["interrupted"] is True
    # Exactly the complete files are on the volume, byte for byte; the file
    # being written was abandoned, not left truncated under its name.
    on_vol = tape_files(vol)
    assert on_vol == {w["tape_path"] for w in rep["written"]}
    assert BIG_PATH not in on_vol
    assert_only_whole_files(vol, src)
    # The catalog says the same: written = on the volume, the rest queued,
    # the cartridge still open for the rerun.
    states, cart_state = catalog_states(reelfs, archive, barcode)
    assert {p for p, s in states.items() if s == "written"} == on_vol
    assert {p for p, s in states.items() if s != "written"} == {BIG_PATH, "Day03/A/A003.mov"} - on_vol
    assert all(s in ("written", "queued") for s in states.values()), states
    assert cart_state == "planned"
    # The rerun continues with what is queued, verifies, and closes the cartridge.
    again = reelfs.json("tape", "write", archive, plan, "--tape", barcode, "--ltfs-mount", vol, "--verify")
    assert again["write"]["removed_partial"] == []
    assert again["verify"]["mismatches"] == [] and again["verify"]["verified"] == 3, again
    assert tape_files(vol) == {"Day03/A/A001.mov", BIG_PATH, "Day03/A/A003.mov"}
    assert_only_whole_files(vol, src)
    states, cart_state = catalog_states(reelfs, archive, barcode)
    assert set(states.values()) == {"verified"} and cart_state == "written"


def test_kill_9_mid_file_leaves_a_partial_that_the_rerun_removes_and_says_so(reelfs, day3, tmp_path):
    archive, src, plan, barcode = day3
    vol = tmp_path / "ltfs"
    vol.mkdir()
    proc = start_write(reelfs, archive, plan, barcode, "--ltfs-mount", vol)
    caught = wait_partial(proc, vol / BIG_PATH, BIG)
    proc.kill()
    proc.communicate(timeout=600)
    assert caught, "the write ended before the large file could be caught mid-file"
    partial = (vol / BIG_PATH).stat().st_size
    assert 0 < partial < BIG
    states, _ = catalog_states(reelfs, archive, barcode)
    assert states[BIG_PATH] == "queued"
    # The rerun removes the truncated file first, says so, and writes it whole.
    r = reelfs("tape", "write", archive, plan, "--tape", barcode, "--ltfs-mount", vol, "--verify")
    assert r.returncode == 0, r.stderr
    assert f"removed {BIG_PATH}" in r.stderr and "killed" in r.stderr, r.stderr
    assert (vol / BIG_PATH).stat().st_size == BIG
    assert_only_whole_files(vol, src)
    states, cart_state = catalog_states(reelfs, archive, barcode)
    assert set(states.values()) == {"verified"} and cart_state == "written", states


def test_kill_9_mid_file_rerun_reports_the_removed_partial_in_json(reelfs, day3, tmp_path):
    archive, src, plan, barcode = day3
    vol = tmp_path / "ltfs"
    vol.mkdir()
    proc = start_write(reelfs, archive, plan, barcode, "--ltfs-mount", vol)
    caught = wait_partial(proc, vol / BIG_PATH, BIG)
    proc.kill()
    proc.communicate(timeout=600)
    assert caught
    partial = (vol / BIG_PATH).stat().st_size
    out = reelfs.json("tape", "write", archive, plan, "--tape", barcode, "--ltfs-mount", vol)
    assert out["write"]["removed_partial"] == [{"tape_path": BIG_PATH, "bytes": partial}]
    assert b3(vol / BIG_PATH) == b3(src / BIG_PATH)


def test_ctrl_c_mid_file_on_an_emulated_cartridge_leaves_an_index_of_whole_files(reelfs, day3, tmp_path):
    """`--device`: after Ctrl-C the index on the cartridge lists exactly the
    complete files (`tape verify` reads the volume back through it), and the
    rerun appends the rest to the same cartridge."""
    archive, src, plan, barcode = day3
    cart = tmp_path / "cart"
    cart.mkdir()
    reelfs.ok("tape", "format", "--device", cart, "--tape", barcode, "--capacity", "1G")
    before = {p.name for p in cart.iterdir()}
    proc = start_write(reelfs, archive, plan, barcode, "--device", cart)
    # Data records of the large file appear on partition 1 while it is written.
    while proc.poll() is None:
        records = [p for p in cart.iterdir() if p.name not in before and p.name.startswith("1_") and p.name.endswith("_R")]
        if len(records) >= 8:
            break
        time.sleep(0.001)
    caught = proc.poll() is None
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=600)
    assert caught, "the write ended before the large file could be caught mid-file"
    assert proc.returncode == 130, (proc.returncode, err)
    rep = json.loads(out)["write"]
    written = {w["tape_path"] for w in rep["written"]}
    assert BIG_PATH not in written
    states, cart_state = catalog_states(reelfs, archive, barcode)
    assert {p for p, s in states.items() if s == "written"} == written
    assert cart_state == "planned"
    # What the volume's index lists is read back and matches the archive.
    v = reelfs.json("tape", "verify", archive, "--tape", barcode, "--device", cart)
    assert v["mismatches"] == [] and v["verified"] == len(written), v
    again = reelfs.json("tape", "write", archive, plan, "--tape", barcode, "--device", cart, "--verify")
    assert again["verify"]["mismatches"] == [] and again["verify"]["verified"] == 3, again
    states, cart_state = catalog_states(reelfs, archive, barcode)
    assert set(states.values()) == {"verified"} and cart_state == "written"


def test_kill_9_on_an_emulated_cartridge_rerun_rewrites_what_no_index_listed(reelfs, day3, tmp_path):
    """A kill -9 leaves the cartridge at its last index: a file completed after
    it is recorded written but is not on the tape. The rerun writes it again on
    the same cartridge, so verify finds every file there and nothing moves on."""
    archive, src, plan, barcode = day3
    cart = tmp_path / "cart"
    cart.mkdir()
    reelfs.ok("tape", "format", "--device", cart, "--tape", barcode, "--capacity", "1G")
    before = {p.name for p in cart.iterdir()}
    proc = start_write(reelfs, archive, plan, barcode, "--device", cart)
    while proc.poll() is None:
        records = [p for p in cart.iterdir() if p.name not in before and p.name.startswith("1_") and p.name.endswith("_R")]
        if len(records) >= 8:
            break
        time.sleep(0.001)
    caught = proc.poll() is None
    proc.kill()
    proc.communicate(timeout=600)
    assert caught, "the write ended before the large file could be caught mid-file"
    states, _ = catalog_states(reelfs, archive, barcode)
    assert states["Day03/A/A001.mov"] == "written"
    again = reelfs.json("tape", "write", archive, plan, "--tape", barcode, "--device", cart, "--verify")
    assert again["write"]["moved_to"] is None, again
    assert "Day03/A/A001.mov" in {w["tape_path"] for w in again["write"]["written"]}
    assert again["verify"]["mismatches"] == [] and again["verify"]["verified"] == 3, again
    states, cart_state = catalog_states(reelfs, archive, barcode)
    assert set(states.values()) == {"verified"} and cart_state == "written"
