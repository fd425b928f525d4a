"""Issue 16, write rows: how ingest and writes through the mount put bytes into packs.

A pack is written once and not read back soon, so its bytes go to the disk around
the page cache (O_DIRECT): the profiles of ingest and of the mount's flusher were
dominated by the kernel copying pack writes into the page cache. These tests read
what the process asked of the kernel (strace, fds decorated with their paths), and
check that the bytes that went that way are the source's, whatever their alignment."""

import re
import signal
import subprocess
import time

from helpers import b3, write_random

MiB = 1 << 20

# fcntl(7</.../packs/01/00000001.pack>, F_SETFL, O_WRONLY|O_DIRECT|O_LARGEFILE) = 0
PACK_DIRECT = re.compile(r"fcntl\(\d+<[^>]*/packs/[^>]+\.pack>, F_SETFL, [^)]*\bO_DIRECT\b[^)]*\) = 0")


def stitched(trace):
    """strace's lines with each call another thread interrupted ("... <unfinished ...>",
    later "<... fcntl resumed>) = 0") joined back into one line: the O_DIRECT F_SETFL
    of a pack was missed when its result came on a line of its own."""
    pending, out = {}, []
    for line in trace.splitlines():
        pid, _, rest = line.partition(" ")
        rest = rest.lstrip()
        if rest.endswith("<unfinished ...>"):
            pending[pid] = rest[:-len("<unfinished ...>")].rstrip()
            continue
        resumed = re.match(r"<\.\.\. \w+ resumed>(.*)", rest)
        if resumed and pid in pending:
            rest = pending.pop(pid) + resumed.group(1)
        out.append(f"{pid}  {rest}")
    return "\n".join(out)


def pack_lines(trace):
    return "\n".join(line for line in trace.splitlines() if ".pack>" in line)[-3000:]


def strace_argv(log):
    return ["strace", "-f", "-y", "-e", "trace=fcntl", "-o", str(log)]


def test_ingest_writes_its_packs_around_the_page_cache(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "card"
    # Not a multiple of the 4 KiB alignment: the pack's tail goes through the page cache.
    write_random(src / "A001C001.mov", 9 * MiB + 123)
    log = tmp_path / "strace.log"
    p = subprocess.run(strace_argv(log) + reelfs.argv(["ingest", tmp_archive, src, "-m", "card"]),
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    trace = stitched(log.read_text())
    assert PACK_DIRECT.search(trace), "no pack was opened for direct I/O; its fcntl calls:\n" + pack_lines(trace)
    out = tmp_path / "out"
    reelfs.ok("restore", tmp_archive, "main/card", out)
    assert b3(out / "A001C001.mov") == b3(src / "A001C001.mov")
    reelfs.check_deep(tmp_archive)


def test_writes_through_the_mount_reach_packs_around_the_page_cache(reelfs, tmp_archive, tmp_path, mount):
    m = mount(tmp_archive)
    log = tmp_path / "strace.log"
    tracer = subprocess.Popen(strace_argv(log) + ["-p", str(m.pid)], stderr=subprocess.PIPE, text=True)
    try:
        # strace prints "attached" on stderr once it traces every thread.
        deadline = time.time() + 30
        while time.time() < deadline and "attached" not in (tracer.stderr.readline() or ""):
            pass
        src = write_random(tmp_path / "src.bin", 70 * MiB + 5)
        dst = m.mp / "main" / "clip.bin"
        with open(src, "rb") as f, open(dst, "wb") as g:
            for block in iter(lambda: f.read(MiB), b""):
                g.write(block)
        # close returned: the file is stored (fsync/close semantics), its packs written.
        assert b3(dst) == b3(src)
    finally:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=30)
        tracer.stderr.close()
    trace = stitched(log.read_text())
    assert PACK_DIRECT.search(trace), "no pack was opened for direct I/O; its fcntl calls:\n" + pack_lines(trace)


def test_data_holes_and_an_unaligned_tail_restore_to_the_source_b3sum(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "card" / "sparse.mov"
    src.parent.mkdir(parents=True)
    with open(src, "wb") as f:
        f.write(write_random(tmp_path / "a", 5 * MiB + 7).read_bytes())
        f.seek(8 * MiB, 1)
        f.write(write_random(tmp_path / "b", 3 * MiB + 4093).read_bytes())
    reelfs.ok("ingest", tmp_archive, src.parent, "-m", "sparse")
    out = tmp_path / "out"
    reelfs.ok("restore", tmp_archive, "main/card", out)
    # b3 is BLAKE3 as b3sum prints it, over the whole file (its holes read as zeros).
    assert b3(out / "sparse.mov") == b3(src)
    reelfs.check_deep(tmp_archive)
