"""FUSE writeback caching in branch folders (issue 16, write rows), `--writeback on`
(off by default: see WRITEBACK_BY_DEFAULT in src/commands/mount.rs).

With writeback caching a write(2) into the mount fills the kernel's page cache
and the kernel sends the dirty pages to the daemon in large requests, instead of
one round trip per write(2). What the kernel then takes over must still behave
as on a plain file: O_APPEND, reads the kernel makes through a write-only handle
to fill a partly written page, mmap writers, truncate, and close/fsync making
the bytes durable. Each is checked against a plain file doing the same, and the
request sizes the daemon received are read from its own request log."""

import mmap
import os
import re

import pytest

from helpers import b3, write_random

MiB = 1 << 20
REQUEST_LOG = {"RUST_LOG": "fuser::request=debug"}


def write_request_sizes(log: str):
    """Sizes of the WRITE requests the daemon received (fuser's request log)."""
    return [int(m.group(1)) for m in re.finditer(r"\bWRITE fh [^\n]*?, size (\d+)", log)]


@pytest.fixture
def branch(reelfs, tmp_archive, tmp_path, mount):
    """A writable branch with one ingested 3 MiB file, on a mount that logs requests."""
    src = tmp_path / "card"
    write_random(src / "A001C001.mov", 3 * MiB)
    reelfs.ok("ingest", tmp_archive, src, "-m", "card")
    m = mount(tmp_archive, "--writeback", "on", env=REQUEST_LOG)
    return m, m.mp / "main" / "card", src


def test_small_writes_reach_the_daemon_as_large_requests(branch, tmp_path):
    m, card, _ = branch
    data = os.urandom(8 * MiB)
    with open(card / "new.bin", "wb", buffering=0) as f:
        for i in range(0, len(data), 4096):
            f.write(data[i:i + 4096])
    assert b3(card / "new.bin") == b3_bytes(tmp_path, data)
    sizes = write_request_sizes(m.log())
    assert sum(sizes) >= len(data), f"the daemon received {sum(sizes)} bytes in WRITE requests"
    # 2,048 write(2) calls of 4 KiB; without writeback caching each is one request.
    assert len(sizes) <= 64 and max(sizes) >= 256 * 1024, f"{len(sizes)} WRITE requests, largest {max(sizes)}"


@pytest.mark.parametrize("flags", [("--writeback", "off"), ()], ids=["off", "default"])
def test_writeback_off_sends_each_write_to_the_daemon(reelfs, tmp_archive, tmp_path, mount, flags):
    m = mount(tmp_archive, *flags, env=REQUEST_LOG)
    data = os.urandom(64 * 4096)
    with open(m.mp / "main" / "new.bin", "wb", buffering=0) as f:
        for i in range(0, len(data), 4096):
            f.write(data[i:i + 4096])
    assert (m.mp / "main" / "new.bin").read_bytes() == data
    sizes = write_request_sizes(m.log())
    assert sizes == [4096] * 64, f"WRITE requests: {sizes[:8]}... ({len(sizes)})"


def test_writeback_takes_on_or_off_and_refuses_anything_else(reelfs, tmp_archive, tmp_path):
    (tmp_path / "mp").mkdir()
    p = reelfs("mount", tmp_archive, tmp_path / "mp", "--writeback", "sometimes")
    assert p.returncode == 2, p.stderr
    assert "--writeback" in p.stderr and "sometimes" in p.stderr, p.stderr


def test_partial_page_writes_through_a_write_only_handle_keep_the_rest(branch, tmp_path):
    _, card, src = branch
    plain = tmp_path / "plain.mov"
    plain.write_bytes((src / "A001C001.mov").read_bytes())
    for path in (card / "A001C001.mov", plain):
        fd = os.open(path, os.O_WRONLY)
        try:
            # Inside pages whose other bytes the kernel must read first.
            os.pwrite(fd, b"grade", 5000)
            os.pwrite(fd, b"X" * 10, 2 * MiB + 123)
        finally:
            os.close(fd)
    assert b3(card / "A001C001.mov") == b3(plain)


def test_o_append_from_two_handles_matches_a_plain_file(branch, tmp_path):
    _, card, _ = branch
    plain = tmp_path / "log.txt"
    for path in (card / "log.txt", plain):
        path.write_bytes(b"start\n")
        a = os.open(path, os.O_WRONLY | os.O_APPEND)
        b = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            for i in range(50):
                os.write(a, f"a{i}\n".encode())
                os.write(b, f"b{i}\n".encode() * (i % 3 + 1))
        finally:
            os.close(a)
            os.close(b)
    assert (card / "log.txt").read_bytes() == plain.read_bytes()


def test_mmap_writer_then_truncate_matches_a_plain_file(branch, tmp_path):
    _, card, src = branch
    plain = tmp_path / "plain.mov"
    plain.write_bytes((src / "A001C001.mov").read_bytes())
    for path in (card / "A001C001.mov", plain):
        with open(path, "r+b") as f:
            with mmap.mmap(f.fileno(), 0) as mm:
                mm[100:110] = b"0123456789"
                mm[2 * MiB:2 * MiB + 4] = b"mmap"
                mm.flush()
            f.truncate(2 * MiB + 2)
            f.seek(0, os.SEEK_END)
            f.write(b"tail")
    assert b3(card / "A001C001.mov") == b3(plain)
    assert os.stat(card / "A001C001.mov").st_size == os.stat(plain).st_size


def test_written_bytes_and_mtime_survive_a_remount(reelfs, tmp_archive, tmp_path, mount):
    m = mount(tmp_archive, "--writeback", "on")
    p = m.mp / "main" / "clip.bin"
    data = os.urandom(3 * MiB + 17)
    with open(p, "wb") as f:
        f.write(data)
    shown = os.stat(p)
    m.umount()
    m2 = mount(tmp_archive, "--writeback", "on")
    st = os.stat(m2.mp / "main" / "clip.bin")
    assert (st.st_size, st.st_mtime_ns, st.st_ctime_ns) == (shown.st_size, shown.st_mtime_ns, shown.st_ctime_ns)
    assert (m2.mp / "main" / "clip.bin").read_bytes() == data


def b3_bytes(tmp_path, data):
    ref = tmp_path / "reference.bin"
    ref.write_bytes(data)
    return b3(ref)
