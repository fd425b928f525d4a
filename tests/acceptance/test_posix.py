"""POSIX behaviour of a writable branch (issue 12, first slice): what the
standard (and pjdfstest, xfstests) expect of name lengths, link counts, access
times, fallocate and copy_file_range, and that the mount's derived names
(`.proxy`, `@` slices) are read-only rather than missing."""

import errno
import os
import shutil
import subprocess
import time

import pytest

from helpers import Mount, b3, wait_until, write_random


@pytest.fixture
def rw(tmp_path, reelfs):
    """A default (writable) mount of an archive holding card/{A001C001.mov, sub/notes.bin}."""
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    src = tmp_path / "card"
    write_random(src / "A001C001.mov", 3 << 20)
    write_random(src / "sub" / "notes.bin", 100_000)
    reelfs.ok("ingest", archive, src, "-m", "card")
    with Mount(reelfs, archive, tmp_path / "mnt") as m:
        yield m.mp, archive, src


def _errno_of(fn, *args):
    with pytest.raises(OSError) as e:
        fn(*args)
    return e.value.errno


# 1. NAME_MAX ---------------------------------------------------------------

def test_name_of_256_bytes_is_enametoolong_and_255_works(rw):
    mnt, _, _ = rw
    card = mnt / "main" / "card"
    long, ok = "n" * 256, "n" * 255
    assert _errno_of(os.open, card / long, os.O_CREAT | os.O_WRONLY, 0o644) == errno.ENAMETOOLONG
    assert _errno_of(os.mkdir, card / long) == errno.ENAMETOOLONG
    assert _errno_of(os.stat, card / long) == errno.ENAMETOOLONG
    assert _errno_of(os.rename, card / "A001C001.mov", card / long) == errno.ENAMETOOLONG
    # Multibyte: 128 two-byte characters are 256 bytes.
    assert _errno_of(os.mkdir, card / ("é" * 128)) == errno.ENAMETOOLONG
    assert (card / "A001C001.mov").exists()
    (card / ok).write_bytes(b"x")
    assert (card / ok).read_bytes() == b"x"
    os.mkdir(card / ("d" * 255))
    os.rename(card / "A001C001.mov", card / ("r" * 255))
    assert (card / ("r" * 255)).stat().st_size == 3 << 20


# 2. derived names are read-only --------------------------------------------

@pytest.fixture
def with_proxy(tmp_path, reelfs, media_dir):
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    card = tmp_path / "card"
    card.mkdir()
    shutil.copy(media_dir / "C003C002_h264_25p.mp4", card / "C003C002_h264_25p.mp4")
    reelfs.ok("ingest", archive, card, "-m", "card")
    reelfs.ok("proxy", archive, "--profiles", "thumb", timeout=600)
    with Mount(reelfs, archive, tmp_path / "mnt") as m:
        yield m.mp


def test_moving_proxy_or_slice_names_is_erofs_not_enoent(with_proxy):
    card = with_proxy / "main" / "card"
    proxy = card / ".proxy"
    thumb = proxy / "thumb" / "C003C002_h264_25p.jpg"
    assert thumb.is_file()
    # `mv MNT/main/x/.proxy y`, and the same inside and into .proxy/.
    assert _errno_of(os.rename, proxy, card / "y") == errno.EROFS
    assert _errno_of(os.rename, thumb, card / "t.jpg") == errno.EROFS
    assert _errno_of(os.rename, proxy / "thumb", card / "thumbs") == errno.EROFS
    assert _errno_of(os.rename, card / "C003C002_h264_25p.mp4", proxy / "x.mp4") == errno.EROFS
    # A slice: it resolves (it is a file), but it is not an entry to move.
    sl = card / "C003C002_h264_25p.mp4@00:00:00:00-00:00:00:10"
    assert sl.is_file()
    assert _errno_of(os.rename, sl, card / "cut.mp4") == errno.EROFS
    # Nor can a file be moved over a slice name or over a proxy.
    (card / "n.txt").write_bytes(b"n")
    assert _errno_of(os.rename, card / "n.txt", sl) == errno.EROFS
    assert _errno_of(os.rename, card / "n.txt", thumb) == errno.EROFS
    # `mv` (what a user types) says so, and nothing moved.
    p = subprocess.run(["mv", str(proxy), str(card / "y")], capture_output=True, text=True)
    assert p.returncode != 0 and "Read-only file system" in p.stderr, p.stderr
    assert thumb.is_file() and (card / "n.txt").read_bytes() == b"n"
    assert not (card / "y").exists()


# 3. directory link counts --------------------------------------------------

