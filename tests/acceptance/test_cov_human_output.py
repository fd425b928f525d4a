"""(The coverage work of issue 17: CLI behaviour no acceptance test checked.)
What `merge` and `status` print for a person (no --json): a resolved merge
names each conflict and the side taken, a dry run says nothing was written (and
writes nothing), a resolution that matched nothing is warned about, and status
names each change staged through the mount."""

import os
import subprocess


def ingest(reelfs, archive, tmp, name, branch, files):
    src = tmp / name
    for rel, data in files.items():
        p = src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    reelfs.ok("ingest", archive, *sorted({src / rel.split("/")[0] for rel in files}), "--branch", branch)


def head(reelfs, archive, branch):
    return reelfs.json("log", archive, branch, "-n", "1")[0]["commit"]


def test_a_resolved_merge_prints_each_choice_and_a_dry_run_writes_nothing(reelfs, tmp_archive, tmp_path):
    arch = tmp_archive
    ingest(reelfs, arch, tmp_path, "s1", "main", {"Day01/a.txt": b"a v1\n", "Day01/b.txt": b"b v1\n"})
    reelfs.ok("branch", arch, "grade", "--from", "main")
    ingest(reelfs, arch, tmp_path, "s2", "grade", {"Day01/a.txt": b"a graded\n", "Day02/new.txt": b"new\n"})
    ingest(reelfs, arch, tmp_path, "s3", "main", {"Day01/a.txt": b"a edited on main\n"})
    main_before, grade_head = head(reelfs, arch, "main"), head(reelfs, arch, "grade")

    args = ("merge", arch, "grade", "--into", "main", "--theirs", "Day01/a.txt", "--ours", "Day09")
    dry = reelfs(*args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "warning: --ours/--theirs Day09 matched no conflict" in dry.stderr
    assert "resolved Day01/a.txt (modify/modify): took theirs" in dry.stdout
    assert "(dry run: nothing written)" in dry.stdout
    assert head(reelfs, arch, "main") == main_before

    done = reelfs.ok(*args)
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("merged grade into main: commit ")]
    assert len(line) == 1, done.stdout
    assert f"with parents {main_before[:12]} + {grade_head[:12]}" in line[0], line[0]
    assert "2 files changed" in line[0] and "dry run" not in line[0]
    new_head = head(reelfs, arch, "main")
    assert new_head != main_before and f"commit {new_head[:12]} " in line[0]
    cat = subprocess.run([str(reelfs.binary), "cat", str(arch), "main/Day01/a.txt"], capture_output=True)
    assert cat.stdout == b"a graded\n"
    # The merge shows in the log as one, naming both parents.
    log = reelfs.ok("log", arch, "main").stdout.splitlines()
    assert log[0].startswith(new_head[:12]), log[0]
    assert log[0].endswith(f"(merge of {main_before[:12]} + {grade_head[:12]})"), log[0]


def test_status_names_each_change_staged_through_the_mount(reelfs, tmp_archive, tmp_path, mount):
    arch = tmp_archive
    ingest(reelfs, arch, tmp_path, "s1", "main", {"Day01/old.txt": b"old\n", "Day01/keep.txt": b"keep\n"})
    assert reelfs.ok("status", arch).stdout == "nothing staged on main\n"
    mp = mount(arch).mp
    day = mp / "main" / "Day01"
    (day / "new.bin").write_bytes(os.urandom(1000))
    os.unlink(day / "old.txt")
    os.mkdir(day / "renders")
    os.rename(day / "keep.txt", day / "kept.txt")
    out = reelfs.ok("status", arch, "main").stdout.splitlines()
    rows = {r["path"]: r["change"] for r in reelfs.json("status", arch, "main")}
    assert len(out) == len(rows), (out, rows)
    assert "written   Day01/new.bin (1000 bytes)" in out, out
    assert "deleted   Day01/old.txt" in out, out
    assert "folder    Day01/renders/" in out, out
    moved = [ln for ln in out if ln.startswith("moved     ")]
    assert moved and "Day01/kept.txt" in moved[0] and "(5 bytes)" in moved[0], out
    # The same changes as the JSON rows, one line each.
    printed = {ln.split()[1].rstrip("/"): ln.split()[0] for ln in out}
    assert printed == rows, (out, rows)
