"""The one path resolver (src/view/) as the CLI user meets it: `reelfs cat` names
what the mount shows (old versions by `.history`, `branch@commit`), and a path
that tries to leave the archive's namespace (`..`, absolute, NUL, `//`) is
refused with a message that says what to give, before anything is read."""
import datetime
import os

import pytest


def _history_name(commit):
    t = datetime.datetime.fromtimestamp(commit["time_ns"] // 1_000_000_000, tz=datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H.%M.%S") + "_" + commit["commit"][:8]


@pytest.fixture
def two_commits(tmp_path, reelfs, tmp_archive):
    card = tmp_path / "card"
    card.mkdir()
    old, new = os.urandom(300_000), os.urandom(200_000)
    (card / "clip.bin").write_bytes(old)
    reelfs.ok("ingest", tmp_archive, card, "-m", "first")
    (card / "clip.bin").write_bytes(new)
    reelfs.ok("ingest", tmp_archive, card, "-m", "second")
    log = reelfs.json("log", tmp_archive)
    assert [c["message"] for c in log] == ["second", "first"]
    return tmp_archive, old, new, log


def test_cat_reads_every_name_the_mount_shows(reelfs, two_commits):
    archive, old, new, log = two_commits
    first = log[1]
    assert reelfs.ok("cat", archive, "main/card/clip.bin", text=False).stdout == new
    assert reelfs.ok("cat", archive, f"main@{first['commit'][:8]}/card/clip.bin", text=False).stdout == old
    hist = f".history/main/{_history_name(first)}/card/clip.bin"
    assert reelfs.ok("cat", archive, hist, text=False).stdout == old
    # A folder is not a file: said so, nothing on stdout.
    p = reelfs("cat", archive, "main/card", text=False)
    assert p.returncode != 0 and p.stdout == b""
    assert b"folder" in p.stderr, p.stderr


@pytest.mark.parametrize("path,word", [
    ("main/../main/card/clip.bin", ".."),
    ("main/card/../../etc/passwd", ".."),
    ("/main/card/clip.bin", "absolute"),
    ("main//card/clip.bin", "empty component"),
    ("main/./card/clip.bin", "'.'"),
])
def test_paths_that_leave_the_namespace_are_refused_with_advice(reelfs, two_commits, path, word):
    archive = two_commits[0]
    p = reelfs("cat", archive, path, text=False)
    assert p.returncode != 0, f"cat {path} succeeded"
    assert p.stdout == b""
    err = p.stderr.decode()
    assert word in err and "main/Day01/A001C003.mov" in err, err
    assert "panicked" not in err


def test_missing_names_say_what_is_missing(reelfs, two_commits):
    archive = two_commits[0]
    p = reelfs("cat", archive, "main/card/nope.bin")
    assert p.returncode != 0 and "main/card/nope.bin" in p.stderr and "no such" in p.stderr, p.stderr
    p = reelfs("cat", archive, "nobranch/card/clip.bin")
    assert p.returncode != 0 and "nobranch" in p.stderr and "reelfs branch" in p.stderr, p.stderr
