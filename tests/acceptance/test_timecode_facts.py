"""Clips with incomplete or no timecode, variable frame rate, BWF iXML rates and
timecode breaks (issue 11), driven as a user would: `reelfs info`/`ls -l`/`slice`/
`tc set|clear`/`extract`, and a real FUSE mount (xattrs, slices opened by path).

Every clip is made inside the test by ffmpeg (or, for a BWF with iXML and a tmcd track
with two samples, by the small writers below), and every answer is checked with tools
other than reelfs: ffprobe (timecode tags, frame times), `ffmpeg -f framemd5` (frames),
the WAV bytes themselves.
"""

from __future__ import annotations

import json
import os
import re
import signal
import struct
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import pytest


TIMEOUT = 120


def run(argv, timeout=TIMEOUT, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("text", True)
    return subprocess.run([str(a) for a in argv], timeout=timeout, **kw)


def ffmpeg(*args):
    p = run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args])
    assert p.returncode == 0, p.stderr
    return p


def frame_hashes(path) -> list[str]:
    p = run(["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:v:0",
             "-fps_mode", "passthrough", "-f", "framemd5", "-"])
    assert p.returncode == 0, f"framemd5 of {path}:\n{p.stderr}"
    return [ln.rsplit(",", 1)[1].strip() for ln in p.stdout.splitlines() if ln and not ln.startswith("#")]


def frame_times(path) -> list[Fraction]:
    """Presentation times of the video frames, as ffprobe reads them (exact)."""
    p = run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
             "stream=time_base:packet=pts", "-of", "json", path])
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    tb = Fraction(d["streams"][0]["time_base"])
    pts = sorted(int(x["pts"]) for x in d["packets"])
    return [(x - pts[0]) * tb for x in pts]


def probe_tc(path) -> str | None:
    p = run(["ffprobe", "-v", "error", "-show_entries", "format_tags=timecode:stream_tags=timecode",
             "-of", "json", path])
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    for s in d.get("streams", []):
        if s.get("tags", {}).get("timecode"):
            return s["tags"]["timecode"]
    return d.get("format", {}).get("tags", {}).get("timecode")


# ---- media made here ------------------------------------------------------------------


def make_notc(path: Path, rate=25, seconds=4):
    """A phone-like clip: H.264 in MP4, no timecode at all."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=160x90:rate={rate}:duration={seconds}",
           "-c:v", "libx264", "-g", "12", "-bf", "0", "-pix_fmt", "yuv420p", path)


def make_vfr(path: Path):
    """Variable frame rate: every third frame is held twice as long (30 fps base)."""
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=30:duration=4",
           "-vf", "setpts='(N+floor(N/3))/30/TB'", "-fps_mode", "passthrough",
           "-c:v", "libx264", "-g", "12", "-bf", "0", "-pix_fmt", "yuv420p",
           "-video_track_timescale", "30000", path)


def make_tc_mov(path: Path, tc="00:00:00:00", rate=25, seconds=4):
    """A MOV with a timecode track (intra-only, so the file stays simple)."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=160x90:rate={rate}:duration={seconds}",
           "-c:v", "mjpeg", "-q:v", "5", "-timecode", tc, path)


def write_bwf(path: Path, time_reference: int, ixml: str | None, seconds=3, sr=48000):
    """A BWF as sound recorders write it: fmt, bext (time_reference), iXML, data."""
    ch, bits = 2, 24
    ba = ch * bits // 8
    fmt = struct.pack("<HHIIHH", 1, ch, sr, sr * ba, ba, bits)
    bext = bytearray(602)
    bext[0:11] = b"tcfacts wav"
    struct.pack_into("<Q", bext, 338, time_reference)
    struct.pack_into("<H", bext, 346, 1)  # version
    data = bytes((i * 7 + 3) & 0xFF for i in range(seconds * sr * ba))
    chunks = b""
    for cid, body in [(b"fmt ", fmt), (b"bext", bytes(bext))] + (
            [(b"iXML", ixml.encode())] if ixml is not None else []) + [(b"data", data)]:
        chunks += cid + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks)
    return data


