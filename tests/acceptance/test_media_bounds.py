"""Media lookups through the mount cost bounded disk and memory (issue 11,
"Unbounded resources"), driven as a user (or a hostile local user) would.

- Remuxed MXF slices live in ARCHIVE/cache/slices under a size limit
  (`[cache] remux_limit` in reelfs.toml): looking up many distinct slice names keeps
  the folder under it, least recently used first, and every slice still reads
  frame-exact (framemd5 against ffmpeg's decode of the source), including one whose
  cache file was evicted while it was open.
- Concurrent lookups of one slice (spelled several ways, so the kernel cannot merge
  them) run one remux, as the mount's log says.
- A QuickTime file whose movie header declares millions of samples (constant sample
  size, one timing run: a few bytes of tables) costs the mount little memory to slice:
  the daemon's peak RSS (VmHWM, reset through /proc/PID/clear_refs) stays bounded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import threading
from pathlib import Path

import pytest

from test_slices import frames_to_tc as slices_frames_to_tc, tc_to_frames as slices_tc_to_frames

MXF = "B002C001_dnxhd_2997df.mxf"   # 90 frames, 29.97 DF, starts 00:00:59;00
MXF_FPS, MXF_START = 30, "00:00:59;00"
LIMIT = 6 << 20
TIMEOUT = 120


def run(argv, timeout=TIMEOUT, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run([str(a) for a in argv], timeout=timeout, **kw)


# ---- 29.97 DF labels, computed independently of reelfs (test_slices' SMPTE helpers) ----


def tc_to_frames(label: str) -> int:
    return slices_tc_to_frames(label, MXF_FPS, True)


def frames_to_tc(n: int) -> str:
    return slices_frames_to_tc(n, MXF_FPS, True)


def mxf_label(i: int) -> str:
    return frames_to_tc(tc_to_frames(MXF_START) + i)


def mxf_slice(a: int, b: int) -> str:
    return f"{MXF}@{mxf_label(a)}-{mxf_label(b)}"


def frame_hashes(path) -> list[str]:
    p = run(["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:v:0",
             "-fps_mode", "passthrough", "-f", "framemd5", "-"], text=True)
    assert p.returncode == 0, f"ffmpeg framemd5 of {path} failed:\n{p.stderr}"
    return [ln.rsplit(",", 1)[1].strip() for ln in p.stdout.splitlines() if ln and not ln.startswith("#")]


def cache_bytes(archive: Path) -> int:
    d = archive / "cache" / "slices"
    return sum(f.stat().st_size for f in d.iterdir() if f.is_file()) if d.exists() else 0


def cache_names(archive: Path) -> set[str]:
    d = archive / "cache" / "slices"
    return {f.name for f in d.iterdir()} if d.exists() else set()


def set_remux_limit(archive: Path, value: str):
    cfg = archive / "reelfs.toml"
    text = cfg.read_text()
    if re.search(r"^\[cache\]", text, re.M):
        text = re.sub(r"^remux_limit\s*=.*$", f"remux_limit = {value}", text, flags=re.M)
    else:
        text += f"\n[cache]\nremux_limit = {value}\n"
    cfg.write_text(text)


# ---- the mount -----------------------------------------------------------------------


@pytest.fixture
def info_mount(mount):
    """info_mount(archive, *flags) -> helpers.Mount whose daemon logs at info level
    to a file the test reads (the shared `mount` fixture unmounts it at the end)."""

    def do(archive: Path, *flags):
        mt = mount(archive, *flags, env={"RUST_LOG": "reelfs=info"})
        assert mt.pid and mt.log_path, "mount did not say its pid and log"
        return mt

    return do


@pytest.fixture
def mxf_archive(tmp_path, reelfs, media_dir) -> Path:
    """An archive holding only the test MXF clip, at main/Day01/card/."""
    src = tmp_path / "card"
    src.mkdir()
    shutil.copy(media_dir / MXF, src / MXF)
    arch = tmp_path / "archive"
    reelfs.ok("init", arch)
    reelfs.ok("ingest", arch, src, "--to", "Day01", "-m", "card")
    return arch


@pytest.fixture(scope="module")
def mxf_frames(media_dir) -> list[str]:
    h = frame_hashes(media_dir / MXF)
    assert len(h) == 90
    return h


# ---- the remux cache -------------------------------------------------------------------


def test_remux_cache_stays_under_its_limit_and_every_slice_reads_right(mxf_archive, info_mount, mxf_frames, tmp_path):
    set_remux_limit(mxf_archive, '"6M"')
    mt = info_mount(mxf_archive)
    card = mt.mp / "main" / "Day01" / "card"
    ranges = [(a, a + 6) for a in range(0, 84, 6)]
    sizes = {}
    for a, b in ranges:
        sizes[(a, b)] = os.stat(card / mxf_slice(a, b)).st_size
        assert sizes[(a, b)] > 0
        used = cache_bytes(mxf_archive)
        assert used <= LIMIT, f"after {mxf_slice(a, b)}: cache/slices holds {used} bytes, limit {LIMIT}"
    # Enough distinct slices went through to need eviction (else the limit was not tested).
    assert sum(sizes.values()) > 2 * LIMIT, sizes
    assert mt.log().count("evicted") > 0

    # Every slice, evicted or not, still reads frame-exact: the first, one from the
    # middle and the last (the most recent, still cached).
    for a, b in [ranges[0], ranges[len(ranges) // 2], ranges[-1]]:
        got = frame_hashes(card / mxf_slice(a, b))
        assert got == mxf_frames[a:b], f"{mxf_slice(a, b)}: frames differ from source frames {a}..{b}"
        assert cache_bytes(mxf_archive) <= LIMIT


def test_open_slice_reads_whole_after_its_cache_file_is_evicted(mxf_archive, info_mount, mxf_frames, tmp_path):
    set_remux_limit(mxf_archive, '"6M"')
    mt = info_mount(mxf_archive)
    card = mt.mp / "main" / "Day01" / "card"
    before = cache_names(mxf_archive)
    name = mxf_slice(40, 50)
    size = os.stat(card / name).st_size
    with open(card / name, "rb") as f:
        head = f.read(4096)
        ours = cache_names(mxf_archive) - before
        assert len(ours) == 1, ours
        # Push it out of the cache with other slices while the file is open.
        for a in range(0, 36, 6):
            os.stat(card / mxf_slice(a, a + 6))
        assert not (ours & cache_names(mxf_archive)), "the open slice's cache file was not evicted"
        rest = f.read()
    out = tmp_path / "read.mov"
    out.write_bytes(head + rest)
    assert out.stat().st_size == size
    assert frame_hashes(out) == mxf_frames[40:50]


def test_concurrent_lookups_of_one_slice_remux_once(mxf_archive, info_mount, mxf_frames):
    mt = info_mount(mxf_archive)
    card = mt.mp / "main" / "Day01" / "card"
    a, b = 30, 42   # crosses minute 1 (00:00:59;00 + 30 = 00:01:00;02)
    ins = {mxf_label(a), mxf_label(a).replace(":", "."), mxf_label(a).replace(":", ".", 1)}
    outs = {mxf_label(b), mxf_label(b).replace(":", "."), mxf_label(b).replace(":", ".", 1)}
    # Names the kernel sees as different files (so it sends every lookup), all the
    # same slice to reelfs.
    names = sorted(f"{MXF}@{i}-{o}" for i in ins for o in outs)
    assert len(names) == 9
    barrier = threading.Barrier(len(names))
    results: dict[str, object] = {}

    def look(n):
        barrier.wait()
        try:
            results[n] = os.stat(card / n).st_size
        except OSError as e:
            results[n] = e

    threads = [threading.Thread(target=look, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    sizes = set(results.values())
    assert len(sizes) == 1 and all(isinstance(s, int) and s > 0 for s in sizes), results
    remuxes = [ln for ln in mt.log().splitlines() if "remuxing" in ln and f"frames {a}..{b}" in ln]
    assert len(remuxes) == 1, f"{len(remuxes)} remuxes for one slice:\n" + "\n".join(remuxes)
    assert len([n for n in cache_names(mxf_archive) if not n.startswith(".")]) == 1
    assert frame_hashes(card / names[0]) == mxf_frames[a:b]


def test_remux_limit_from_the_mount_option(mxf_archive, info_mount, reelfs):
    """--remux-cache-limit overrides reelfs.toml for that mount, and a cache filled under
    a larger limit (here by `reelfs slice`) is cut down as the mount starts."""
    set_remux_limit(mxf_archive, '"1G"')
    for a in range(0, 40, 10):
        reelfs.ok("slice", mxf_archive, f"main/Day01/card/{mxf_slice(a, a + 10)}")
    assert cache_bytes(mxf_archive) > 3 << 20
    mt = info_mount(mxf_archive, "--remux-cache-limit", "3M")
    assert cache_bytes(mxf_archive) <= 3 << 20
    card = mt.mp / "main" / "Day01" / "card"
    for a in range(0, 60, 6):
        os.stat(card / mxf_slice(a, a + 6))
        assert cache_bytes(mxf_archive) <= 3 << 20


def test_remux_limit_holds_after_the_cache_folder_was_deleted(mxf_archive, info_mount):
    """cache/ is disposable: deleting it before a mount keeps the mount's limit."""
    shutil.rmtree(mxf_archive / "cache")
    mt = info_mount(mxf_archive, "--remux-cache-limit", "3M")
    card = mt.mp / "main" / "Day01" / "card"
    for a in range(0, 36, 6):
        os.stat(card / mxf_slice(a, a + 6))
        assert cache_bytes(mxf_archive) <= 3 << 20


