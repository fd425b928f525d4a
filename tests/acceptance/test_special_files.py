"""Symlinks, FIFOs, sockets, device nodes and hard links as archive entries
(issue 12): recorded at ingest without following anything, listed, diffed,
merged, kept by a catalog rebuild, and restored as what they are (never
followed; device nodes only as root), compared with the source by lstat and
readlink as a user would check them.

Runs as root (device nodes need it); the non-root restore drops to uid 1000."""

import os
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers import b3, write_random

USER = 1000
T = 1_600_000_000_123_456_789


@pytest.fixture(scope="module", autouse=True)
def need_root():
    if os.geteuid() != 0:
        pytest.fail("the special-file tests run as root (they make device nodes)", pytrace=False)


def make_socket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()


@pytest.fixture
def special_src(tmp_path):
    """card/ holding a clip, links of every shape (relative, absolute, dangling,
    escaping, to a folder), a FIFO, a socket, a char and a block device, and two
    names of one file (a hard link)."""
    src = tmp_path / "card"
    write_random(src / "A001C001.mov", 70_000, mode=0o640, mtime_ns=T)
    (src / "sub").mkdir()
    write_random(src / "sub" / "notes.txt", 1_000, mode=0o600)
    os.symlink("A001C001.mov", src / "rel")
    os.symlink("/etc/passwd", src / "abs")
    os.symlink("../../etc/passwd", src / "up")
    os.symlink("nowhere/at all", src / "dead")
    os.symlink("sub", src / "dirlink")
    os.mkfifo(src / "pipe", 0o620)
    make_socket(src / "sock")
    os.mknod(src / "null", 0o640 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(src / "disk", 0o600 | stat.S_IFBLK, os.makedev(7, 200))
    write_random(src / "sub" / "hard-a.bin", 30_000, mode=0o644)
    os.link(src / "sub" / "hard-a.bin", src / "hard-b.bin")
    for n, mode in [("pipe", 0o620), ("null", 0o640), ("disk", 0o600)]:
        os.chmod(src / n, mode)  # mkfifo/mknod applied the umask
    os.chown(src / "pipe", USER, USER)
    os.chown(src / "rel", USER, 0, follow_symlinks=False)
    for n in ["rel", "abs", "up", "dead", "dirlink", "pipe", "sock", "null", "disk"]:
        os.utime(src / n, ns=(T, T + 1000), follow_symlinks=False)
    return src


LINKS = {"rel": "A001C001.mov", "abs": "/etc/passwd", "up": "../../etc/passwd", "dead": "nowhere/at all", "dirlink": "sub"}
KINDS = {"pipe": "fifo", "sock": "socket", "null": "chardev", "disk": "blockdev", **{n: "symlink" for n in LINKS}}


def assert_same_special(a, b, rel):
    sa, sb = os.lstat(a), os.lstat(b)
    assert stat.S_IFMT(sa.st_mode) == stat.S_IFMT(sb.st_mode), rel
    assert sa.st_mtime_ns == sb.st_mtime_ns, rel
    assert (sa.st_uid, sa.st_gid) == (sb.st_uid, sb.st_gid), rel
    if stat.S_ISLNK(sa.st_mode):
        assert os.readlink(a) == os.readlink(b), rel
    else:
        assert stat.S_IMODE(sa.st_mode) == stat.S_IMODE(sb.st_mode), rel
    if stat.S_ISCHR(sa.st_mode) or stat.S_ISBLK(sa.st_mode):
        assert sa.st_rdev == sb.st_rdev, rel


def test_ingest_lists_and_restores_every_kind_as_it_was(reelfs, tmp_archive, special_src, tmp_path):
    out = reelfs.ok("ingest", tmp_archive, special_src, "-m", "card")
    assert "9 symlinks/FIFOs/sockets/devices recorded" in out.stdout, out.stdout
    rows = {e["name"]: e for e in reelfs.json("ls", tmp_archive, "main/card")}
    for name, kind in KINDS.items():
        assert rows[name]["kind"] == kind, name
    for name, target in LINKS.items():
        assert rows[name]["target"] == target and rows[name]["size"] == len(target), name
    assert rows["null"]["rdev"] == {"major": 1, "minor": 3}
    assert rows["disk"]["rdev"] == {"major": 7, "minor": 200}
    assert (rows["pipe"]["uid"], rows["pipe"]["gid"], rows["pipe"]["mode"]) == (USER, USER, "620")
    assert rows["hard-b.bin"]["link_group"] is not None
    sub = {e["name"]: e for e in reelfs.json("ls", tmp_archive, "main/card/sub")}
    assert sub["hard-a.bin"]["link_group"] == rows["hard-b.bin"]["link_group"]
    assert "link_group" not in sub["notes.txt"] and "target" not in rows["A001C001.mov"]
    long = {l.split("\t")[3]: l for l in reelfs.ok("ls", tmp_archive, "main/card", "-l").stdout.splitlines()}
    assert "rel -> A001C001.mov" in long and "up -> ../../etc/passwd" in long, list(long)
    assert long["null"].endswith("[char device 1, 3]") and long["pipe"].endswith("[fifo]"), long
    reelfs.check_deep(tmp_archive)

    dest = tmp_path / "restored"
    dest.mkdir()
    r = reelfs.ok("restore", tmp_archive, "main/card", dest)
    assert "9 symlinks/FIFOs/sockets/devices made, 1 names restored as hard links" in r.stdout, r.stdout
    got = dest / "card"
    for name in KINDS:
        assert_same_special(special_src / name, got / name, name)
    # Links point where they pointed; nothing was followed, so the escaping one
    # is a link again (it may resolve to this machine's /etc/passwd; that is
    # what the source link did too) and the folder link is not a copied folder.
    assert os.path.islink(got / "dirlink") and not (got / "sub" / "sub").exists()
    assert b3(got / "A001C001.mov") == b3(special_src / "A001C001.mov")
    a, b = os.lstat(got / "sub" / "hard-a.bin"), os.lstat(got / "hard-b.bin")
    assert a.st_ino == b.st_ino and a.st_nlink == 2, "hard links must restore as one file"
    assert os.lstat(got / "A001C001.mov").st_nlink == 1
    # `ls -l` of source and restore agree line by line (names, kinds, modes, owners, devices).
    def ls(d):
        return subprocess.run(["ls", "-ln", "--time-style=+%s", str(d)], capture_output=True, text=True, check=True).stdout
    assert ls(got) == ls(special_src)


def test_names_in_the_archive_survive_a_catalog_rebuild(reelfs, tmp_archive, special_src):
    reelfs.ok("ingest", tmp_archive, special_src, "-m", "card")
    before = reelfs.json("ls", tmp_archive, "main/card")
    reelfs.ok("check", tmp_archive, "--rebuild-catalog")
    assert reelfs.json("ls", tmp_archive, "main/card") == before
    reelfs.check_deep(tmp_archive)


def test_a_symlink_given_as_source_is_stored_under_its_own_name(reelfs, tmp_archive, tmp_path):
    real = write_random(tmp_path / "real" / "clip.mov", 10_000)
    os.symlink(real.parent, tmp_path / "card-link")
    os.symlink(real, tmp_path / "clip-link.mov")
    reelfs.ok("ingest", tmp_archive, tmp_path / "card-link", tmp_path / "clip-link.mov", "-m", "links")
    rows = {e["name"]: e for e in reelfs.json("ls", tmp_archive, "main")}
    assert set(rows) == {"card-link", "clip-link.mov"}, rows
    assert rows["card-link"]["kind"] == "symlink" and rows["card-link"]["target"] == str(real.parent)
    assert rows["clip-link.mov"]["kind"] == "symlink" and rows["clip-link.mov"]["target"] == str(real)


def test_restore_never_writes_through_a_link_it_made(reelfs, tmp_archive, tmp_path):
    """`link -> OUTSIDE` on one branch and a folder `link/` holding x on another,
    restored into one place (in one restore and in two): x lands in a real
    folder, never in OUTSIDE."""
    outside = Path(tempfile.mkdtemp(prefix="reelfs-outside-"))
    try:
        a = tmp_path / "a"
        a.mkdir()
        os.symlink(outside, a / "link")
        reelfs.ok("ingest", tmp_archive, a, "-m", "link")
        reelfs.ok("branch", tmp_archive, "other", "--from", "main")
        b = tmp_path / "b" / "a"
        write_random(b / "link" / "x", 5_000)
        reelfs.ok("ingest", tmp_archive, b / "link", "--branch", "other", "--to", "elsewhere", "-m", "folder")
        dest = tmp_path / "d1"
        dest.mkdir()
        reelfs.ok("restore", tmp_archive, "main/a/link", "other/elsewhere/link", dest)
        assert not (outside / "x").exists(), "restore wrote through the link it had just made"
        assert os.path.isdir(dest / "link") and not os.path.islink(dest / "link")
        assert b3(dest / "link" / "x") == b3(b / "link" / "x")
        # Two restores, the link first: the second replaces the link, never enters it.
        dest2 = tmp_path / "d2"
        dest2.mkdir()
        reelfs.ok("restore", tmp_archive, "main/a", dest2)
        assert os.readlink(dest2 / "a" / "link") == str(outside)
        reelfs.ok("restore", tmp_archive, "other/elsewhere/link", dest2 / "a")
        assert not (outside / "x").exists()
        assert os.listdir(outside) == []
    finally:
        subprocess.run(["rm", "-rf", str(outside)])


def test_diff_reports_a_changed_symlink_target_and_new_special_files(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "card"
    write_random(src / "clip.mov", 5_000)
    os.symlink("clip.mov", src / "current")
    reelfs.ok("ingest", tmp_archive, src, "-m", "one")
    reelfs.ok("branch", tmp_archive, "before", "--from", "main")
    os.unlink(src / "current")
    os.symlink("../takes/clip-v2.mov", src / "current")
    os.mkfifo(src / "pipe")
    reelfs.ok("ingest", tmp_archive, src, "-m", "two")
    out = reelfs.ok("diff", tmp_archive, "before", "main").stdout
    assert "symlink target clip.mov -> ../takes/clip-v2.mov" in out, out
    assert "A  card/pipe" in out and "[fifo]" in out, out
    changes = {c["path"]: c for c in reelfs.json("diff", tmp_archive, "before", "main")["changes"]}
    assert changes["card/current"]["status"] == "modified"
    assert changes["card/current"]["kind"] == "symlink"
    assert changes["card/current"]["target"] == {"from": "clip.mov", "to": "../takes/clip-v2.mov"}
    assert changes["card/pipe"]["status"] == "added" and changes["card/pipe"]["kind"] == "fifo"
    # Plain files keep the JSON they always had (no kind, no target).
    assert "kind" not in changes.get("card/clip.mov", {})


def test_merge_brings_special_files_across(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "card"
    write_random(src / "clip.mov", 5_000)
    reelfs.ok("ingest", tmp_archive, src, "-m", "one")
    reelfs.ok("branch", tmp_archive, "grade", "--from", "main")
    links = tmp_path / "links"
    links.mkdir()
    os.symlink("../card/clip.mov", links / "hero.mov")
    os.mkfifo(links / "pipe")
    reelfs.ok("ingest", tmp_archive, links, "--branch", "grade", "-m", "links")
    reelfs.ok("merge", tmp_archive, "grade", "--into", "main")
    rows = {e["name"]: e for e in reelfs.json("ls", tmp_archive, "main/links")}
    assert rows["hero.mov"]["kind"] == "symlink" and rows["hero.mov"]["target"] == "../card/clip.mov"
    assert rows["pipe"]["kind"] == "fifo"


def test_a_user_restores_everything_but_device_nodes_with_a_warning(reelfs, special_src, tmp_path):
    pub = Path(tempfile.mkdtemp(prefix="reelfs-special-"))
    try:
        os.chmod(pub, 0o755)
        archive = pub / "archive"
        reelfs.ok("init", archive)
        reelfs.ok("ingest", archive, special_src, "-m", "card")
        subprocess.run(["chown", "-R", f"{USER}:{USER}", str(archive)], check=True)
        dest = pub / "mine"
        dest.mkdir()
        os.chown(dest, USER, USER)
        p = subprocess.run(["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups",
                            str(reelfs.binary), "restore", str(archive), "main/card", str(dest)],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
        assert p.returncode == 0, p.stderr
        got = dest / "card"
        for dev in ["null", "disk"]:
            assert not os.path.lexists(got / dev), dev
            assert f"{got / dev}: " in p.stderr and "only root can make device nodes" in p.stderr, p.stderr
        assert stat.S_ISFIFO(os.lstat(got / "pipe").st_mode)
        assert stat.S_ISSOCK(os.lstat(got / "sock").st_mode)
        assert os.readlink(got / "up") == "../../etc/passwd"
        assert os.lstat(got / "rel").st_uid == USER  # a user cannot give files away
        assert os.lstat(got / "hard-b.bin").st_ino == os.lstat(got / "sub" / "hard-a.bin").st_ino
    finally:
        subprocess.run(["rm", "-rf", str(pub)])


def test_info_and_cat_of_a_special_entry_say_what_it_is(reelfs, tmp_archive, special_src):
    reelfs.ok("ingest", tmp_archive, special_src, "-m", "card")
    p = reelfs("info", tmp_archive, "main/card/up")
    assert p.returncode != 0 and "is a symlink pointing to ../../etc/passwd" in p.stderr and "ls -l" in p.stderr, p.stderr
    p = reelfs("cat", tmp_archive, "main/card/pipe")
    assert p.returncode != 0 and "is a fifo, not a file" in p.stderr, p.stderr
    assert "inconsistent" not in p.stderr


# ---- the mount ---------------------------------------------------------------------

from helpers import Mount  # noqa: E402


def test_the_mount_shows_archived_special_files_as_what_they_are(reelfs, tmp_archive, special_src, tmp_path):
    reelfs.ok("ingest", tmp_archive, special_src, "-m", "card")
    with Mount(reelfs, tmp_archive, tmp_path / "mnt") as m:
        card = m.mp / "main" / "card"
        for name in KINDS:
            assert_same_special(special_src / name, card / name, name)
        for name, target in LINKS.items():
            assert os.readlink(card / name) == target, name
        kinds = {e.name: (e.is_symlink(), e.is_file(follow_symlinks=False)) for e in os.scandir(card)}
        assert kinds["rel"] == (True, False) and kinds["A001C001.mov"] == (False, True)
        # The kernel follows a link inside the mount like anywhere else.
        assert b3(card / "rel") == b3(special_src / "A001C001.mov")
        # An old version shows them too.
        log = reelfs.json("log", tmp_archive)
        old = m.mp / f"main@{log[0]['commit'][:8]}" / "card"
        assert os.readlink(old / "up") == "../../etc/passwd"
        assert stat.S_ISFIFO(os.lstat(old / "pipe").st_mode)


def test_links_fifos_and_devices_made_in_a_branch_are_committed_diffed_and_restored(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "card"
    write_random(src / "clip.mov", 20_000)
    reelfs.ok("ingest", tmp_archive, src, "-m", "card")
    reelfs.ok("branch", tmp_archive, "before", "--from", "main")
    with Mount(reelfs, tmp_archive, tmp_path / "mnt") as m:
        card = m.mp / "main" / "card"
        os.symlink("clip.mov", card / "hero.mov")
        os.symlink("/nowhere/../etc/passwd", card / "odd")
        os.mkfifo(card / "pipe", 0o640)
        os.mknod(card / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        os.mknod(card / "sock", 0o600 | stat.S_IFSOCK)
        assert os.readlink(card / "hero.mov") == "clip.mov"
        assert b3(card / "hero.mov") == b3(src / "clip.mov")
        assert stat.S_ISFIFO(os.lstat(card / "pipe").st_mode) and stat.S_IMODE(os.lstat(card / "pipe").st_mode) == 0o640
        st = os.lstat(card / "null")
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
        assert stat.S_ISSOCK(os.lstat(card / "sock").st_mode)
        # Renamed and removed like files; a rename keeps the link's target.
        os.rename(card / "odd", card / "odd2")
        assert os.readlink(card / "odd2") == "/nowhere/../etc/passwd" and not os.path.lexists(card / "odd")
        os.unlink(card / "sock")
        status = {r["path"]: r["change"] for r in reelfs.json("status", tmp_archive, "main")}
        assert status["card/hero.mov"] == "special" and status["card/pipe"] == "special", status
        reelfs.ok("commit", tmp_archive, "main", "-m", "links")
        assert os.readlink(card / "hero.mov") == "clip.mov"
    rows = {e["name"]: e for e in reelfs.json("ls", tmp_archive, "main/card")}
    assert rows["hero.mov"]["kind"] == "symlink" and rows["hero.mov"]["target"] == "clip.mov"
    assert rows["odd2"]["target"] == "/nowhere/../etc/passwd" and "odd" not in rows and "sock" not in rows
    assert rows["pipe"]["kind"] == "fifo" and rows["pipe"]["mode"] == "640"
    assert rows["null"]["kind"] == "chardev" and rows["null"]["rdev"] == {"major": 1, "minor": 3}
    out = reelfs.ok("diff", tmp_archive, "before", "main").stdout
    assert "A  card/hero.mov" in out and "[symlink]" in out and "A  card/pipe" in out, out
    dest = tmp_path / "restored"
    dest.mkdir()
    reelfs.ok("restore", tmp_archive, "main/card", dest)
    assert os.readlink(dest / "card" / "hero.mov") == "clip.mov"
    assert stat.S_ISFIFO(os.lstat(dest / "card" / "pipe").st_mode)
    assert os.lstat(dest / "card" / "null").st_rdev == os.makedev(1, 3)
    reelfs.check_deep(tmp_archive)


def test_a_link_is_not_a_file_to_write_through(reelfs, tmp_archive, tmp_path):
    """Writes into a branch never land outside it: a link to a path outside the
    mount is resolved by the kernel (as on any filesystem), but opening the
    link's own name for writing through the mount never changes the link entry
    into a file, and `readlink` keeps answering the stored target."""
    src = tmp_path / "card"
    write_random(src / "clip.mov", 5_000)
    reelfs.ok("ingest", tmp_archive, src, "-m", "card")
    with Mount(reelfs, tmp_archive, tmp_path / "mnt") as m:
        card = m.mp / "main" / "card"
        os.symlink("clip.mov", card / "l")
        with open(card / "l", "r+b") as f:  # the kernel follows to clip.mov
            f.write(b"X")
        assert os.readlink(card / "l") == "clip.mov"
        assert open(card / "clip.mov", "rb").read(1) == b"X"