IXML_2398 = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><BWFXML><IXML_VERSION>2.10</IXML_VERSION>"
             "<SPEED><MASTER_SPEED>24000/1001</MASTER_SPEED><CURRENT_SPEED>24000/1001</CURRENT_SPEED>"
             "<TIMECODE_RATE>24000/1001</TIMECODE_RATE><TIMECODE_FLAG>NDF</TIMECODE_FLAG></SPEED>"
             "</BWFXML>")


# QuickTime boxes, enough to give a tmcd track a second sample.
CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf"}


def boxes(buf: bytes, start=0, end=None):
    end = len(buf) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, typ = struct.unpack(">I4s", buf[pos:pos + 8])
        hdr = 8
        if size == 1:
            size = struct.unpack(">Q", buf[pos + 8:pos + 16])[0]
            hdr = 16
        elif size == 0:
            size = end - pos
        yield typ, pos, hdr, size
        pos += size


def rebuild(buf: bytes, start, end, edit) -> bytes:
    """Children of [start, end) re-serialised; `edit(path, typ, body)` may replace a
    leaf's body (return None to keep it)."""
    out = b""
    for typ, pos, hdr, size in boxes(buf, start, end):
        body = buf[pos + hdr:pos + size]
        if typ in CONTAINERS:
            body = rebuild(buf, pos + hdr, pos + size, edit)
            new = edit(typ, body, container=True)
        else:
            new = edit(typ, body, container=False)
        body = body if new is None else new
        out += struct.pack(">I4s", 8 + len(body), typ) + body
    return out


def add_tmcd_break(src: Path, dst: Path, at_frame: int, second_value: int):
    """Rewrite `src`'s tmcd track to two samples: its own value until `at_frame`, then
    `second_value` (a frame number). The 8 bytes of samples go in a new mdat after moov,
    which ffmpeg writes last, so no other offset moves."""
    buf = src.read_bytes()
    top = list(boxes(buf))
    assert top[-1][0] == b"moov", "expected moov at the end (no faststart)"
    _, mpos, mhdr, msize = top[-1]

    def tmcd_trak(body: bytes) -> bool:
        at = body.find(b"hdlr")  # the media handler: 'hdlr', version/flags, 'mhlr', subtype
        return at >= 0 and body[at + 12:at + 16] == b"tmcd"

    tracks = [(t, p, h, s) for t, p, h, s in boxes(buf, mpos + mhdr, mpos + msize) if t == b"trak"]
    tmcd = [tr for tr in tracks if tmcd_trak(buf[tr[1]:tr[1] + tr[3]])]
    assert len(tmcd) == 1
    tpos, tsize = tmcd[0][1], tmcd[0][3]
    stco = buf.find(b"stco", tpos, tpos + tsize)
    off = struct.unpack(">I", buf[stco + 12:stco + 16])[0]
    first_value = struct.unpack(">I", buf[off:off + 4])[0]
    # The tmcd sample entry: size, 'tmcd', reserved 6, dref 2, reserved 4, flags, timescale,
    # frame duration (in that timescale).
    entry = buf.find(b"tmcd", buf.find(b"stsd", tpos, tpos + tsize) + 8, tpos + tsize)
    frame_duration = struct.unpack(">I", buf[entry + 24:entry + 28])[0]
    stts = buf.find(b"stts", tpos, tpos + tsize)
    total = struct.unpack(">I", buf[stts + 16:stts + 20])[0]  # one entry: count 1, delta = whole
    d1 = at_frame * frame_duration
    assert 0 < d1 < total

    def edit_for(payload_offset):
        def edit(typ, body, container):
            if container or not edit.inside:
                return None
            if typ == b"stts":
                return struct.pack(">I I II II", 0, 2, 1, d1, 1, total - d1)
            if typ == b"stsz":
                return struct.pack(">I I I", 0, 4, 2)
            if typ == b"stsc":
                return struct.pack(">I I III", 0, 1, 1, 2, 1)
            if typ == b"stco":
                return struct.pack(">I I I", 0, 1, payload_offset)
            return None
        edit.inside = False
        return edit

    def build(payload_offset):
        # Rebuild moov; only the tmcd trak's tables change.
        out = b""
        for typ, pos, hdr, size in boxes(buf, mpos + mhdr, mpos + msize):
            if pos == tpos:
                e = edit_for(payload_offset)
                e.inside = True
                body = rebuild(buf, pos + hdr, pos + size, e)
            else:
                body = buf[pos + hdr:pos + size]
            out += struct.pack(">I4s", 8 + len(body), typ) + body
        return struct.pack(">I4s", 8 + len(out), b"moov") + out

    moov = build(0)
    payload_offset = mpos + len(moov) + 8
    moov = build(payload_offset)
    extra = struct.pack(">I4s", 16, b"mdat") + struct.pack(">II", first_value, second_value)
    dst.write_bytes(buf[:mpos] + moov + extra)
    return first_value