def test_bad_remux_limit_is_refused_with_the_key_named(mxf_archive, reelfs):
    set_remux_limit(mxf_archive, '"lots"')
    p = reelfs("ls", mxf_archive, "main")
    assert p.returncode != 0
    assert "remux_limit" in p.stderr and "512M" in p.stderr, p.stderr


# ---- sample tables ----------------------------------------------------------------------


def _box(t: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I4s", 8 + len(body), t) + body


def _full(t: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(t, struct.pack(">I", (version << 24) | flags), *parts)


def write_many_sample_mov(path: Path, n: int, fps: int = 25):
    """A valid QuickTime movie of n one-byte 1x1 palette frames at `fps`, no timecode:
    one chunk, a constant `stsz`, one `stts` run. Its tables are a few dozen bytes."""
    ftyp = _box(b"ftyp", b"qt  ", struct.pack(">I", 0x200), b"qt  ")
    mdat_at = len(ftyp) + 8
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = _full(b"mvhd", 0, 0, struct.pack(">IIII", 0, 0, fps, n), struct.pack(">IH10x", 0x10000, 0x100),
                 matrix, bytes(24), struct.pack(">I", 2))
    tkhd = _full(b"tkhd", 0, 3, struct.pack(">IIIII", 0, 0, 1, 0, n), bytes(8), bytes(8), matrix,
                 struct.pack(">II", 1 << 16, 1 << 16))
    mdhd = _full(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, fps, n, 0, 0))
    hdlr = _full(b"hdlr", 0, 0, b"mhlr", b"vide", bytes(12), b"\x00")
    vmhd = _full(b"vmhd", 0, 1, bytes(8))
    dinf = _box(b"dinf", _full(b"dref", 0, 0, struct.pack(">I", 1), _full(b"alis", 0, 1)))
    entry = _box(b"raw ", bytes(6), struct.pack(">H", 1), bytes(16),
                 struct.pack(">HHIIIH", 1, 1, 72 << 16, 72 << 16, 0, 1), bytes(32), struct.pack(">hh", 8, -1))
    stbl = _box(b"stbl",
                _full(b"stsd", 0, 0, struct.pack(">I", 1), entry),
                _full(b"stts", 0, 0, struct.pack(">III", 1, n, 1)),
                _full(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, n, 1)),
                _full(b"stsz", 0, 0, struct.pack(">II", 1, n)),
                _full(b"stco", 0, 0, struct.pack(">II", 1, mdat_at)))
    moov = _box(b"moov", mvhd, _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, _box(b"minf", vmhd, dinf, stbl))))
    with open(path, "wb") as f:
        f.write(ftyp)
        f.write(struct.pack(">I4s", 8 + n, b"mdat"))
        f.write(bytes(n))
        f.write(moov)


