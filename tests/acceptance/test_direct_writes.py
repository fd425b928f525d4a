"""Write-only handles of branch files go around the page cache (FOPEN_DIRECT_IO,
issue 16's sequential-write row; `FuseAdapter::write_only` in src/fs/fuse.rs).

A `cp` into the mount then costs one copy fewer in the writer's thread. What must
not change is what every other reader sees: a reader opened before the writer, a
reader opened after it, and a shared mapping all read the bytes just written, as
they would on a plain file. Each case runs the same steps on a plain file and on
the mount and compares."""

import mmap
import os
import shutil

import pytest

from helpers import b3, write_random

MiB = 1 << 20


@pytest.fixture
def card(reelfs, tmp_archive, tmp_path, mount):
    """A mounted branch folder holding an ingested 3 MiB file, and a plain copy of it."""
    src = tmp_path / "card"
    write_random(src / "A001C001.mov", 3 * MiB)
    reelfs.ok("ingest", tmp_archive, src, "-m", "card")
    plain = tmp_path / "plain"
    shutil.copytree(src, plain)
    m = mount(tmp_archive)
    return m.mp / "main" / "card", plain


def both(card, plain, steps):
    """Run `steps(path)` on the mounted file and on the plain one: the same answers."""
    here, there = steps(card / "A001C001.mov"), steps(plain / "A001C001.mov")
    assert here == there
    assert b3(card / "A001C001.mov") == b3(plain / "A001C001.mov")
    return here


def test_cp_of_a_large_file_into_the_mount_is_byte_exact(card, tmp_path):
    mounted, _ = card
    src = tmp_path / "big.bin"
    write_random(src, 40 * MiB + 12345)
    shutil.copyfile(src, mounted / "big.bin")  # write-only handle, 1 MiB writes
    assert b3(mounted / "big.bin") == b3(src)
    assert (mounted / "big.bin").stat().st_size == src.stat().st_size


def test_a_reader_opened_before_a_write_only_writer_reads_what_it_wrote(card):
    def steps(p):
        r = os.open(p, os.O_RDONLY)
        before = os.pread(r, 8192, 4096)  # its pages are now cached
        w = os.open(p, os.O_WRONLY)
        os.pwrite(w, b"X" * 8192, 4096)
        after = os.pread(r, 8192, 4096)
        os.close(w)
        os.close(r)
        return before != after, after

    changed, after = both(*card, steps)
    assert changed and after == b"X" * 8192


def test_a_reader_opened_after_a_write_only_writer_reads_its_later_writes(card):
    def steps(p):
        w = os.open(p, os.O_WRONLY)  # alone: this handle writes around the page cache
        os.pwrite(w, b"A" * 5000, 100_000)
        r = os.open(p, os.O_RDONLY)
        first = os.pread(r, 5000, 100_000)
        os.pwrite(w, b"B" * 5000, 100_000)  # the reader's cached pages are stale now
        second = os.pread(r, 5000, 100_000)
        os.pwrite(w, b"C" * 10, 3 * MiB - 5)  # and past the end
        tail = os.pread(r, 20, 3 * MiB - 10)
        os.close(w)
        os.close(r)
        return first, second, tail

    first, second, _ = both(*card, steps)
    assert (first, second) == (b"A" * 5000, b"B" * 5000)


def test_a_shared_mapping_sees_a_write_only_handles_writes(card):
    def steps(p):
        w = os.open(p, os.O_WRONLY)
        rw = os.open(p, os.O_RDWR)
        m = mmap.mmap(rw, 2 * MiB)
        seen = [bytes(m[MiB:MiB + 16])]
        os.pwrite(w, b"M" * 16, MiB)
        seen.append(bytes(m[MiB:MiB + 16]))
        m[0:4] = b"ABCD"
        m.flush()
        os.pwrite(w, b"Z" * 4, 8)
        seen.append(bytes(m[0:12]))
        m.close()
        os.close(rw)
        os.close(w)
        return seen

    seen = both(*card, steps)
    assert seen[1] == b"M" * 16 and seen[2][:4] == b"ABCD" and seen[2][8:] == b"ZZZZ"


def test_appends_through_two_write_only_handles_match_a_plain_file(card):
    def steps(p):
        a = os.open(p, os.O_WRONLY | os.O_APPEND)
        b = os.open(p, os.O_WRONLY | os.O_APPEND)
        for i in range(50):
            os.write(a if i % 2 else b, bytes([i]) * (777 + i))
        os.close(a)
        os.close(b)
        return os.stat(p).st_size

    both(*card, steps)


# Readers the daemon answers itself (no page cache in between): each must read
# the inode's current bytes, as on a plain file (src/fs/followers.rs).


def test_an_o_direct_reader_opened_before_the_writers_reads_their_bytes(card):
    def steps(p):
        r = os.open(p, os.O_RDONLY | os.O_DIRECT)
        buf = mmap.mmap(-1, 8192)  # page-aligned, as O_DIRECT asks

        def read():
            assert os.preadv(r, [buf], 4096) == 8192
            return bytes(buf)

        seen = [read()]
        w = os.open(p, os.O_WRONLY)
        os.pwrite(w, b"Y" * 8192, 4096)
        seen.append(read())  # while the writer is open
        os.close(w)
        seen.append(read())  # after it closed
        w = os.open(p, os.O_RDWR)
        os.pwrite(w, b"Z" * 4096, 8192)
        os.fsync(w)
        os.close(w)
        seen.append(read())  # after a second writer
        os.close(r)
        return seen

    seen = both(*card, steps)
    assert seen[1] == b"Y" * 8192 != seen[0]
    assert seen[3] == b"Y" * 4096 + b"Z" * 4096


def test_a_reader_whose_pages_were_dropped_reads_what_a_writer_left(card):
    def steps(p):
        r = os.open(p, os.O_RDONLY)
        before = os.pread(r, 8192, MiB)
        w = os.open(p, os.O_WRONLY)
        os.pwrite(w, b"Q" * 8192, MiB)
        os.close(w)
        # What memory pressure does: the reader's next read goes to the daemon.
        os.posix_fadvise(r, 0, 0, os.POSIX_FADV_DONTNEED)
        after = os.pread(r, 8192, MiB)
        os.close(r)
        return before != after, after

    changed, after = both(*card, steps)
    assert changed and after == b"Q" * 8192
