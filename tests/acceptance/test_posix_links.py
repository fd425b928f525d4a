"""Hard links made in a writable branch of the mount (issue 12): `link(2)` gives a
file another name; both names are one file (one inode number, the same bytes and
attributes, `nlink` counting the names), through writes, chmod, unlink and
rename; the group is committed as ingest stores one (`ls --json` link_group),
diffed, and restored as hard links. Links across branches, from archived
content, into read-only places and of folders fail as link(2) says.

Checked as a user would: os.stat inode numbers and st_nlink, bytes read back,
`reelfs ls/diff/restore`, errno of os.link."""

import errno
import os

import pytest

from helpers import Mount, write_random


@pytest.fixture(scope="module", autouse=True)
def need_root():
    if os.geteuid() != 0:
        pytest.fail("these tests run as root (the mount's --allow-other cases)", pytrace=False)


@pytest.fixture
def card_archive(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "card"
    write_random(src / "A001C001.mov", 40_000)
    (src / "notes.txt").write_bytes(b"day one\n")
    reelfs.ok("ingest", tmp_archive, src, "-m", "card")
    reelfs.ok("branch", tmp_archive, "before", "--from", "main")
    return tmp_archive


def test_two_names_of_one_file_share_inode_bytes_and_attributes(reelfs, card_archive, tmp_path):
    with Mount(reelfs, card_archive, tmp_path / "mnt") as m:
        card = m.mp / "main" / "card"
        os.link(card / "notes.txt", card / "notes-link.txt")
        a, b = os.stat(card / "notes.txt"), os.stat(card / "notes-link.txt")
        assert a.st_ino == b.st_ino
        assert a.st_nlink == b.st_nlink == 2
        # A write through one name is read through the other at once.
        with open(card / "notes-link.txt", "ab") as f:
            f.write(b"appended through the link\n")
        assert (card / "notes.txt").read_bytes() == b"day one\nappended through the link\n"
        # Attributes are the file's, whichever name changes them.
        os.chmod(card / "notes.txt", 0o600)
        os.chown(card / "notes-link.txt", 1234, 5678)
        os.setxattr(card / "notes.txt", "user.label", b"hero")
        for name in ("notes.txt", "notes-link.txt"):
            st = os.stat(card / name)
            assert (st.st_mode & 0o7777, st.st_uid, st.st_gid, st.st_size) == (0o600, 1234, 5678, 34), name
            assert os.getxattr(card / name, "user.label") == b"hero", name
        # A third name in another folder; then unlink one: nlink follows.
        os.mkdir(card / "sub")
        os.link(card / "notes-link.txt", card / "sub" / "third.txt")
        assert os.stat(card / "notes.txt").st_nlink == 3
        assert os.stat(card / "sub" / "third.txt").st_ino == a.st_ino
        os.unlink(card / "notes.txt")
        assert not (card / "notes.txt").exists()
        st = os.stat(card / "notes-link.txt")
        assert (st.st_ino, st.st_nlink) == (a.st_ino, 2)
        assert (card / "sub" / "third.txt").read_bytes() == b"day one\nappended through the link\n"


def test_an_open_file_keeps_writing_through_its_other_name_after_an_unlink(reelfs, card_archive, tmp_path):
    with Mount(reelfs, card_archive, tmp_path / "mnt") as m:
        card = m.mp / "main" / "card"
        os.link(card / "notes.txt", card / "kept.txt")
        with open(card / "notes.txt", "r+b") as f:
            os.unlink(card / "notes.txt")
            f.seek(0)
            f.write(b"DAY ONE")
            f.flush()
            os.fsync(f.fileno())
            assert os.fstat(f.fileno()).st_nlink == 1
        assert (card / "kept.txt").read_bytes() == b"DAY ONE\n"


def test_rename_over_a_linked_name_and_between_names_of_one_file(reelfs, card_archive, tmp_path):
    with Mount(reelfs, card_archive, tmp_path / "mnt") as m:
        card = m.mp / "main" / "card"
        os.link(card / "notes.txt", card / "b.txt")
        ino = os.stat(card / "notes.txt").st_ino
        # Two names of one file: rename does nothing and succeeds (POSIX).
        os.rename(card / "notes.txt", card / "b.txt")
        assert (card / "notes.txt").exists() and os.stat(card / "b.txt").st_nlink == 2
        # Another file renamed over one name: the other name keeps the file.
        (card / "other.txt").write_bytes(b"other")
        os.rename(card / "other.txt", card / "b.txt")
        assert (card / "b.txt").read_bytes() == b"other"
        st = os.stat(card / "notes.txt")
        assert (st.st_ino, st.st_nlink) == (ino, 1)
        assert os.stat(card / "b.txt").st_ino != ino
        # A linked name renamed keeps its inode and its partner.
        os.link(card / "notes.txt", card / "c.txt")
        os.rename(card / "c.txt", card / "d.txt")
        assert os.stat(card / "d.txt").st_ino == ino and os.stat(card / "notes.txt").st_nlink == 2


def test_links_are_committed_diffed_and_restored_as_links(reelfs, card_archive, tmp_path):
    with Mount(reelfs, card_archive, tmp_path / "mnt") as m:
        card = m.mp / "main" / "card"
        os.link(card / "A001C001.mov", card / "A001C001-selects.mov")
        os.link(card / "notes.txt", card / "notes-copy.txt")
        reelfs.ok("commit", card_archive, "main", "-m", "links")
        # After the commit (and a remount below) the names are still one file.
        assert os.stat(card / "A001C001.mov").st_ino == os.stat(card / "A001C001-selects.mov").st_ino
    rows = {e["name"]: e for e in reelfs.json("ls", card_archive, "main/card")}
    assert rows["A001C001.mov"].get("link_group") is not None, rows
    assert rows["A001C001.mov"]["link_group"] == rows["A001C001-selects.mov"]["link_group"]
    assert rows["notes.txt"]["link_group"] == rows["notes-copy.txt"]["link_group"] != rows["A001C001.mov"]["link_group"]
    with Mount(reelfs, card_archive, tmp_path / "mnt") as m:
        card = m.mp / "main" / "card"
        a, b = os.stat(card / "A001C001.mov"), os.stat(card / "A001C001-selects.mov")
        assert (a.st_ino, a.st_nlink) == (b.st_ino, 2)
    out = reelfs.ok("diff", card_archive, "before", "main").stdout
    assert "card/A001C001-selects.mov" in out and "card/notes-copy.txt" in out, out
    dest = tmp_path / "restored"
    dest.mkdir()
    reelfs.ok("restore", card_archive, "main/card", dest)
    got = dest / "card"
    a, b = os.stat(got / "A001C001.mov"), os.stat(got / "A001C001-selects.mov")
    assert a.st_ino == b.st_ino and a.st_nlink == 2
    assert os.stat(got / "notes.txt").st_ino == os.stat(got / "notes-copy.txt").st_ino
    assert (got / "A001C001-selects.mov").read_bytes() == (got / "A001C001.mov").read_bytes()


def test_links_that_link2_refuses(reelfs, card_archive, tmp_path):
    reelfs.ok("branch", card_archive, "grade", "--from", "main")
    with Mount(reelfs, card_archive, tmp_path / "mnt") as m:
        main, grade = m.mp / "main" / "card", m.mp / "grade" / "card"

        def err(a, b):
            with pytest.raises(OSError) as e:
                os.link(a, b)
            return e.value.errno

        assert err(main / "notes.txt", grade / "from-main.txt") == errno.EXDEV  # across branches
        assert err(main, main / "folder-link") == errno.EPERM  # a folder
        assert err(main / "notes.txt", main / "A001C001.mov") == errno.EEXIST
        # Into a read-only place: an old version (.history) is EROFS.
        hist = m.mp / ".history" / "main"
        commit = sorted(hist.iterdir())[0]
        assert err(main / "notes.txt", commit / "card" / "new.txt") == errno.EROFS
        # From archived (read-only) content into a branch: another filesystem.
        assert err(commit / "card" / "notes.txt", main / "from-history.txt") == errno.EXDEV


def test_an_open_file_whose_last_name_is_removed_has_no_links(reelfs, card_archive, tmp_path):
    """fstat of a handle on a removed file works and says nlink 0 (pjdfstest unlink/14)."""
    with Mount(reelfs, card_archive, tmp_path / "mnt") as m:
        card = m.mp / "main" / "card"
        (card / "open.txt").write_bytes(b"Hello, World!")
        with open(card / "open.txt", "rb") as f:
            os.unlink(card / "open.txt")
            assert os.fstat(f.fileno()).st_nlink == 0
            assert f.read() == b"Hello, World!"
        assert not (card / "open.txt").exists()