def test_directory_nlink_is_two_plus_subdirectories(rw, reelfs):
    mnt, archive, _ = rw
    card = mnt / "main" / "card"
    assert os.stat(card).st_nlink == 3  # sub/
    assert os.stat(card / "sub").st_nlink == 2
    for d in ("a", "b", "c"):
        (card / d).mkdir()
    (card / "file.txt").write_bytes(b"f")  # files do not count
    assert os.stat(card).st_nlink == 6
    os.rmdir(card / "c")
    assert os.stat(card).st_nlink == 5
    os.rename(card / "b", card / "sub" / "b")
    assert os.stat(card).st_nlink == 4
    assert os.stat(card / "sub").st_nlink == 3
    reelfs.ok("commit", archive, "main", "-m", "dirs")
    # The same in a read-only view of that commit, and at the branch and mount roots.
    reelfs.ok("branch", archive, "other", "--from", "main")
    # The mount reads branch heads at most once a second: wait until it has.
    assert wait_until(lambda: "other" in os.listdir(mnt), 10)
    head = reelfs.json("log", archive, "main")[0]
    commit = head["commit"]
    view = mnt / f"main@{commit[:12]}" / "card"
    assert os.stat(view).st_nlink == 4
    assert os.stat(view / "sub").st_nlink == 3
    assert os.stat(mnt / "main").st_nlink == 3  # card/
    root_subdirs = sum(1 for e in os.scandir(mnt) if e.is_dir())
    assert os.stat(mnt).st_nlink == 2 + root_subdirs
    # `find` (which may trust the count to skip leaves) sees every folder.
    found = subprocess.run(["find", str(card), "-type", "d"], capture_output=True, text=True, check=True).stdout.split()
    assert sorted(os.path.relpath(f, card) for f in found) == [".", "a", "sub", "sub/b"]


# 4. atime ------------------------------------------------------------------

def test_atime_set_by_utimensat_is_kept(rw):
    mnt, _, _ = rw
    card = mnt / "main" / "card"
    f = card / "staged.txt"
    f.write_bytes(b"hello")
    mtime = os.stat(f).st_mtime_ns
    atime = 1_000_000_000 * 1_000_000_000 + 123_456_789  # 2001-09-09, with nanoseconds
    os.utime(f, ns=(atime, mtime))
    time.sleep(1.2)  # past the attribute TTL: the daemon is asked again
    st = os.stat(f)
    assert st.st_atime_ns == atime
    assert st.st_mtime_ns == mtime
    # `touch -a -d` (UTIME_OMIT for mtime): atime changes, mtime does not.
    subprocess.run(["touch", "-a", "-d", "2020-01-02 03:04:05 UTC", str(f)], check=True)
    time.sleep(1.2)
    st = os.stat(f)
    assert st.st_atime_ns == 1577934245 * 1_000_000_000
    assert st.st_mtime_ns == mtime
    # On an archived (committed) file of the branch, and on a folder.
    os.utime(card / "A001C001.mov", ns=(atime, os.stat(card / "A001C001.mov").st_mtime_ns))
    os.utime(card / "sub", ns=(atime, os.stat(card / "sub").st_mtime_ns))
    time.sleep(1.2)
    assert os.stat(card / "A001C001.mov").st_atime_ns == atime
    assert os.stat(card / "sub").st_atime_ns == atime
    # The access time goes with a rename.
    os.rename(f, card / "moved.txt")
    time.sleep(1.2)
    assert os.stat(card / "moved.txt").st_atime_ns == 1577934245 * 1_000_000_000


# 5. fallocate --------------------------------------------------------------

def _fallocate(*args):
    return subprocess.run(["fallocate", *map(str, args)], capture_output=True, text=True)