# ---- an archive and a mount -------------------------------------------------------------


def ingest(reelfs, archive, folder, to="Day01"):
    reelfs.ok("ingest", archive, folder, "--to", to, "-m", "cards")


def info(reelfs, archive, path):
    return reelfs.ok("info", archive, path).stdout


def info_json(reelfs, archive, path):
    return reelfs.json("info", archive, path)["media"]


def slice_to(reelfs, archive, spec, out: Path):
    p = reelfs("slice", archive, spec, "-o", out)
    assert p.returncode == 0, f"reelfs slice {spec}:\n{p.stdout}\n{p.stderr}"
    return p.stdout


# ---- 1. no timecode: say so --------------------------------------------------------------


def test_clip_without_timecode_says_it_is_assumed(reelfs, tmp_archive, tmp_path, mount):
    src = tmp_path / "card"
    src.mkdir()
    make_notc(src / "phone.mp4")
    assert probe_tc(src / "phone.mp4") is None
    ingest(reelfs, tmp_archive, src)
    clip = "main/Day01/card/phone.mp4"
    assert "no timecode (00:00:00:00 assumed)" in info(reelfs, tmp_archive, clip)
    assert info_json(reelfs, tmp_archive, clip)["timecode_source"] == "assumed"
    ls = reelfs.ok("ls", tmp_archive, "main/Day01/card", "-l").stdout
    line = next(ln for ln in ls.splitlines() if "phone.mp4" in ln)
    assert "no timecode (00:00:00:00 assumed)" in line, ls
    mp = mount(tmp_archive).mp
    f = mp / clip
    assert os.getxattr(f, "user.reelfs.timecode") == b"00:00:00:00"
    assert os.getxattr(f, "user.reelfs.timecode_source") == b"assumed"
    assert os.getxattr(f, "user.reelfs.timecode_note") == b"no timecode (00:00:00:00 assumed)"


# ---- 3. frame-number and seconds slices; VFR ------------------------------------------------


def test_frame_and_seconds_slices_are_frame_accurate(reelfs, tmp_archive, tmp_path, mount):
    src = tmp_path / "card"
    src.mkdir()
    make_notc(src / "phone.mp4")
    ingest(reelfs, tmp_archive, src)
    want = frame_hashes(src / "phone.mp4")
    times = frame_times(src / "phone.mp4")
    mp = mount(tmp_archive).mp
    folder = mp / "main/Day01/card"
    # Frames, out exclusive, read off the mount.
    assert frame_hashes(folder / "phone.mp4@f20-f45") == want[20:45]
    # Handles as for timecode slices.
    assert frame_hashes(folder / "phone.mp4@f20-f45+5") == want[15:50]
    # Seconds: the frames shown from IN up to (not including) OUT.
    expect = [i for i, t in enumerate(times) if Fraction(1) <= t < Fraction(5, 2)]
    assert frame_hashes(folder / "phone.mp4@1.0s-2.5s") == want[expect[0]:expect[-1] + 1]
    # The same through `reelfs slice`.
    out = tmp_path / "s.mp4"
    slice_to(reelfs, tmp_archive, "main/Day01/card/phone.mp4@f7-f19", out)
    assert frame_hashes(out) == want[7:19]
    # A frame range past the end is refused with the clip's length.
    p = reelfs("slice", tmp_archive, "main/Day01/card/phone.mp4@f90-f200")
    assert p.returncode != 0 and "frame 100" in p.stderr, p.stderr
    p = reelfs("slice", tmp_archive, "main/Day01/card/phone.mp4@f9-2s")
    assert p.returncode != 0 and "different units" in p.stderr, p.stderr


