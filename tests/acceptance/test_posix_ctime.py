"""ctime kept apart from mtime in a writable branch (issue 12): chmod, chown,
link, unlink of another name, rename, setxattr and utimens change ctime only;
write and truncate change both; both are committed and shown after a remount.

Checked with os.stat as `stat`, `make` and backup tools read them. No sleeps:
mtime is first set far in the past with os.utime, so a later ctime is visible."""

import os

import pytest

from helpers import Mount

PAST = 1_000_000_000 * 10**9  # 2001-09-09, in ns


@pytest.fixture(scope="module", autouse=True)
def need_root():
    if os.geteuid() != 0:
        pytest.fail("these tests run as root (they chown)", pytrace=False)


@pytest.fixture
def archive(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "card"
    src.mkdir()
    (src / "notes.txt").write_bytes(b"day one\n")
    reelfs.ok("ingest", tmp_archive, src, "-m", "card")
    return tmp_archive


def in_the_past(p):
    os.utime(p, ns=(PAST, PAST), follow_symlinks=False)
    st = os.stat(p, follow_symlinks=False)
    assert st.st_mtime_ns == PAST and st.st_ctime_ns > PAST, (st.st_mtime_ns, st.st_ctime_ns)
    return st.st_ctime_ns


@pytest.mark.parametrize("change", ["chmod", "chown", "setxattr", "link", "unlink-other-name", "rename"])
def test_a_metadata_change_moves_ctime_and_not_mtime(reelfs, archive, tmp_path, change):
    with Mount(reelfs, archive, tmp_path / "mnt") as m:
        card = m.mp / "main" / "card"
        f = card / "notes.txt"
        if change == "unlink-other-name":
            os.link(f, card / "other-name.txt")
        before = in_the_past(f)
        if change == "chmod":
            os.chmod(f, 0o600)
        elif change == "chown":
            os.chown(f, 1234, 5678)
        elif change == "setxattr":
            os.setxattr(f, "user.label", b"hero")
        elif change == "link":
            os.link(f, card / "second-name.txt")
        elif change == "unlink-other-name":
            os.unlink(card / "other-name.txt")
        elif change == "rename":
            os.rename(f, card / "renamed.txt")
            f = card / "renamed.txt"
        st = os.stat(f)
        assert st.st_mtime_ns == PAST, change
        assert st.st_ctime_ns > before, change
        shown = st.st_ctime_ns
        reelfs.ok("commit", archive, "main", "-m", change)
    with Mount(reelfs, archive, tmp_path / "mnt") as m:
        st = os.stat(m.mp / "main" / "card" / f.name)
        assert (st.st_mtime_ns, st.st_ctime_ns) == (PAST, shown), change


@pytest.mark.parametrize("change", ["write", "truncate"])
def test_a_content_change_moves_both(reelfs, archive, tmp_path, change):
    with Mount(reelfs, archive, tmp_path / "mnt") as m:
        f = m.mp / "main" / "card" / "notes.txt"
        before = in_the_past(f)
        if change == "write":
            with open(f, "ab") as out:
                out.write(b"more\n")
        else:
            os.truncate(f, 3)
        st = os.stat(f)
        assert st.st_mtime_ns > PAST and st.st_ctime_ns >= before
        assert st.st_ctime_ns == st.st_mtime_ns


def test_a_folder_chmod_moves_its_ctime_only(reelfs, archive, tmp_path):
    with Mount(reelfs, archive, tmp_path / "mnt") as m:
        card = m.mp / "main" / "card"
        before = in_the_past(card)
        os.chmod(card, 0o750)
        st = os.stat(card)
        assert st.st_mtime_ns == PAST and st.st_ctime_ns > before