def test_fallocate_extends_with_zeros_and_punches_holes(rw, reelfs):
    mnt, archive, src = rw
    card = mnt / "main" / "card"
    f = card / "grow.bin"
    f.write_bytes(b"A" * 1000)
    # Mode 0: extend to offset + length; the new bytes read as zeros.
    p = _fallocate("-o", 500, "-l", 1 << 20, f)
    assert p.returncode == 0, p.stderr
    data = f.read_bytes()
    assert len(data) == 500 + (1 << 20)
    assert data[:1000] == b"A" * 1000 and data[1000:] == bytes(len(data) - 1000)
    # Mode 0 inside the file changes nothing.
    assert _fallocate("-o", 0, "-l", 100, f).returncode == 0
    assert f.read_bytes() == data
    # PUNCH_HOLE|KEEP_SIZE on an archived file: the range reads as zeros, size unchanged.
    clip = card / "A001C001.mov"
    orig = (src / "A001C001.mov").read_bytes()
    p = _fallocate("--punch-hole", "-o", 4096, "-l", 100_000, clip)
    assert p.returncode == 0, p.stderr
    want = orig[:4096] + bytes(100_000) + orig[104_096:]
    assert clip.stat().st_size == len(orig)
    assert clip.read_bytes() == want
    # A punch reaching past the end stops at it.
    p = _fallocate("--punch-hole", "-o", len(orig) - 10, "-l", 1 << 20, clip)
    assert p.returncode == 0, p.stderr
    want = want[:-10] + bytes(10)
    assert clip.read_bytes() == want
    # Other modes are not supported, and change nothing.
    for args in (["--collapse-range"], ["--zero-range"], ["--insert-range"]):
        p = _fallocate(*args, "-o", 0, "-l", 4096, clip)
        assert p.returncode != 0 and "not supported" in p.stderr, (args, p.stderr)
    assert clip.read_bytes() == want
    # The holes commit as what they read.
    reelfs.ok("commit", archive, "main", "-m", "holes")
    out = subprocess.run([str(reelfs.binary), "cat", str(archive), "main/card/A001C001.mov"], capture_output=True, check=True).stdout
    assert out == want
    out = subprocess.run([str(reelfs.binary), "cat", str(archive), "main/card/grow.bin"], capture_output=True, check=True).stdout
    assert out == data


# 6. copy_file_range ----------------------------------------------------------

def _pack_bytes(archive):
    return sum(p.stat().st_size for p in (archive / "packs").rglob("*") if p.is_file())


def test_copy_file_range_reuses_the_source_chunks(rw, reelfs, tmp_path):
    mnt, archive, src = rw
    card = mnt / "main" / "card"
    big = tmp_path / "big.bin"
    write_random(big, 24 << 20)
    shutil.copy(big, card / "big.bin")
    reelfs.ok("commit", archive, "main", "-m", "big")
    before = _pack_bytes(archive)
    def copy(name, off_in, length, off_out=0, mode="wb"):
        with open(card / "big.bin", "rb") as fi, open(card / name, mode) as fo:
            while length:
                n = os.copy_file_range(fi.fileno(), fo.fileno(), length, off_in, off_out)
                assert n > 0
                length, off_in, off_out = length - n, off_in + n, off_out + n

    # A whole-file copy, as `cp` of coreutils 9 does.
    copy("copy.bin", 0, big.stat().st_size)
    assert b3(card / "copy.bin") == b3(big)
    # A range that starts and ends inside chunks: written byte by byte, its
    # first and last chunks would be new content (MiBs), not the source's.
    copy("part.bin", 1_000_003, 20 << 20)
    assert (card / "part.bin").read_bytes() == big.read_bytes()[1_000_003:1_000_003 + (20 << 20)]
    # A range, into the middle of an existing file.
    (card / "mid.bin").write_bytes(b"M" * 10_000)
    with open(card / "big.bin", "rb") as fi, open(card / "mid.bin", "r+b") as fo:
        assert os.copy_file_range(fi.fileno(), fo.fileno(), 5000, 1_000_003, 2000) == 5000
    want = b"M" * 2000 + big.read_bytes()[1_000_003:1_005_003] + b"M" * 3000
    assert (card / "mid.bin").read_bytes() == want
    reelfs.ok("commit", archive, "main", "-m", "copies")
    # Only metadata was written: mid.bin's own 10 kB at most.
    assert _pack_bytes(archive) - before < 256 << 10
    out = subprocess.run([str(reelfs.binary), "cat", str(archive), "main/card/copy.bin"], capture_output=True, check=True).stdout
    assert out == big.read_bytes()


# rename of a folder over a folder ------------------------------------------

def test_renaming_a_folder_over_a_full_folder_is_enotempty_and_loses_nothing(rw, reelfs):
    """pjdfstest rename/20.t: a folder may replace only an empty folder. Replacing
    a full one used to succeed and drop everything inside it."""
    mnt, archive, src = rw
    card = mnt / "main" / "card"
    os.mkdir(card / "moving")
    (card / "moving" / "new.bin").write_bytes(b"new")
    before = b3(card / "sub" / "notes.bin")
    assert _errno_of(os.rename, card / "moving", card / "sub") == errno.ENOTEMPTY
    assert b3(card / "sub" / "notes.bin") == before
    assert (card / "moving" / "new.bin").read_bytes() == b"new"
    # An empty folder is replaced, as POSIX says.
    os.mkdir(card / "empty")
    os.rename(card / "moving", card / "empty")
    assert (card / "empty" / "new.bin").read_bytes() == b"new"
    assert not (card / "moving").exists()
    reelfs.ok("commit", archive, "main", "-m", "moves")
    assert b3(card / "sub" / "notes.bin") == before