def test_vfr_clip_slices_by_time_frames_and_nominal_timecode(reelfs, tmp_archive, tmp_path, mount):
    src = tmp_path / "card"
    src.mkdir()
    make_vfr(src / "vfr.mp4")
    want = frame_hashes(src / "vfr.mp4")
    times = frame_times(src / "vfr.mp4")
    durations = {b - a for a, b in zip(times, times[1:])}
    assert len(durations) > 1, "the clip must really have variable frame durations"
    ingest(reelfs, tmp_archive, src)
    facts = info_json(reelfs, tmp_archive, "main/Day01/card/vfr.mp4")
    assert facts["variable_frame_rate"] is True
    mp = mount(tmp_archive).mp
    folder = mp / "main/Day01/card"
    assert frame_hashes(folder / "vfr.mp4@f10-f30") == want[10:30]
    expect = [i for i, t in enumerate(times) if Fraction(1) <= t < Fraction(5, 2)]
    assert frame_hashes(folder / "vfr.mp4@1s-2.5s") == want[expect[0]:expect[-1] + 1]
    # Timecode slices count at the nominal rate (average 22.5 fps -> 23.976, as the
    # proxies conform it): 00:00:01:00 is 24 * 1001/24000 s into the clip.
    out = tmp_path / "tc.mp4"
    text = slice_to(reelfs, tmp_archive, "main/Day01/card/vfr.mp4@00:00:01:00-00:00:02:00", out)
    assert "23.976" in text, text
    a, b = Fraction(24 * 1001, 24000), Fraction(48 * 1001, 24000)
    expect = [i for i, t in enumerate(times) if a <= t < b]
    assert frame_hashes(out) == want[expect[0]:expect[-1] + 1]


# ---- 2. tc set / clear -----------------------------------------------------------------------


