"""What `tape write --device` and `tape verify` cost per record and per file
(issue 15): the emulated cartridge appends a record with one create, one write
and one rename (no unlink or stat of names that are not there), a cartridge
can be formatted with a larger LTFS block size (fewer, larger records, as far
as the reference file backend takes them), and verify records what it checked
in a few catalog commits instead of one fsync per file. What a user checks:
the records on the cartridge, the label's block size, the bytes read back, and
what strace counts."""

import re
import subprocess

from helpers import write_random

MiB = 1 << 20


def strace_counts(reelfs, log, *args):
    """Run reelfs under `strace -f -c` and return {syscall: (calls, errors)}."""
    p = subprocess.run(["strace", "-f", "-c", "-o", str(log), str(reelfs.binary), *(str(a) for a in args)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    counts = {}
    for line in log.read_text().splitlines():
        # % time, seconds, usecs/call, calls, [errors,] syscall
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+\s+)?(\w+)\s*$", line)
        if m:
            counts[m.group(3)] = (int(m.group(1)), int(m.group(2) or 0))
    return counts, p


def one_cartridge(reelfs, tmp_path, src, capacity="200M", *format_args):
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    reelfs.ok("ingest", archive, src)
    p = reelfs.json("tape", "plan", archive, f"main/{src.name}", "--capacity", "2T")
    bc = p["tapes"][0]["barcode"]
    cart = tmp_path / "cart"
    cart.mkdir()
    reelfs.ok("tape", "format", "--device", cart, "--tape", bc, "--capacity", capacity, *format_args)
    return archive, p["name"], bc, cart


def data_records(cart):
    return sorted((f for f in cart.iterdir() if re.fullmatch(r"1_\d+_R", f.name)), key=lambda f: int(f.name.split("_")[1]))


def test_appending_a_record_to_an_emulated_cartridge_unlinks_nothing(reelfs, tmp_path):
    src = tmp_path / "card"
    write_random(src / "A001C001.mov", 24 * MiB + 1234)
    archive, plan, bc, cart = one_cartridge(reelfs, tmp_path, src)
    counts, _ = strace_counts(reelfs, tmp_path / "strace.txt", "tape", "write", archive, plan, "--tape", bc, "--device", cart, "--json")
    records = len(data_records(cart))
    assert records >= 49, records  # 24 MiB in 512 KiB records, the catalog files after it
    unlinks = sum(counts.get(s, (0, 0))[0] for s in ("unlink", "unlinkat"))
    renames = sum(counts.get(s, (0, 0))[0] for s in ("rename", "renameat", "renameat2"))
    # Each record: a create and a write (behind the writer); the end-of-data
    # mark is renamed past the records written, never deleted and made again;
    # the few unlinks left are the index partition's rewrite at the end and
    # the catalog's own files, none per record (before: three per record).
    assert unlinks <= 20, f"{unlinks} unlinks for {records} records: {counts}"
    assert renames >= 1, counts
    marks = sorted(f.name for f in cart.iterdir() if f.name.endswith("_E"))
    assert len(marks) == 2, f"one end-of-data mark per partition, after its last record: {marks}"
    for m in marks:
        part, block, _ = m.split("_")
        assert (cart / f"{part}_{int(block) - 1}_R").exists() or (cart / f"{part}_{int(block) - 1}_F").exists(), marks
    rep = reelfs.json("tape", "verify", archive, "--tape", bc, "--device", cart)
    assert rep["mismatches"] == [] and rep["verified"] >= 1, rep
    assert (src / "A001C001.mov").read_bytes() in b"".join(f.read_bytes() for f in data_records(cart))


def test_a_cartridge_formatted_with_a_larger_block_size_holds_fewer_larger_records(reelfs, tmp_path):
    src = tmp_path / "card"
    write_random(src / "A001C001.mov", 9 * MiB + 77)
    write_random(src / "A001C001.xml", 3000)
    archive, plan, bc, cart = one_cartridge(reelfs, tmp_path, src, "200M", "--block-size", "4M")
    label = (cart / "0_2_R").read_text()  # VOL1, a filemark, the LTFS label
    assert "<blocksize>4194304</blocksize>" in label, label
    w = reelfs.json("tape", "write", archive, plan, "--tape", bc, "--device", cart, "--verify")
    assert w["verify"]["mismatches"] == [] and w["verify"]["verified"] == 2, w
    clip = next(f for f in w["write"]["written"] if f["tape_path"].endswith(".mov"))
    first = cart / f"1_{clip['start_block']}_R"
    sizes = [(cart / f"1_{clip['start_block'] + k}_R").stat().st_size for k in range(3)]
    assert sizes == [4 * MiB, 4 * MiB, MiB + 77], sizes
    assert first.read_bytes() == (src / "A001C001.mov").read_bytes()[: 4 * MiB]
    # Recalled from the cartridge, the file is the original.
    reelfs.ok("tape", "release", archive, plan, "--copies", "1")
    reelfs.ok("tape", "recall", archive, "main/card/A001C001.mov", "--from", bc, "--device", cart)
    back = reelfs.ok("cat", archive, "main/card/A001C001.mov", text=False).stdout
    assert back == (src / "A001C001.mov").read_bytes()


def test_a_block_size_the_reference_would_refuse_is_refused_with_what_to_give(reelfs, tmp_path):
    cart = tmp_path / "cart"
    cart.mkdir()
    for bad in ("8M", "5000", "2K"):
        p = reelfs("tape", "format", "--device", cart, "--tape", "A00001L8", "--block-size", bad)
        assert p.returncode != 0, p.stdout
        assert "--block-size" in p.stderr and "multiple of 4K from 4K to 4M" in p.stderr, p.stderr
    # Nothing was written to the cartridge.
    assert not any(re.fullmatch(r"[01]_\d+_[RFE]", f.name) for f in cart.iterdir())


def _planned_sidecars(reelfs, tmp_path):
    """120 small sidecar files ingested and planned onto one cartridge; an empty
    folder for the LTFS mount. Returns (source, archive, plan, barcode, volume)."""
    src = tmp_path / "sidecars"
    for i in range(120):
        write_random(src / f"A001C{i:03d}.xml", 4096 * (1 + i % 4))
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    reelfs.ok("ingest", archive, src)
    p = reelfs.json("tape", "plan", archive, "main/sidecars", "--capacity", "2T")
    vol = tmp_path / "vol"
    vol.mkdir()
    return src, archive, p, p["tapes"][0]["barcode"], vol


def test_verify_of_many_small_files_commits_the_catalog_a_few_times_not_per_file(reelfs, tmp_path):
    src, archive, p, bc, vol = _planned_sidecars(reelfs, tmp_path)
    reelfs.ok("tape", "write", archive, p["name"], "--tape", bc, "--ltfs-mount", vol)
    # One file damaged among the good ones: reading ahead must still blame it alone.
    victim = vol / "sidecars" / "A001C050.xml"
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    log = tmp_path / "strace.txt"
    p2 = subprocess.run(["strace", "-f", "-c", "-o", str(log), str(reelfs.binary), "tape", "verify", str(archive),
                         "--tape", bc, "--ltfs-mount", str(vol), "--json"], capture_output=True, text=True, timeout=600)
    assert p2.returncode == 2, p2.stdout + p2.stderr
    syncs = 0
    for line in log.read_text().splitlines():
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+\s+)?(fsync|fdatasync)\s*$", line)
        if m:
            syncs += int(m.group(1))
    assert syncs < 30, f"{syncs} fsyncs to verify 120 files"
    files = {f["tape_path"]: f["state"] for f in reelfs.json("tape", "ls", archive, "--tape", bc)["files"]}
    assert files.pop("sidecars/A001C050.xml") == "bad"
    sidecars = {k: v for k, v in files.items() if k.startswith("sidecars/")}
    assert len(sidecars) == 119 and set(sidecars.values()) == {"verified"}, files


