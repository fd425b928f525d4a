"""Small helpers shared by the acceptance tests (plain functions, no fixtures)."""

import os
import stat

import blake3


def b3(path):
    h = blake3.blake3()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_random(path, size, mode=None, mtime_ns=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n
    if mode is not None:
        os.chmod(path, mode)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def assert_same_tree(src, dst):
    """Every file and folder under src exists under dst with the same bytes,
    mode and mtime (to the nanosecond), and nothing else is there."""
    src_names, dst_names = set(), set()
    for root, dirs, files in os.walk(src):
        for n in dirs + files:
            src_names.add(os.path.relpath(os.path.join(root, n), src))
    for root, dirs, files in os.walk(dst):
        for n in dirs + files:
            dst_names.add(os.path.relpath(os.path.join(root, n), dst))
    assert src_names == dst_names
    for rel in sorted(src_names | {"."}):
        a, b = os.path.join(src, rel), os.path.join(dst, rel)
        sa, sb = os.lstat(a), os.lstat(b)
        assert stat.S_IMODE(sa.st_mode) == stat.S_IMODE(sb.st_mode), rel
        assert sa.st_mtime_ns == sb.st_mtime_ns, rel
        if stat.S_ISREG(sa.st_mode):
            assert sa.st_size == sb.st_size, rel
            assert b3(a) == b3(b), rel


# ---- frame accuracy over every frame (ffmpeg's psnr filter, per-frame stats) ----

import re
import subprocess
import tempfile


def _frame_chain(label_in, label_out, size, skip):
    """Frames from `skip` on, renumbered 0, 1, 2 ... on a common clock (so the psnr
    filter pairs them by position, whatever each file's time base or start), scaled to
    `size` with the Rec. 709 matrix, as 8-bit 4:4:4 Y'CbCr."""
    w, h = size
    return (f"[{label_in}]trim=start_frame={skip},settb=AVTB,setpts=N*40000,"
            f"scale={w}:{h}:out_color_matrix=bt709:out_range=tv,format=yuv444p[{label_out}]")


def frame_psnrs(test, ref, size, *, shift=0, ref_opts=(), test_opts=()):
    """Luma PSNR (dB; inf when equal) of every frame k of `test` against frame
    k + `shift` of `ref`, both decoded by ffmpeg and brought to `size` = (w, h).

    One value per pair, in order; pairing stops at the shorter side, so a caller
    compares counts itself. `ref_opts`/`test_opts` are ffmpeg input options (an
    image sequence's -framerate/-start_number). Luma: the frame counter and the
    moving pattern are in it, and 4:2:0/4:2:2 chroma loss would blur a mismatch."""
    with tempfile.TemporaryDirectory(prefix="reelfs-psnr-") as tmp:
        stats = os.path.join(tmp, "psnr.log")
        graph = ";".join([
            _frame_chain("0:v", "t", size, max(-shift, 0)),
            _frame_chain("1:v", "r", size, max(shift, 0)),
            f"[t][r]psnr=stats_file={stats}:shortest=1",
        ])
        p = subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", *map(str, test_opts), "-i", str(test),
             *map(str, ref_opts), "-i", str(ref), "-lavfi", graph, "-f", "null", "-"],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
        assert p.returncode == 0, f"ffmpeg psnr of {test} against {ref} failed:\n{p.stderr}"
        with open(stats) as f:
            lines = [l for l in f if l.strip()]
    out = []
    for line in lines:
        m = re.search(r"psnr_y:(inf|[0-9.]+)", line)
        assert m, f"no psnr_y in ffmpeg's stats line {line!r}"
        out.append(float(m.group(1)))
    return out


def assert_every_frame_is_source_frame(test, ref, size, frames, *, min_db=30.0, margin_db=5.0,
                                       ref_opts=(), test_opts=(), what=""):
    """Frame k of `test` is frame k of `ref`, for EVERY k < `frames`: each pair
    agrees to at least `min_db` (the minimum over all frames, not the average), and
    each frame is clearly closer to its own source frame than to the source frames
    just before and after it (`margin_db`), so a dropped, repeated or shifted frame
    anywhere fails, even where neighbouring frames look alike."""
    same = frame_psnrs(test, ref, size, ref_opts=ref_opts, test_opts=test_opts)
    nxt = frame_psnrs(test, ref, size, shift=1, ref_opts=ref_opts, test_opts=test_opts)
    prev = frame_psnrs(test, ref, size, shift=-1, ref_opts=ref_opts, test_opts=test_opts)
    assert len(same) == frames, f"{what}: {len(same)} frame pairs compared, expected {frames}"
    worst = min(range(frames), key=lambda k: same[k])
    assert same[worst] >= min_db, (
        f"{what}: frame {worst} is not source frame {worst} ({same[worst]:.1f} dB < {min_db} dB)")
    for k in range(frames):
        if k + 1 < frames:
            assert same[k] > nxt[k] + margin_db, (
                f"{what}: frame {k} is as close to source frame {k + 1} ({nxt[k]:.1f} dB) "
                f"as to source frame {k} ({same[k]:.1f} dB)")
        if k > 0:
            assert same[k] > prev[k - 1] + margin_db, (
                f"{what}: frame {k} is as close to source frame {k - 1} ({prev[k - 1]:.1f} dB) "
                f"as to source frame {k} ({same[k]:.1f} dB)")
    return same


# ---- a reelfs mount for the length of a `with` block ----------------------------------

import signal
import time
from pathlib import Path


def mounted(mp) -> bool:
    mp = os.path.realpath(mp)
    with open("/proc/mounts") as f:
        return any(len(ln.split()) > 1 and ln.split()[1] == mp for ln in f)


class Mounted:
    """`reelfs mount ARCHIVE MP` on enter; on exit unmounted (lazily if it must be) and
    the daemon gone. `logdir` becomes the daemon's TMPDIR, where it writes its log. A
    mount that does not come up fails the test (never a skip)."""

    def __init__(self, reelfs, archive, mp, logdir=None):
        self.reelfs, self.archive, self.mp, self.logdir = reelfs, archive, Path(mp), logdir
        self.pid = None

    def __enter__(self):
        import pytest

        self.mp.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, TMPDIR=str(self.logdir)) if self.logdir else None
        p = self.reelfs("mount", self.archive, self.mp, timeout=30, env=env)
        if p.returncode != 0 or not mounted(self.mp):
            subprocess.run(["fusermount3", "-u", "-z", str(self.mp)], capture_output=True)
            pytest.fail(f"reelfs mount failed ({p.returncode}):\n{p.stdout}\n{p.stderr}", pytrace=False)
        m = re.search(r"pid (\d+)", p.stdout + p.stderr)
        self.pid = int(m.group(1)) if m else None
        return self

    def __exit__(self, *exc):
        if mounted(self.mp):
            self.reelfs("umount", self.mp, timeout=30)
        if mounted(self.mp):
            subprocess.run(["fusermount3", "-u", "-z", str(self.mp)], capture_output=True)
        if self.pid:
            for _ in range(100):
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(self.pid, signal.SIGKILL)
        return False