def test_tc_set_is_a_versioned_fact_used_by_slices_info_mount_and_pulls(reelfs, tmp_archive, tmp_path, mount):
    src = tmp_path / "card"
    src.mkdir()
    make_notc(src / "phone.mp4")
    original = (src / "phone.mp4").read_bytes()
    want = frame_hashes(src / "phone.mp4")
    ingest(reelfs, tmp_archive, src)
    clip = "main/Day01/card/phone.mp4"
    # Invalid at the clip's rate (25): refused with the reason, nothing recorded.
    p = reelfs("tc", "set", tmp_archive, clip, "01:00:00:25")
    assert p.returncode != 0 and "frame 25 does not exist" in p.stderr, p.stderr
    assert "no timecode (00:00:00:00 assumed)" in info(reelfs, tmp_archive, clip)
    reelfs.ok("tc", "set", tmp_archive, clip, "01:00:00:00", "--reel", "A001")
    text = info(reelfs, tmp_archive, clip)
    assert "01:00:00:00 (set by user; file has none" in text, text
    assert "A001" in text
    # The original is untouched.
    restored = tmp_path / "restored"
    reelfs.ok("restore", tmp_archive, clip, restored)
    got = [p for p in restored.rglob("phone.mp4")] if restored.is_dir() else [restored]
    assert len(got) == 1 and got[0].read_bytes() == original
    # log shows the change.
    log = reelfs.ok("log", tmp_archive, "main").stdout
    assert "tc set Day01/card/phone.mp4 01:00:00:00" in log, log
    # Slices use it (and carry it as their timecode).
    out = tmp_path / "s.mov"
    slice_to(reelfs, tmp_archive, clip + "@01:00:01:00-01:00:02:00", out)
    assert frame_hashes(out) == want[25:50]
    assert probe_tc(out) == "01:00:01:00"
    # A branch made from main inherits it; a change on the branch stays there.
    reelfs.ok("branch", tmp_archive, "grade", "--from", "main")
    assert "01:00:00:00 (set by user" in info(reelfs, tmp_archive, "grade/Day01/card/phone.mp4")
    reelfs.ok("tc", "set", tmp_archive, "grade/Day01/card/phone.mp4", "02:00:00:00")
    assert "02:00:00:00 (set by user" in info(reelfs, tmp_archive, "grade/Day01/card/phone.mp4")
    assert "01:00:00:00 (set by user" in info(reelfs, tmp_archive, clip)
    # An EDL pull by reel and the recorded timecode finds the clip.
    edl = tmp_path / "cut.edl"
    edl.write_text("TITLE: CUT\nFCM: NON-DROP FRAME\n\n"
                   "001  A001     V     C        01:00:01:00 01:00:02:00 00:00:00:00 00:00:01:00\n")
    pulls = tmp_path / "pulls"
    reelfs.ok("extract", tmp_archive, "--edl", edl, "--out", pulls)
    made = [p for p in pulls.iterdir() if p.suffix in (".mp4", ".mov")]
    assert len(made) == 1, list(pulls.iterdir())
    assert frame_hashes(made[0]) == want[25:50]
    # The mount shows and slices it.
    mp = mount(tmp_archive).mp
    f = mp / clip
    assert os.getxattr(f, "user.reelfs.timecode") == b"01:00:00:00"
    assert os.getxattr(f, "user.reelfs.timecode_source") == b"user"
    assert os.getxattr(f, "user.reelfs.reel") == b"A001"
    assert frame_hashes(mp / (clip + "@01:00:02:00-01:00:02:10")) == want[50:60]
    # Clear: the assumed 00:00:00:00 is back.
    reelfs.ok("tc", "clear", tmp_archive, clip)
    assert "no timecode (00:00:00:00 assumed)" in info(reelfs, tmp_archive, clip)
    assert "tc clear Day01/card/phone.mp4" in reelfs.ok("log", tmp_archive, "main").stdout
    p = reelfs("tc", "clear", tmp_archive, clip)
    assert p.returncode != 0 and "nothing to clear" in p.stderr