def test_a_file_the_archive_cannot_read_is_named_and_the_files_read_ahead_after_it_are_whole(reelfs, tmp_path):
    """The archive reader runs ahead of the writer across files: a damaged
    file in the middle of a cartridge is named and left out, and the files
    on either side of it are on the volume byte for byte."""
    src = tmp_path / "src"
    write_random(src / "a" / "A001C001.mov", 5 * MiB)
    write_random(src / "a" / "A001C001.xml", 2000)
    write_random(src / "b" / "B001C001.mov", 6 * MiB)
    write_random(src / "c" / "C001C001.mov", 5 * MiB + 3)
    write_random(src / "c" / "C001C002.xml", 4000)
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    packs = set()
    for card in ("a", "b", "c"):
        reelfs.ok("ingest", archive, src / card)
        if card == "b":
            # Flip one byte in the middle of B's pack (the one this ingest made).
            (pack,) = set((archive / "packs").rglob("*.pack")) - packs
            with open(pack, "r+b") as f:
                f.seek(3 * MiB)
                b = f.read(1)
                f.seek(3 * MiB)
                f.write(bytes([b[0] ^ 0xFF]))
        packs = set((archive / "packs").rglob("*.pack"))
    p = reelfs.json("tape", "plan", archive, "main/a", "main/b", "main/c", "--capacity", "2T")
    bc = p["tapes"][0]["barcode"]
    vol = tmp_path / "vol"
    vol.mkdir()
    out = reelfs.json("tape", "write", archive, p["name"], "--tape", bc, "--ltfs-mount", vol, expect_rc=2)["write"]
    assert [f["tape_path"] for f in out["failed"]] == ["b/B001C001.mov"], out
    written = sorted(f["tape_path"] for f in out["written"])
    assert written == ["a/A001C001.mov", "a/A001C001.xml", "c/C001C001.mov", "c/C001C002.xml"], out
    for rel in written:
        assert (vol / rel).read_bytes() == (src / rel).read_bytes(), rel
    assert not (vol / "b" / "B001C001.mov").exists()


