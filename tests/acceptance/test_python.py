"""(The coverage work of issue 17: CLI behaviour no acceptance test checked.)
What `reelfs tape …` prints for a person (no --json): an operator at the
library reads the barcodes to load, the files written and verified, and where a
file is. Every line must name the same things the --json result holds."""

import shutil


def test_tape_commands_print_what_an_operator_needs(reelfs, media_dir, tmp_path):
    card = tmp_path / "A001"
    card.mkdir()
    shutil.copy(media_dir / "D004_bwf.wav", card / "D004_bwf.wav")
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    reelfs.ok("ingest", archive, card, "--to", "Day01")
    out = reelfs.ok("tape", "plan", archive, "main/Day01", "--capacity", "20M", "--copies", "1", "--name", "day01").stdout
    assert "plan day01 (pool" in out and "1 copy)" in out and "BARCODE" in out
    barcode = out.splitlines()[2].split()[0]
    assert barcode.endswith("L8") and "1 files" in out and "on 1 cartridges" in out
    mnt = tmp_path / "ltfs"
    mnt.mkdir()
    w = reelfs.ok("tape", "write", archive, "day01", "--tape", barcode, "--ltfs-mount", mnt, "--verify").stdout
    assert f"{barcode}: 1 files" in w and "set catalog and ASC MHL manifest written last" in w
    assert f"{barcode}: 1 files verified" in w and "0 mismatches" in w
    ls = reelfs.ok("tape", "ls", archive).stdout
    assert ls.splitlines()[0].split()[:3] == ["BARCODE", "PLAN", "POOL"] and barcode in ls and "day01" in ls
    one = reelfs.ok("tape", "ls", archive, "--tape", barcode).stdout
    assert one.startswith(f"{barcode} (plan day01, copy 1") and "Day01/A001/D004_bwf.wav  <-  main/Day01/A001/D004_bwf.wav" in one
    where = reelfs.ok("tape", "where", archive, "main/Day01/A001/D004_bwf.wav").stdout
    assert where.splitlines()[0] == "main/Day01/A001/D004_bwf.wav" and barcode in where
    # A changed file on the volume: the operator is told which, and where its fresh copy goes.
    victim = mnt / "Day01" / "A001" / "D004_bwf.wav"
    data = bytearray(victim.read_bytes())
    data[1000] ^= 1
    victim.write_bytes(bytes(data))
    p = reelfs("tape", "verify", archive, "--tape", barcode, "--ltfs-mount", mnt)
    assert p.returncode == 2 and "MISMATCH Day01/A001/D004_bwf.wav" in p.stderr and "1 mismatch" in p.stdout
