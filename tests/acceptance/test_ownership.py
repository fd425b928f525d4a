"""Owner and group (issue 12): recorded at ingest, shown in the mount, changed by
chown/chgrp in a writable branch by the POSIX rules, committed and diffed, and
restored by number when restoring as root.

Run as root with real uids: uid 1000 is a second, unprivileged user (`setpriv`
drops to it), so the kernel's permission checks (the mount uses
`default_permissions`) meet the owners the mount reports."""

import errno
import os
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers import Mount, b3, write_random

USER = 1000


def as_user(*argv, uid=USER, gid=USER, cwd=None):
    """Run argv as uid/gid with no supplementary groups."""
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *map(str, argv)],
                          capture_output=True, text=True, cwd=cwd, stdin=subprocess.DEVNULL, timeout=60)


def owner(path):
    st = os.lstat(path)
    return st.st_uid, st.st_gid


@pytest.fixture(scope="module", autouse=True)
def need_root():
    if os.geteuid() != 0:
        pytest.fail("the ownership tests run as root (they give files to uid 1000)", pytrace=False)


@pytest.fixture
def public_tmp():
    """A folder every user can reach (pytest's tmp_path is private to root), for
    mount points and files another user must open."""
    d = Path(tempfile.mkdtemp(prefix="reelfs-owners-"))
    os.chmod(d, 0o755)
    yield d
    subprocess.run(["rm", "-rf", str(d)], capture_output=True)


def mount_for_all(reelfs, archive, mp):
    """A writable mount other users may enter (`--allow-other`)."""
    def run(*args, **kw):
        if args and args[0] == "mount":
            args = (*args, "--allow-other")
        return reelfs(*args, **kw)
    return Mount(run, archive, mp)


@pytest.fixture
def owned_src(tmp_path):
    """card/ (1000:1000) with user.bin (1000:1000), root.bin (0:0), mixed.bin (0:1000),
    and sub/ (0:0) holding deep.bin (1000:0)."""
    src = tmp_path / "card"
    write_random(src / "user.bin", 50_000, mode=0o640)
    write_random(src / "root.bin", 20_000, mode=0o644)
    write_random(src / "mixed.bin", 10_000, mode=0o664)
    write_random(src / "sub" / "deep.bin", 5_000, mode=0o600)
    os.chown(src, USER, USER)
    os.chown(src / "user.bin", USER, USER)
    os.chown(src / "root.bin", 0, 0)
    os.chown(src / "mixed.bin", 0, USER)
    os.chown(src / "sub", 0, 0)
    os.chown(src / "sub" / "deep.bin", USER, 0)
    return src


EXPECTED = {
    "": (USER, USER),
    "user.bin": (USER, USER),
    "root.bin": (0, 0),
    "mixed.bin": (0, USER),
    "sub": (0, 0),
    "sub/deep.bin": (USER, 0),
}


def test_ingest_records_owners_and_the_mount_ls_and_info_show_them(reelfs, tmp_archive, owned_src, public_tmp):
    reelfs.ok("ingest", tmp_archive, owned_src, "-m", "card")
    with Mount(reelfs, tmp_archive, public_tmp / "mnt") as m:
        card = m.mp / "main" / "card"
        for rel, ids in EXPECTED.items():
            assert owner(card / rel if rel else card) == ids, rel
        # A slice-free listing through the kernel shows the same numbers.
        out = subprocess.run(["ls", "-ln", str(card)], capture_output=True, text=True, check=True).stdout
        cols = {line.split()[-1]: (int(line.split()[2]), int(line.split()[3])) for line in out.splitlines()[1:]}
        assert cols["user.bin"] == (USER, USER) and cols["root.bin"] == (0, 0) and cols["mixed.bin"] == (0, USER)
    rows = {e["name"]: (e["uid"], e["gid"]) for e in reelfs.json("ls", tmp_archive, "main/card")}
    assert rows == {"user.bin": (USER, USER), "root.bin": (0, 0), "mixed.bin": (0, USER), "sub": (0, 0)}
    long = {l.split("\t")[3]: l for l in reelfs.ok("ls", tmp_archive, "main/card", "-l").stdout.splitlines()}
    assert long["user.bin"].startswith(f"640 {USER}:{USER}\t"), long["user.bin"]
    assert long["sub/"].split("\t")[0].endswith(" 0:0"), long["sub/"]
    info = reelfs.json("info", tmp_archive, "main/card/mixed.bin")
    assert (info["uid"], info["gid"]) == (0, USER)
    assert f"uid 0 gid {USER}" in reelfs.ok("info", tmp_archive, "main/card/mixed.bin").stdout
    # Owners live in the tree records: a catalog rebuilt from the packs has them.
    reelfs.ok("check", tmp_archive, "--rebuild-catalog")
    assert {e["name"]: (e["uid"], e["gid"]) for e in reelfs.json("ls", tmp_archive, "main/card")} == rows