def test_tc_set_over_a_files_own_timecode(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "card"
    src.mkdir()
    make_tc_mov(src / "A001C001.mov", tc="00:00:00:00")
    want = frame_hashes(src / "A001C001.mov")
    ingest(reelfs, tmp_archive, src)
    clip = "main/Day01/card/A001C001.mov"
    reelfs.ok("tc", "set", tmp_archive, clip, "10:00:00:00")
    assert "10:00:00:00 (set by user; file has 00:00:00:00" in info(reelfs, tmp_archive, clip)
    out = tmp_path / "s.mov"
    text = slice_to(reelfs, tmp_archive, clip + "@10:00:01:00-10:00:02:00", out)
    assert "zero-copy" in text
    assert frame_hashes(out) == want[25:50]
    assert probe_tc(out) == "10:00:01:00"


# ---- 4. BWF: iXML rate, 24 h wrap, --rate override -----------------------------------------


def bwf_label(tr: int, sr: int, num: int, den: int, fps: int) -> str:
    frames = (tr * num // (sr * den)) % (fps * 86400)
    s, f = divmod(frames, fps)
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}:{f:02d}"


def test_bwf_timecode_rate_from_ixml_and_wrap(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "sound"
    src.mkdir()
    tr_next_day = (25 * 3600 + 7) * 48000        # 25 h 7 s after midnight
    write_bwf(src / "ixml.wav", tr_next_day, IXML_2398)
    huge = 4_270_079_646 * 3600 * 48000 // 1000  # the kind of value that printed 4270079646:..
    write_bwf(src / "huge.wav", huge, None)
    data = write_bwf(src / "plain.wav", 3600 * 48000, None)
    ingest(reelfs, tmp_archive, src)
    f = info_json(reelfs, tmp_archive, "main/Day01/sound/ixml.wav")
    assert f["timecode"] == bwf_label(tr_next_day, 48000, 24000, 1001, 24)
    assert f["timecode_rate"] == "24000/1001"
    assert "23.976" in reelfs.ok("slice", tmp_archive, "main/Day01/sound/ixml.wav@" + f["timecode"] + "-" + bwf_label(tr_next_day + 48048, 48000, 24000, 1001, 24)).stdout
    text = info(reelfs, tmp_archive, "main/Day01/sound/huge.wav")
    tc = re.search(r"timecode\s+(\S+)", text).group(1)
    assert tc == bwf_label(huge, 48000, 25, 1, 25), text
    # --rate overrides what the file says; the slice then counts at that rate.
    reelfs.ok("tc", "set", tmp_archive, "main/Day01/sound/plain.wav", "10:00:00:00", "--rate", "25")
    assert "10:00:00:00 (set by user; file has 01:00:00:00" in info(reelfs, tmp_archive, "main/Day01/sound/plain.wav")
    out = tmp_path / "s.wav"
    slice_to(reelfs, tmp_archive, "main/Day01/sound/plain.wav@10:00:01:00-10:00:02:00", out)
    body = out.read_bytes()
    at = body.find(b"data")
    n = struct.unpack("<I", body[at + 4:at + 8])[0]
    assert body[at + 8:at + 8 + n] == data[48000 * 6:96000 * 6]
    # Its bext carries the recorded timecode: 10:00:01:00 at 25 fps, in samples.
    bext = body.find(b"bext")
    assert struct.unpack("<Q", body[bext + 8 + 338:bext + 8 + 346])[0] == (10 * 3600 + 1) * 48000


# ---- 5. timecode breaks inside a QuickTime clip --------------------------------------------------


def test_tmcd_break_is_listed_and_slices_take_the_tc_they_start_at(reelfs, tmp_archive, tmp_path, mount):
    src = tmp_path / "card"
    src.mkdir()
    plain = tmp_path / "plain.mov"
    make_tc_mov(plain, tc="01:00:00:00", rate=25, seconds=4)
    second = 2 * 3600 * 25  # 02:00:00:00
    add_tmcd_break(plain, src / "broken.mov", at_frame=48, second_value=second)
    want = frame_hashes(src / "broken.mov")
    assert want == frame_hashes(plain), "the patched file must decode the same frames"
    ingest(reelfs, tmp_archive, src)
    clip = "main/Day01/card/broken.mov"
    f = info_json(reelfs, tmp_archive, clip)
    assert f["timecode_breaks"] == [{"frame": 0, "timecode": "01:00:00:00"}, {"frame": 48, "timecode": "02:00:00:00"}]
    assert "frame 48 02:00:00:00" in info(reelfs, tmp_archive, clip)
    # A slice by the second run's labels.
    out = tmp_path / "a.mov"
    slice_to(reelfs, tmp_archive, clip + "@02:00:00:10-02:00:00:20", out)
    assert frame_hashes(out) == want[58:68]
    assert probe_tc(out) == "02:00:00:10"
    # A slice across the break is labelled where it starts.
    out = tmp_path / "b.mov"
    slice_to(reelfs, tmp_archive, clip + "@01:00:01:20-01:00:02:10", out)
    assert frame_hashes(out) == want[45:60]
    assert probe_tc(out) == "01:00:01:20"
    # The same through the mount, by frame numbers across the break.
    mp = mount(tmp_archive).mp
    s = mp / (clip + "@f50-f60")
    assert frame_hashes(s) == want[50:60]
    assert os.getxattr(s, "user.reelfs.timecode") == b"02:00:00:02"


def test_editorial_proxy_carries_the_recorded_timecode(reelfs, tmp_archive, tmp_path, mount):
    src = tmp_path / "card"
    src.mkdir()
    make_notc(src / "phone.mp4", seconds=2)
    ingest(reelfs, tmp_archive, src)
    clip = "main/Day01/card/phone.mp4"
    reelfs.ok("tc", "set", tmp_archive, clip, "01:00:00:00", "--reel", "A001")
    reelfs.ok("proxy", tmp_archive, clip, "--profiles", "editorial")
    mp = mount(tmp_archive).mp
    proxy = mp / "main/Day01/card/.proxy/editorial/phone.mov"
    assert probe_tc(proxy) == "01:00:00:00"
    assert len(frame_hashes(proxy)) == len(frame_hashes(src / "phone.mp4"))


# ---- 7. recorded timecodes live in the packs: a catalog rebuild keeps them ---------------


def test_recorded_timecode_survives_rebuild_catalog(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "card"
    src.mkdir()
    make_notc(src / "phone.mp4")
    make_notc(src / "other.mp4", seconds=2)
    want = frame_hashes(src / "phone.mp4")
    ingest(reelfs, tmp_archive, src)
    clip = "main/Day01/card/phone.mp4"
    other = "main/Day01/card/other.mp4"
    reelfs.ok("tc", "set", tmp_archive, clip, "01:00:00:00", "--reel", "A001", "--rate", "25")
    reelfs.ok("branch", tmp_archive, "grade", "--from", "main")
    reelfs.ok("tc", "set", tmp_archive, "grade/Day01/card/phone.mp4", "02:00:00:00")
    reelfs.ok("tc", "set", tmp_archive, other, "03:00:00:00")
    reelfs.ok("tc", "clear", tmp_archive, other)
    reelfs.ok("check", tmp_archive, "--rebuild-catalog")
    m = info_json(reelfs, tmp_archive, clip)
    assert (m["timecode"], m["timecode_source"], m["reel"]) == ("01:00:00:00", "user", "A001"), m
    assert "01:00:00:00 (set by user; file has none" in info(reelfs, tmp_archive, clip)
    g = info_json(reelfs, tmp_archive, "grade/Day01/card/phone.mp4")
    assert (g["timecode"], g["timecode_source"]) == ("02:00:00:00", "user"), g
    # A clear is a recorded fact too: it must not come back as the earlier set.
    assert info_json(reelfs, tmp_archive, other)["timecode_source"] == "assumed"
    out = tmp_path / "s.mov"
    slice_to(reelfs, tmp_archive, clip + "@01:00:01:00-01:00:02:00", out)
    assert frame_hashes(out) == want[25:50]
    assert probe_tc(out) == "01:00:01:00"
    p = reelfs("check", tmp_archive, "--deep")
    assert p.returncode == 0, p.stdout + p.stderr


def test_check_deep_verifies_recorded_timecodes_against_the_packs(reelfs, tmp_archive, tmp_path):
    import sqlite3

    src = tmp_path / "card"
    src.mkdir()
    make_notc(src / "phone.mp4", seconds=2)
    ingest(reelfs, tmp_archive, src)
    clip = "main/Day01/card/phone.mp4"
    reelfs.ok("tc", "set", tmp_archive, clip, "01:00:00:00")
    reelfs.ok("check", tmp_archive, "--deep")
    # Damage the catalog row (as a flipped byte in catalog.db would): check --deep
    # names the clip and the repair; the rebuild restores the recorded timecode.
    db = sqlite3.connect(Path(tmp_archive) / "catalog.db")
    with db:
        n = db.execute("UPDATE tc_facts SET timecode = '05:00:00:00' WHERE timecode = '01:00:00:00'").rowcount
    db.close()
    assert n == 1
    assert info_json(reelfs, tmp_archive, clip)["timecode"] == "05:00:00:00"
    p = reelfs("check", tmp_archive, "--deep")
    text = p.stdout + p.stderr
    assert p.returncode != 0, text
    assert "Day01/card/phone.mp4" in text and "--rebuild-catalog" in text, text
    reelfs.ok("check", tmp_archive, "--rebuild-catalog")
    assert info_json(reelfs, tmp_archive, clip)["timecode"] == "01:00:00:00"
    reelfs.ok("check", tmp_archive, "--deep")


def test_timecodes_recorded_only_in_the_catalog_are_named_and_stored_by_the_next_tc_set(reelfs, tmp_archive, tmp_path):
    import sqlite3

    src = tmp_path / "card"
    src.mkdir()
    make_notc(src / "phone.mp4", seconds=2)
    make_notc(src / "other.mp4", seconds=1)
    ingest(reelfs, tmp_archive, src)
    clip = "main/Day01/card/phone.mp4"
    # A row as an older reelfs wrote it: in catalog.db only, no pack record.
    db = sqlite3.connect(Path(tmp_archive) / "catalog.db")
    with db:
        head = db.execute("SELECT head FROM branches WHERE name = 'main'").fetchone()[0]
        blob = db.execute("SELECT hash FROM tree_entries WHERE name = 'phone.mp4'").fetchone()[0]
        db.executescript("CREATE TABLE IF NOT EXISTS tc_facts (commit_id BLOB NOT NULL, path TEXT NOT NULL, "
                         "blob BLOB NOT NULL, timecode TEXT, reel TEXT, rate TEXT, PRIMARY KEY (commit_id, path)) WITHOUT ROWID;")
        db.execute("INSERT INTO tc_facts VALUES (?, 'Day01/card/phone.mp4', ?, '01:00:00:00', 'A001', NULL)", (head, blob))
    db.close()
    assert info_json(reelfs, tmp_archive, clip)["timecode"] == "01:00:00:00"
    p = reelfs("check", tmp_archive, "--deep")
    text = p.stdout + p.stderr
    assert p.returncode != 0, text
    assert "only in catalog.db" in text and "main/Day01/card/phone.mp4" in text and "tc set" in text, text
    # Any tc set stores it in the packs too; a rebuild then keeps both.
    reelfs.ok("tc", "set", tmp_archive, "main/Day01/card/other.mp4", "02:00:00:00")
    reelfs.ok("check", tmp_archive, "--deep")
    reelfs.ok("check", tmp_archive, "--rebuild-catalog")
    m = info_json(reelfs, tmp_archive, clip)
    assert (m["timecode"], m["reel"], m["timecode_source"]) == ("01:00:00:00", "A001", "user"), m
    assert info_json(reelfs, tmp_archive, "main/Day01/card/other.mp4")["timecode"] == "02:00:00:00"
    reelfs.ok("check", tmp_archive, "--deep")


def test_recorded_timecode_in_a_lost_pack_is_written_again_by_the_next_ingest(reelfs, tmp_archive, tmp_path):
    import sqlite3

    src = tmp_path / "card"
    src.mkdir()
    make_notc(src / "phone.mp4", seconds=1)
    ingest(reelfs, tmp_archive, src)
    clip = "main/Day01/card/phone.mp4"
    reelfs.ok("tc", "set", tmp_archive, clip, "01:00:00:00", "--reel", "A001")
    db = sqlite3.connect(Path(tmp_archive) / "catalog.db")
    name = db.execute("SELECT p.name FROM objects o JOIN packs p ON p.id = o.pack WHERE o.kind = 8").fetchone()[0]
    db.close()
    (Path(tmp_archive) / "packs" / name).unlink()
    # The next ingest writes the lost pack's records again from the catalog rows.
    more = tmp_path / "more"
    more.mkdir()
    make_notc(more / "b.mp4", seconds=1)
    ingest(reelfs, tmp_archive, more, to="Day02")
    reelfs.ok("check", tmp_archive, "--rebuild-catalog")
    m = info_json(reelfs, tmp_archive, clip)
    assert (m["timecode"], m["reel"], m["timecode_source"]) == ("01:00:00:00", "A001", "user"), m
    reelfs.ok("check", tmp_archive, "--deep")