def test_writing_many_small_files_onto_a_mount_flushes_them_in_batches_not_one_by_one(reelfs, tmp_path):
    """`tape write --ltfs-mount` flushes (fsyncs) the files it completed together,
    just before the catalog records them, instead of each at its close: on a disk
    each flush point is a journal commit, on an LTFS mount a drive flush. Counted
    as strace sees it: an fsync that follows some other write is a flush point."""
    src, archive, p, bc, vol = _planned_sidecars(reelfs, tmp_path)
    log = tmp_path / "strace.txt"
    r = subprocess.run(["strace", "-f", "-o", str(log), "-e", "trace=fsync,fdatasync,write,pwrite64",
                        str(reelfs.binary), "tape", "write", str(archive), p["name"], "--tape", bc,
                        "--ltfs-mount", str(vol), "--json"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    flush_points, fsyncs, last = 0, 0, None
    for line in log.read_text().splitlines():
        m = re.match(r"\d+\s+(?:<\.\.\. )?(fsync|fdatasync|write|pwrite64)\b", line)
        if not m:
            continue
        call = m.group(1)
        if call in ("fsync", "fdatasync"):
            fsyncs += 1
            if last not in ("fsync", "fdatasync"):
                flush_points += 1
        last = call
    # Every file is still flushed before it is recorded (120 fsyncs at least).
    assert fsyncs >= 120, f"{fsyncs} fsyncs for 120 files"
    assert flush_points < 30, f"{flush_points} separate flush points to write 120 files"
    # And every file is on the volume, whole, and recorded as written.
    for f in src.iterdir():
        assert (vol / "sidecars" / f.name).read_bytes() == f.read_bytes()
    files = {f["tape_path"]: f["state"] for f in reelfs.json("tape", "ls", archive, "--tape", bc)["files"]}
    sidecars = {k: v for k, v in files.items() if k.startswith("sidecars/")}
    assert len(sidecars) == 120 and set(sidecars.values()) == {"written"}, files