def test_restore_as_root_gives_owners_back_and_a_user_restores_as_itself(reelfs, owned_src, tmp_path, public_tmp):
    # In a folder the user can reach: it restores from this archive below.
    tmp_archive = public_tmp / "archive"
    reelfs.ok("init", tmp_archive)
    reelfs.ok("ingest", tmp_archive, owned_src, "-m", "card")
    out = tmp_path / "restored"
    out.mkdir()
    reelfs.ok("restore", tmp_archive, "main/card", out)
    for rel, ids in EXPECTED.items():
        p = out / "card" / rel if rel else out / "card"
        assert owner(p) == ids, rel
        assert stat.S_IMODE(os.lstat(p).st_mode) == stat.S_IMODE(os.lstat(owned_src / rel if rel else owned_src).st_mode), rel
    assert b3(out / "card" / "sub" / "deep.bin") == b3(owned_src / "sub" / "deep.bin")
    # A user who may read the archive restores everything as its own, without error.
    subprocess.run(["chown", "-R", f"{USER}:{USER}", str(tmp_archive)], check=True)
    dest = public_tmp / "mine"
    dest.mkdir()
    os.chown(dest, USER, USER)
    p = as_user(reelfs.binary, "restore", tmp_archive, "main/card", dest)
    assert p.returncode == 0, p.stderr
    for rel in EXPECTED:
        assert owner(dest / "card" / rel if rel else dest / "card") == (USER, USER), rel
    assert b3(dest / "card" / "root.bin") == b3(owned_src / "root.bin")


@pytest.fixture
def shared_mount(reelfs, tmp_archive, owned_src, public_tmp):
    reelfs.ok("ingest", tmp_archive, owned_src, "-m", "card")
    with mount_for_all(reelfs, tmp_archive, public_tmp / "mnt") as m:
        yield m.mp / "main", tmp_archive


def test_chown_as_root_and_the_posix_rules_for_other_users(shared_mount):
    main, _ = shared_mount
    card = main / "card"
    os.chown(card / "root.bin", USER, 2000)
    assert owner(card / "root.bin") == (USER, 2000)
    os.chown(card / "root.bin", -1, USER)
    assert owner(card / "root.bin") == (USER, USER)
    # Only root gives a file away: not even its owner may.
    p = as_user("chown", "0", card / "user.bin")
    assert p.returncode != 0 and "Operation not permitted" in p.stderr, p.stderr
    assert owner(card / "user.bin") == (USER, USER)
    # The owner may not take a group it is not in, and nobody but the owner changes the group.
    p = as_user("chgrp", "0", card / "user.bin")
    assert p.returncode != 0 and "Operation not permitted" in p.stderr, p.stderr
    p = as_user("chgrp", str(USER), card / "mixed.bin")  # owned by root
    assert p.returncode != 0 and "Operation not permitted" in p.stderr, p.stderr
    assert owner(card / "mixed.bin") == (0, USER)
    # ...and may set its own group (a no-op change it is allowed to make).
    assert as_user("chgrp", str(USER), card / "user.bin").returncode == 0
    # chown clears setuid/setgid on a regular file (Linux), not on a folder.
    os.chmod(card / "mixed.bin", 0o6755)
    os.chown(card / "mixed.bin", USER, USER)
    assert stat.S_IMODE(os.stat(card / "mixed.bin").st_mode) == 0o755
    os.chmod(card / "sub", 0o2775)
    os.chown(card / "sub", USER, USER)
    assert stat.S_IMODE(os.stat(card / "sub").st_mode) == 0o2775
    assert owner(card / "sub") == (USER, USER)
    # A branch root is no archived entry: it has no owner to change, and says so.
    with pytest.raises(OSError) as e:
        os.chown(main, USER, USER)
    assert e.value.errno == errno.EPERM


