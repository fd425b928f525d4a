"""Small helpers shared by the acceptance tests (plain functions, no fixtures)."""

import os
import stat


def b3(path):
    import blake3  # here, not at the top: scripts/bench imports this file without it

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


# ---- a reelfs mount: the one way the acceptance tests (and scripts/bench) mount ------

import signal
import time
from pathlib import Path

MOUNT_TIMEOUT = 30  # seconds for a mount/umount command; none should come close
PROCESS_EXIT_TIMEOUT = 15


def _unescape_mount_path(s: str) -> str:
    # /proc/mounts escapes space, tab, newline and backslash as \ooo.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def mount_entries() -> list:
    """(source, mountpoint, fstype) for every line of /proc/mounts."""
    out = []
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                out.append((_unescape_mount_path(parts[0]), _unescape_mount_path(parts[1]), parts[2]))
    return out


def is_mounted(mountpoint) -> bool:
    mp = os.path.realpath(mountpoint)
    return any(m == mp for _, m, _ in mount_entries())


def wait_until(pred, timeout: float, interval: float = 0.05) -> bool:
    """Poll `pred` until it is true (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


_witnesses = iter(range(1 << 30))


def heads_refreshed(reelfs, archive, mp, timeout: float = 10.0):
    """Return once the mount at `mp` has looked at the catalog's branch heads again
    (it does at most once a second): a branch made now with the CLI shows in its root.
    For checks that something did NOT appear, where polling the check would pass at
    once; the witness branch `refresh-witness-N` stays."""
    name = f"refresh-witness-{os.getpid()}-{next(_witnesses)}"
    reelfs.ok("branch", archive, name, "--from", "main")
    assert wait_until(lambda: name in os.listdir(mp), timeout), (
        f"the mount at {mp} did not show branch {name} within {timeout} s")


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            # A zombie has exited; only its parent has not reaped it yet.
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        # Reaped between the open and the read: the read fails with ESRCH.
        return False


def force_unmount(mountpoint):
    """Last resort in teardown: detach whatever is left at `mountpoint`."""
    if is_mounted(mountpoint):
        subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], capture_output=True, timeout=MOUNT_TIMEOUT)
    if is_mounted(mountpoint):
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, timeout=MOUNT_TIMEOUT)


def _fail(msg: str):
    # A test fails (never skips) when it cannot mount; outside pytest (scripts/bench)
    # the same is an exception.
    try:
        import pytest
    except ImportError:
        raise RuntimeError(msg) from None
    pytest.fail(msg, pytrace=False)


class Mount:
    """`reelfs mount ARCHIVE MOUNTPOINT FLAGS...` (daemonised) as a context manager.

    `reelfs` runs the binary: `reelfs(*args, timeout=, env=)` -> CompletedProcess (the
    `reelfs` fixture). The daemon's log goes to `logdir` (its TMPDIR; default: the
    mountpoint's parent); `env` adds variables (e.g. RUST_LOG). A mount that does not
    come up FAILS the test. On exit the mount is unmounted with `reelfs umount`, then
    lazily if that fails, and the daemon must exit (killed and reported if it does not).
    The conftest fixture `mount` makes these and tears them down for a test."""

    def __init__(self, reelfs, archive, mountpoint, *flags, logdir=None, env=None):
        self.reelfs = reelfs
        self.archive = Path(archive)
        self.mp = Path(mountpoint)
        self.flags = flags
        self.logdir = Path(logdir) if logdir else self.mp.parent
        self.env = env or {}
        self.pid = None
        self.log_path = None

    def __enter__(self) -> "Mount":
        self.mp.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, TMPDIR=str(self.logdir), **self.env)
        p = self.reelfs("mount", self.archive, self.mp, *self.flags, timeout=MOUNT_TIMEOUT, env=env)
        if p.returncode != 0 or not is_mounted(self.mp):
            force_unmount(self.mp)
            _fail(f"reelfs mount {self.archive} {self.mp} failed (exit {p.returncode}, "
                  f"mounted={is_mounted(self.mp)})\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        m = re.search(r"pid (\d+)(?:, log ([^)]+))?", p.stdout + p.stderr)
        if m:
            self.pid = int(m.group(1))
            self.log_path = Path(m.group(2)) if m.group(2) else None
        return self

    def log(self) -> str:
        """What the daemon logged (its own log file, or every mount log in `logdir`)."""
        files = [self.log_path] if self.log_path else sorted(self.logdir.glob("reelfs-mount-*.log"))
        return "\n".join(f.read_text(errors="replace") for f in files if f.exists())

    def alive(self) -> bool:
        """The daemon is still running."""
        return self.pid is not None and pid_alive(self.pid)

    def status(self, key: str) -> int:
        """A /proc/PID/status field of the daemon in KiB (VmRSS, VmHWM)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise AssertionError(f"{key} not in /proc/{self.pid}/status")

    def kill(self, sig=signal.SIGKILL):
        """Send the daemon `sig` and wait (bounded) until it is gone."""
        os.kill(self.pid, sig)
        wait_until(lambda: not pid_alive(self.pid), PROCESS_EXIT_TIMEOUT)

    def umount(self):
        """`reelfs umount`; when it succeeds, also wait (bounded) for the daemon to
        exit, so the archive is free for the next mount. Returns the CompletedProcess."""
        p = self.reelfs("umount", self.mp, timeout=MOUNT_TIMEOUT)
        if p.returncode == 0 and self.pid:
            wait_until(lambda: not pid_alive(self.pid), PROCESS_EXIT_TIMEOUT)
        return p

    def __exit__(self, *exc):
        try:
            if is_mounted(self.mp):
                self.umount()
        finally:
            force_unmount(self.mp)
            if self.pid and not wait_until(lambda: not pid_alive(self.pid), PROCESS_EXIT_TIMEOUT):
                os.kill(self.pid, signal.SIGKILL)
                force_unmount(self.mp)
                if exc[0] is None:
                    _fail(f"mount daemon {self.pid} did not exit after unmount\nlog:\n{self.log()}")
        return False
