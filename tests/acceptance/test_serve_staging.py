"""`reelfs serve` and what the mount shows beyond committed files: files written
through the mount and not committed (409, saying to commit) and `.history` (listed
over HTTP as the mount lists it)."""

import os

import pytest
import requests

from helpers import wait_until, write_random
from test_serve import Server


def test_a_staged_file_answers_409_saying_to_commit_and_is_served_once_committed(tmp_path, reelfs, mount):
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    card = tmp_path / "card"
    write_random(card / "A001C001.mov", 300_000)
    reelfs.ok("ingest", archive, card, "-m", "card")
    listing = reelfs.json("ls", archive, "main")
    names = [e["name"] for e in (listing["entries"] if isinstance(listing, dict) else listing)]
    top = names[0]
    m = mount(archive, mp=tmp_path / "mnt")
    new = os.urandom(123_456)
    (tmp_path / "mnt" / "main" / top / "new.mov").write_bytes(new)
    # An edit of a committed file is staged too.
    with open(tmp_path / "mnt" / "main" / top / "A001C001.mov", "r+b") as f:
        f.write(b"edited")
    m.umount()
    s = Server(reelfs, archive)
    try:
        for name in ("new.mov", "A001C001.mov"):
            r = requests.get(s.url(f"main/{top}/{name}"))
            assert r.status_code == 409, (name, r.status_code, r.text)
            assert "commit" in r.text and "reelfs commit" in r.text, r.text
            assert r.content != new
            assert requests.head(s.url(f"main/{top}/{name}")).status_code == 409
        # The committed version is still there by commit.
        log = reelfs.json("log", archive, "main")
        first = (log["commits"] if isinstance(log, dict) else log)[0]
        commit = first.get("hash") or first.get("commit") or first.get("id")
        r = requests.get(s.url(f"main@{commit[:8]}/{top}/A001C001.mov"))
        assert r.status_code == 200 and r.content == (card / "A001C001.mov").read_bytes()
    finally:
        s.stop()
    reelfs.ok("commit", archive, "main", "-m", "new")
    s = Server(reelfs, archive)
    try:
        r = requests.get(s.url(f"main/{top}/new.mov"))
        assert r.status_code == 200 and r.content == new
    finally:
        s.stop()


def test_history_is_listed_over_http_as_the_mount_lists_it(tmp_path, reelfs, mount):
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    card = tmp_path / "card"
    write_random(card / "a.bin", 10_000)
    reelfs.ok("ingest", archive, card, "-m", "one")
    write_random(card / "b.bin", 20_000)
    reelfs.ok("ingest", archive, card, "-m", "two")
    reelfs.ok("branch", archive, "grade", "--from", "main")
    m = mount(archive, mp=tmp_path / "mnt")
    mnt_branches = sorted(os.listdir(tmp_path / "mnt" / ".history"))
    mnt_commits = sorted(os.listdir(tmp_path / "mnt" / ".history" / "main"))
    m.umount()
    s = Server(reelfs, archive)
    try:
        j = requests.get(s.url(".history"), headers={"Accept": "application/json"})
        assert j.status_code == 200, j.text
        assert sorted(e["name"] for e in j.json()["entries"]) == mnt_branches == ["grade", "main"]
        j = requests.get(s.url(".history/main"), headers={"Accept": "application/json"})
        assert j.status_code == 200, j.text
        entries = j.json()["entries"]
        assert sorted(e["name"] for e in entries) == mnt_commits and len(entries) == 2
        # Each entry's URL opens that version; the older one has no b.bin.
        # Newest first, as `reelfs log` (two commits in one second share the time in their names).
        oldest = entries[-1]
        assert oldest["kind"] == "folder" and len(oldest["content_hash"]) == 64
        top = requests.get(s.base + oldest["url"], headers={"Accept": "application/json"}).json()
        folder = top["entries"][0]
        inside = requests.get(s.base + folder["url"], headers={"Accept": "application/json"}).json()
        assert sorted(e["name"] for e in inside["entries"]) == ["a.bin"]
        a = next(e for e in inside["entries"] if e["name"] == "a.bin")
        assert requests.get(s.base + a["url"]).content == (card / "a.bin").read_bytes()
        # And as HTML for people.
        h = requests.get(s.url(".history/main/"))
        assert h.status_code == 200 and h.headers["content-type"].startswith("text/html")
        assert oldest["name"] in h.text
    finally:
        s.stop()


def test_a_file_served_then_edited_through_the_mount_answers_409_once_staged(tmp_path, reelfs, mount):
    """The server keeps resolved files while the catalog is unchanged: a write
    staged through a mount (no commit, no head moved) must end that as soon as
    the mount records it."""
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    card = tmp_path / "card"
    write_random(card / "A001C001.mov", 200_000)
    reelfs.ok("ingest", archive, card, "-m", "card")
    s = Server(reelfs, archive)
    try:
        url = s.url("main/card/A001C001.mov")
        for _ in range(3):
            r = requests.get(url)
            assert r.status_code == 200 and r.content == (card / "A001C001.mov").read_bytes()
        m = mount(archive, mp=tmp_path / "mnt")
        with open(tmp_path / "mnt" / "main" / "card" / "A001C001.mov", "r+b") as f:
            f.write(b"edited")
        # Unmounting records the staged edit in the catalog (no commit, no
        # head moved): from then on the server must not serve the old bytes.
        m.umount()
        r = requests.get(url)
        assert r.status_code == 409 and "reelfs commit" in r.text, (r.status_code, r.text)
    finally:
        s.stop()