def test_a_chown_alone_is_committed_and_shows_in_diff(reelfs, shared_mount):
    main, archive = shared_mount
    before = reelfs.json("log", archive, "main")[0]["commit"]
    os.chown(main / "card" / "root.bin", USER, USER)
    os.chown(main / "card" / "sub", USER, 0)
    reelfs.ok("commit", archive, "main", "-m", "give root.bin to the editor")
    changes = {c["path"]: c for c in reelfs.json("diff", archive, f"main@{before}", "main")["changes"]}
    assert set(changes) == {"card/root.bin", "card/sub"}, changes
    c = changes["card/root.bin"]
    assert c["status"] == "modified" and c["hash"] == c["old_hash"]
    assert c["owner"] == {"from": {"uid": 0, "gid": 0}, "to": {"uid": USER, "gid": USER}}
    assert changes["card/sub"]["owner"]["to"] == {"uid": USER, "gid": 0}
    text = reelfs.ok("diff", archive, f"main@{before}", "main").stdout
    assert f"M  card/root.bin" in text and f"owner 0:0 -> {USER}:{USER}" in text, text
    rows = {e["name"]: (e["uid"], e["gid"]) for e in reelfs.json("ls", archive, "main/card")}
    assert rows["root.bin"] == (USER, USER) and rows["sub"] == (USER, 0)
    # Only the owner changed: the content is the same one.
    assert rows["user.bin"] == (USER, USER)
    # The catalog's rows are the trees the packs hold, owners included.
    reelfs.check_deep(archive)


def test_files_created_in_the_mount_belong_to_their_creator(reelfs, shared_mount):
    main, archive = shared_mount
    os.mkdir(main / "edit")
    os.chmod(main / "edit", 0o755)
    os.chown(main / "edit", USER, USER)
    d = main / "edit"
    # In a folder it owns, the user creates, renames and deletes its own files.
    for argv in (["sh", "-c", f"echo cut > {d}/v1.edl"], ["mkdir", d / "bin"], ["mv", d / "v1.edl", d / "v2.edl"],
                 ["sh", "-c", f"echo tmp > {d}/scratch"], ["rm", d / "scratch"]):
        p = as_user(*argv)
        assert p.returncode == 0, (argv, p.stderr)
    assert owner(d / "v2.edl") == (USER, USER)
    assert owner(d / "bin") == (USER, USER)
    assert (d / "v2.edl").read_text() == "cut\n"
    assert not (d / "scratch").exists()
    # Root's file in root's folder: the user may not delete, rename or write it...
    p = as_user("rm", "-f", main / "card" / "sub" / "deep.bin")
    assert p.returncode != 0 and "Permission denied" in p.stderr, p.stderr
    p = as_user("sh", "-c", f"echo x > {main}/card/root.bin")
    assert p.returncode != 0 and "Permission denied" in p.stderr, p.stderr
    # ...nor create files in a folder it does not own.
    p = as_user("touch", main / "card" / "sub" / "new")
    assert p.returncode != 0 and "Permission denied" in p.stderr, p.stderr
    # A setgid folder passes its group on, and a folder made in it stays setgid.
    os.chmod(d, 0o2777)
    os.chown(d, 0, 44)
    assert as_user("mkdir", d / "shared").returncode == 0
    assert owner(d / "shared") == (USER, 44)
    assert stat.S_IMODE(os.stat(d / "shared").st_mode) & stat.S_ISGID
    reelfs.ok("commit", archive, "main", "-m", "edit")
    rows = {e["name"]: (e["uid"], e["gid"]) for e in reelfs.json("ls", archive, "main/edit")}
    assert rows == {"v2.edl": (USER, USER), "bin": (USER, USER), "shared": (USER, 44)}


def test_a_sticky_folder_lets_users_delete_only_their_own_files(shared_mount):
    main, _ = shared_mount
    drop = main / "drop"
    os.mkdir(drop)
    os.chmod(drop, 0o1777)
    assert as_user("sh", "-c", f"echo mine > {drop}/a.txt").returncode == 0
    assert owner(drop / "a.txt") == (USER, USER)
    # Another user may write into the folder but not remove or rename what is not theirs.
    for argv in (["rm", "-f", drop / "a.txt"], ["mv", drop / "a.txt", drop / "b.txt"]):
        p = as_user(*argv, uid=65534, gid=65534)
        assert p.returncode != 0 and "Operation not permitted" in p.stderr, (argv, p.stderr)
    assert (drop / "a.txt").read_text() == "mine\n"
    assert as_user("rm", drop / "a.txt").returncode == 0
    assert not (drop / "a.txt").exists()