def test_slicing_a_movie_with_millions_of_samples_keeps_the_mount_small(tmp_path, reelfs, info_mount):
    n = 8_000_000
    src = tmp_path / "card"
    src.mkdir()
    write_many_sample_mov(src / "many.mov", n)
    arch = tmp_path / "archive"
    reelfs.ok("init", arch)
    reelfs.ok("ingest", arch, src, "--to", "Day01", "-m", "crafted")
    info = reelfs.ok("info", arch, "main/Day01/card/many.mov").stdout
    assert "25" in info
    mt = info_mount(arch)
    card = mt.mp / "main" / "Day01" / "card"
    os.listdir(card)
    rss0 = mt.status("VmRSS")
    # Reset the peak RSS so VmHWM measures only what the lookups below cost.
    Path(f"/proc/{mt.pid}/clear_refs").write_text("5")
    for name in ["many.mov@00:00:10:00-00:00:11:00", "many.mov@10:00:00:00-10:00:00:05",
                 "many.mov@00:00:00:00-00:00:00:01", "many.mov@00:00:10:00-00:00:11:00+3"]:
        st = os.stat(card / name)
        assert st.st_size > 0
    peak = mt.status("VmHWM")
    grown = peak - rss0
    # The expanded tables of 8 M samples are hundreds of MiB; the compact ones are bytes.
    assert grown < 48 * 1024, f"the mount's peak RSS grew by {grown} KiB slicing {n} samples"
    # And the slices are right: 25 (then 5) frames of the source's, by ffprobe.
    for name, frames in [("many.mov@00:00:10:00-00:00:11:00", 25), ("many.mov@10:00:00:00-10:00:00:05", 5)]:
        p = run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=nb_frames",
                 "-of", "json", card / name], text=True)
        assert p.returncode == 0, p.stderr
        assert int(json.loads(p.stdout)["streams"][0]["nb_frames"]) == frames
