"""Timecode slices (`clip.mov@IN-OUT[+H]`) read straight off a real mount, and
`reelfs slice` / `reelfs extract` (EDL, OTIO, manual pulls), driven as a user would.

What "right" means here is checked with independent tools, never with reelfs itself:
- frames: `ffmpeg -f framemd5` of the slice equals the source's frames over the same
  range (hashes only; pts/size columns are ignored);
- timecode and reel: ffprobe (stream tags, tmcd data stream) and `mediainfo --Output=JSON`
  (QuickTime TC track), against labels computed by the small SMPTE helpers below;
- audio: every PCM track decoded to s32le equals the source's samples
  [floor(f0 * rate * frame_duration), floor(f1 * rate * frame_duration)) exactly;
- colour/field/aspect tags as ffprobe reports them.

The footage is scripts/gen-test-media (facts in scripts/test-media.md). One mount of the
session's `media_archive` serves the whole module; nothing here writes to it.

MXF slices are remuxed into the archive's cache, BWF slices are zero-copy WAVs; both get
the same checks as QuickTime where they apply.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from helpers import Mount

MEDIA_REL = "main/Day01/test-media"   # where conftest's media_archive puts the footage
TIMEOUT = 120

# ---- SMPTE labels, computed independently of reelfs ---------------------------------


def tc_to_frames(label: str, fps: int, df: bool) -> int:
    h, m, s, f = (int(x) for x in re.split(r"[:;.,]", label))
    n = (h * 3600 + m * 60 + s) * fps + f
    if df:
        drop = fps // 15            # 2 at 29.97, 4 at 59.94
        mins = h * 60 + m
        n -= drop * (mins - mins // 10)
    return n


def frames_to_tc(n: int, fps: int, df: bool) -> str:
    if df:
        drop = fps // 15
        per10 = fps * 600 - drop * 9
        per1 = fps * 60 - drop
        d, mod = divmod(n, per10)
        n += drop * 9 * d
        if mod > drop:
            n += drop * ((mod - drop) // per1)
    f = n % fps
    s = n // fps % 60
    m = n // (fps * 60) % 60
    h = n // (fps * 3600) % 24
    return f"{h:02d}:{m:02d}:{s:02d}{';' if df else ':'}{f:02d}"


class Clip:
    def __init__(self, key, file, rate, df, start, frames, reel=None, pcm=0, audio_rate=48000,
                 long_gop=False, has_tc=True):
        self.key, self.file, self.rate, self.df = key, file, rate, df
        self.fps = round(rate)
        self.start_label, self.frames, self.reel = start, frames, reel
        self.pcm, self.audio_rate, self.long_gop, self.has_tc = pcm, audio_rate, long_gop, has_tc
        self.start = tc_to_frames(start, self.fps, df)

    def label(self, i: int) -> str:
        """Label of frame index i of the clip (0 = first frame)."""
        return frames_to_tc(self.start + i, self.fps, self.df)

    def sample(self, i: int) -> int:
        """First audio sample of frame i: floor(i * rate * frame_duration)."""
        return (i * self.audio_rate * self.rate.denominator) // self.rate.numerator


CLIPS = {c.key: c for c in [
    Clip("A001", "A001C003_prores_2398.mov", Fraction(24000, 1001), False, "01:00:00:00", 48, reel="A001", pcm=8),
    Clip("C003mov", "C003C001_h264_25p.mov", Fraction(25), False, "10:00:00:00", 100, long_gop=True),
    Clip("C003mp4", "C003C002_h264_25p.mp4", Fraction(25), False, "00:00:00:00", 100, long_gop=True, has_tc=False),
    Clip("H008", "H008_2997df_min10.mov", Fraction(30000, 1001), True, "00:09:59;00", 90, pcm=2),
    Clip("I009", "I009_5994df.mov", Fraction(60000, 1001), True, "00:00:59;50", 120, pcm=1),
    Clip("J010", "J010_2997df_min1.mov", Fraction(30000, 1001), True, "00:00:59;20", 60, pcm=1),
    Clip("B002", "B002C001_dnxhd_2997df.mxf", Fraction(30000, 1001), True, "00:00:59;00", 90, pcm=2),
]}

# (clip, in index, out index (exclusive), handles suffix, what it covers)
CASES = [
    ("A001", 10, 24, "4", "mid, 4 handles"),
    ("A001", 0, 6, "", "first frame of the clip"),
    ("A001", 40, 48, "", "last frame of the clip"),
    ("A001", 2, 10, "4", "handles clamped at the start"),
    ("A001", 38, 46, "5", "handles clamped at the end"),
    ("A001", 1, 47, "100", "handles clamped at both ends"),
    ("C003mov", 7, 53, "3", "mid-GOP in point, handles"),
    ("C003mov", 13, 14, "", "one mid-GOP frame"),
    ("C003mov", 0, 5, "", "first frame"),
    ("C003mov", 95, 100, "", "last frame"),
    ("C003mp4", 7, 53, "3", "mid-GOP in point, no timecode"),
    ("C003mp4", 0, 5, "", "first frame, no timecode"),
    ("C003mp4", 90, 100, "2", "last frame, handle clamped"),
    ("J010", 5, 13, "2", "29.97 DF across minute 1"),
    ("J010", 0, 60, "", "whole clip"),
    ("H008", 25, 40, "3", "29.97 DF across minute 10"),
    ("H008", 85, 90, "", "last frame"),
    ("I009", 5, 25, "2", "59.94 DF across minute 1"),
    ("I009", 0, 3, "", "first frame"),
]
MXF_CASES = [("B002", 20, 40, "3", "MXF across minute 1")]


def case_id(c):
    return f"{c[0]}-{c[1]}-{c[2]}" + (f"+{c[3]}" if c[3] else "")


def slice_name(clip: Clip, a: int, b: int, h: str = "") -> str:
    return f"{clip.file}@{clip.label(a)}-{clip.label(b)}" + (f"+{h}" if h else "")


def expected_window(clip: Clip, a: int, b: int, h: str):
    hf = int(h) if h else 0
    first, end = max(0, a - hf), min(clip.frames, b + hf)
    return first, end, a - first, end - b


# ---- tools ---------------------------------------------------------------------------


def run(argv, timeout=TIMEOUT, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run([str(a) for a in argv], timeout=timeout, **kw)


def frame_hashes(path, stream="v:0") -> list[str]:
    p = run(["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", f"0:{stream}",
             "-fps_mode", "passthrough", "-f", "framemd5", "-"], text=True)
    assert p.returncode == 0, f"ffmpeg framemd5 of {path} failed:\n{p.stderr}"
    return [ln.rsplit(",", 1)[1].strip() for ln in p.stdout.splitlines() if ln and not ln.startswith("#")]


def pcm_s32(path, track: int) -> bytes:
    p = run(["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", f"0:a:{track}",
             "-c:a", "pcm_s32le", "-f", "s32le", "-"])
    assert p.returncode == 0, f"ffmpeg decode of audio {track} of {path} failed:\n{p.stderr.decode(errors='replace')}"
    return p.stdout


def ffprobe(path) -> dict:
    p = run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", path], text=True)
    assert p.returncode == 0, f"ffprobe {path} failed:\n{p.stderr}"
    return json.loads(p.stdout)


def mediainfo(path) -> list[dict]:
    p = run(["mediainfo", "--Output=JSON", path], text=True)
    assert p.returncode == 0, f"mediainfo {path} failed:\n{p.stderr}"
    return json.loads(p.stdout)["media"]["track"]


def mediainfo_tc(tracks):
    for t in tracks:
        if t.get("@type") == "Other" and (t.get("Type") == "Time code" or "TC" in t.get("Format", "")):
            return t
    return None


def xattrs(path) -> dict[str, str]:
    return {k: os.getxattr(path, k).decode() for k in os.listxattr(path) if k.startswith("user.reelfs.")}


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


_cache: dict = {}


def cached(key, fn):
    if key not in _cache:
        _cache[key] = fn()
    return _cache[key]


def video_stream(probe):
    return next(s for s in probe["streams"] if s["codec_type"] == "video")


def tmcd_stream(probe):
    return next((s for s in probe["streams"] if s.get("codec_tag_string") == "tmcd"), None)


# ---- the mount -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnt(tmp_path_factory, reelfs, media_archive):
    """The session's media archive mounted read-only for this module; yields the
    folder holding the footage (MOUNT/main/Day01/test-media)."""
    base = tmp_path_factory.mktemp("slice-mount")
    with Mount(reelfs, media_archive, base / "mnt", logdir=base) as m:
        yield m.mp / MEDIA_REL


def src_hashes(media_dir, clip: Clip):
    return cached(("v", clip.key), lambda: frame_hashes(media_dir / clip.file))


def src_pcm(media_dir, clip: Clip, k: int):
    return cached(("a", clip.key, k), lambda: pcm_s32(media_dir / clip.file, k))


def src_probe(media_dir, clip: Clip):
    return cached(("p", clip.key), lambda: ffprobe(media_dir / clip.file))


# ---- checks shared by the QuickTime cases and the MXF case ----------------------------


def check_frames(mnt, media_dir, clip, a, b, h):
    path = mnt / slice_name(clip, a, b, h)
    first, end, _, _ = expected_window(clip, a, b, h)
    src = src_hashes(media_dir, clip)
    assert len(src) == clip.frames
    got = frame_hashes(path)
    assert len(got) == end - first, f"{path.name}: {len(got)} frames decoded, expected {end - first}"
    for i, (g, s) in enumerate(zip(got, src[first:end])):
        assert g == s, f"{path.name}: slice frame {i} != source frame {first + i}"


def check_timecode(mnt, media_dir, clip, a, b, h):
    name = slice_name(clip, a, b, h)
    path = mnt / name
    first, end, hb, ha = expected_window(clip, a, b, h)
    want_first, want_last = clip.label(first), clip.label(end - 1)

    x = xattrs(path)
    assert x["user.reelfs.timecode"] == want_first
    assert x["user.reelfs.in"] == clip.label(a)
    assert x["user.reelfs.out"] == clip.label(b)
    assert x["user.reelfs.handles"] == f"{hb},{ha}", f"{name}: handles given"
    assert int(x["user.reelfs.duration_frames"]) == end - first
    assert x["user.reelfs.source"] == f"{MEDIA_REL}/{clip.file}"

    pr = ffprobe(path)
    v = video_stream(pr)
    src_v = video_stream(src_probe(media_dir, clip))
    tm = tmcd_stream(pr)
    if not clip.has_tc:
        # No timecode in the source: labels count from 00:00:00:00 and no tmcd is invented
        # with another start (if one is written, it must agree).
        assert "timecode" not in src_v.get("tags", {})
        for tc in (v.get("tags", {}).get("timecode"), tm and tm["tags"].get("timecode"),
                   pr["format"].get("tags", {}).get("timecode")):
            assert tc in (None, want_first), f"{name}: ffprobe timecode {tc}, expected {want_first}"
        return
    if clip.file.endswith(".mxf"):
        tags = pr["format"].get("tags", {})
        tc = tags.get("timecode") or v.get("tags", {}).get("timecode")
        assert tc == want_first, f"{name}: ffprobe timecode {tc}, expected {want_first}"
    else:
        assert v["tags"].get("timecode") == want_first, f"{name}: ffprobe video timecode"
        assert tm is not None, f"{name}: no tmcd stream"
        assert tm["tags"].get("timecode") == want_first
        src_tm = tmcd_stream(src_probe(media_dir, clip))
        assert tm["tags"].get("reel_name") == src_tm["tags"].get("reel_name") == clip.reel
    # The sample table holds the window's frames; a long-GOP slice also holds the preroll
    # from the preceding sync sample (and B-frame references), which its edit list hides.
    assert v.get("nb_frames") not in (None, "N/A"), f"{name}: ffprobe gives no frame count"
    if clip.long_gop:
        assert int(v["nb_frames"]) >= end - first, f"{name}: {v['nb_frames']} samples"
    else:
        assert int(v["nb_frames"]) == end - first, f"{name}: {v['nb_frames']} samples, expected {end - first}"

    tracks = mediainfo(path)
    mi = mediainfo_tc(tracks)
    assert mi is not None, f"{name}: mediainfo shows no timecode track"
    assert mi["TimeCode_FirstFrame"] == want_first, f"{name}: mediainfo first frame"
    assert mi["TimeCode_LastFrame"] == want_last, f"{name}: mediainfo last frame"
    if clip.reel:
        assert mi.get("Title") == clip.reel, f"{name}: mediainfo reel (Title)"
    # MediaInfo prints no TimeCode_DropFrame for these files: drop-frame shows as the
    # `;` before the frames of the labels it reads from the tmcd track.
    for key in ("TimeCode_FirstFrame", "TimeCode_LastFrame"):
        assert (";" in mi[key]) == clip.df, f"{name}: mediainfo {key} {mi[key]} (drop-frame: {clip.df})"
    # What a player shows (the edit list applied): exactly the window.
    (mv,) = [t for t in tracks if t.get("@type") == "Video"]
    assert int(mv["FrameCount"]) == end - first, f"{name}: mediainfo shows {mv['FrameCount']} frames"


def check_pcm(mnt, media_dir, clip, a, b, h):
    path = mnt / slice_name(clip, a, b, h)
    first, end, _, _ = expected_window(clip, a, b, h)
    pr = ffprobe(path)
    auds = [s for s in pr["streams"] if s["codec_type"] == "audio"]
    assert len(auds) == clip.pcm, f"{path.name}: {len(auds)} audio tracks, source has {clip.pcm}"
    for k in range(clip.pcm):
        src = src_pcm(media_dir, clip, k)
        n_src = len(src) // 4
        s0, s1 = clip.sample(first), min(clip.sample(end), n_src)
        got = pcm_s32(path, k)
        assert len(got) // 4 == s1 - s0, (
            f"{path.name} track {k}: {len(got) // 4} samples, expected {s1 - s0} "
            f"(source samples {s0}..{s1})")
        if got != src[4 * s0:4 * s1]:
            diff = next(i for i in range(0, len(got), 4) if got[i:i + 4] != src[4 * s0 + i:4 * s0 + i + 4])
            pytest.fail(f"{path.name} track {k}: sample {diff // 4} differs from source sample {s0 + diff // 4}")


COLOUR_KEYS = ("codec_name", "profile", "pix_fmt", "width", "height", "color_range", "color_space",
               "color_transfer", "color_primaries", "field_order", "sample_aspect_ratio",
               "display_aspect_ratio", "r_frame_rate", "codec_tag_string")


def check_colour(mnt, media_dir, clip, a, b, h, remuxed=False):
    path = mnt / slice_name(clip, a, b, h)
    got = video_stream(ffprobe(path))
    want = video_stream(src_probe(media_dir, clip))
    for k in COLOUR_KEYS:
        if remuxed and (want.get(k) is None or k == "codec_tag_string" or (k == "field_order" and got.get(k) is None)):
            # A remuxed slice is a MOV. Where the source container says nothing
            # (MXF's colour range) the MOV muxer must write a value (DNx's ACLR
            # atom); and for DNx the MOV muxer writes the Avid atoms instead of
            # `fiel`, so the field order is read from the DNx frame header. The
            # codec tag is the container's own (MXF has none, MOV says AVdn).
            continue
        assert got.get(k) == want.get(k), f"{path.name}: {k} {got.get(k)!r} != source {want.get(k)!r}"


# ---- QuickTime slices ----------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_slice_frames_equal_source(mnt, media_dir, case):
    """framemd5 of the slice read off the mount == the source's frames over
    [in - handles, out + handles), clamped; includes first/last frame and mid-GOP ins."""
    c = CLIPS[case[0]]
    check_frames(mnt, media_dir, c, *case[1:4])


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_slice_timecode_reel_and_handles(mnt, media_dir, case):
    """Start TC = in minus the handles given (ffprobe, mediainfo, xattr); reel kept;
    user.reelfs.handles shows the handles actually given after clamping."""
    c = CLIPS[case[0]]
    check_timecode(mnt, media_dir, c, *case[1:4])


@pytest.mark.parametrize("case", [x for x in CASES if CLIPS[x[0]].pcm], ids=case_id)
def test_slice_pcm_tracks_sample_exact(mnt, media_dir, case):
    c = CLIPS[case[0]]
    check_pcm(mnt, media_dir, c, *case[1:4])


@pytest.mark.parametrize("case", [x for x in CASES if CLIPS[x[0]].long_gop], ids=case_id)
def test_slice_coded_audio_covers_the_range(mnt, media_dir, case):
    """AAC cannot be cut sample-exact without re-encoding; the slice still carries it,
    decodable, and as long as the video to within one AAC frame (1024 samples)."""
    c = CLIPS[case[0]]
    path = mnt / slice_name(c, *case[1:4])
    first, end, _, _ = expected_window(c, *case[1:4])
    got = pcm_s32(path, 0)
    n = len(got) // 8  # stereo
    want = c.sample(end) - c.sample(first)
    assert abs(n - want) <= 1024, f"{path.name}: {n} audio samples for {want} expected"


@pytest.mark.parametrize("case", [x for x in CASES if x[3] == ""][:1] + CASES[:1] + [CASES[6], CASES[13], CASES[15], CASES[17]],
                         ids=case_id)
def test_slice_colour_field_aspect_tags(mnt, media_dir, case):
    c = CLIPS[case[0]]
    check_colour(mnt, media_dir, c, *case[1:4])


@pytest.mark.parametrize("key", ["A001", "C003mov", "C003mp4", "H008", "I009", "J010"])
def test_slice_opens_in_ffmpeg_off_the_mount(mnt, media_dir, key):
    """Every stream of a slice decodes read off the mount, with no error and no warning
    that decoding the source does not also give (PCM tracks without a channel layout
    always warn "Guessed Channel Layout")."""
    c = CLIPS[key]
    path = mnt / slice_name(c, 3, c.frames - 3, "2")

    def decode(f):
        p = run(["ffmpeg", "-nostdin", "-v", "warning", "-xerror", "-i", f, "-map", "0:v", "-map", "0:a?",
                 "-f", "null", "-"], text=True)
        assert p.returncode == 0, f"{f}:\n{p.stderr}"
        return set(ln.strip() for ln in p.stderr.splitlines() if ln.strip())

    extra = decode(path) - decode(media_dir / c.file)
    assert not extra, f"{path.name}: warnings the source does not give:\n" + "\n".join(sorted(extra))


def test_dot_form_and_trailing_extension_are_the_same_slice(mnt):
    c = CLIPS["A001"]
    colon = mnt / slice_name(c, 10, 24, "4")
    dot = mnt / f"{c.file}@01.00.00.10-01.00.01.00+4"
    dot_ext = mnt / f"{c.file}@01.00.00.10-01.00.01.00+4.mov"
    want = sha256(colon)
    assert sha256(dot) == want
    assert sha256(dot_ext) == want
    assert xattrs(dot)["user.reelfs.timecode"] == "01:00:00:06"


def test_dot_form_for_drop_frame(mnt, media_dir):
    """`.` everywhere on a DF clip reads the labels as the clip's drop-frame labels."""
    c = CLIPS["J010"]
    semi = mnt / f"{c.file}@00:00:59;25-00:01:00;05"
    dot = mnt / f"{c.file}@00.00.59.25-00.01.00.05"
    assert sha256(dot) == sha256(semi)
    x = xattrs(dot)
    assert (x["user.reelfs.in"], x["user.reelfs.out"]) == ("00:00:59;25", "00:01:00;05")
    src = src_hashes(media_dir, c)
    # 00:00:59;25 is frame 5; 00:01:00;05 is frame 13 (labels ;00 and ;01 are skipped).
    assert frame_hashes(dot) == src[5:13]


@pytest.mark.parametrize("key,a,b,h,want", [
    ("C003mov", 50, 51, "2s", (50, 49)),   # 2 s at 25 = 50 frames; clamped at the end
    ("H008", 30, 40, "1s", (30, 30)),      # ceil(30000/1001) = 30
    ("H008", 30, 40, "2s", (30, 50)),      # 60 asked, clamped both sides
    ("I009", 60, 61, "0.5s", (30, 30)),    # ceil(0.5 * 60000/1001) = 30
    ("A001", 20, 28, "0.25s", (6, 6)),     # ceil(0.25 * 24000/1001) = 6
])
def test_seconds_handles(mnt, media_dir, reelfs, media_archive, key, a, b, h, want):
    c = CLIPS[key]
    name = slice_name(c, a, b, h)
    x = xattrs(mnt / name)
    assert x["user.reelfs.handles"] == f"{want[0]},{want[1]}"
    assert x["user.reelfs.timecode"] == c.label(a - want[0])
    src = src_hashes(media_dir, c)
    assert frame_hashes(mnt / name) == src[a - want[0]:b + want[1]]
    plan = reelfs.json("slice", media_archive, f"{MEDIA_REL}/{name}")
    asked = {"2s": 2, "1s": 1, "0.5s": Fraction(1, 2), "0.25s": Fraction(1, 4)}[h]
    import math
    assert plan["handles_requested"] == math.ceil(asked * c.rate)
    assert (plan["handles_before"], plan["handles_after"]) == want


def test_reelfs_slice_reports_handles_asked_and_given(reelfs, media_archive, tmp_path, mnt):
    c = CLIPS["A001"]
    name = slice_name(c, 1, 47, "100")
    plan = reelfs.json("slice", media_archive, f"{MEDIA_REL}/{name}")
    assert (plan["handles_requested"], plan["handles_before"], plan["handles_after"]) == (100, 1, 1)
    assert plan["start_tc"] == "01:00:00:00"
    out = tmp_path / "s.mov"
    reelfs.ok("slice", media_archive, f"{MEDIA_REL}/{name}", "-o", out)
    assert sha256(out) == sha256(mnt / name), "reelfs slice -o writes the bytes the mount serves"


def test_slice_names_are_not_listed(mnt):
    c = CLIPS["A001"]
    name = slice_name(c, 10, 24, "4")
    assert os.stat(mnt / name).st_size > 0           # resolved...
    assert name not in os.listdir(mnt)               # ...but never listed
    assert not [n for n in os.listdir(mnt) if "@" in n]
    ls = run(["ls", "-a", mnt], text=True)
    assert ls.returncode == 0 and "@" not in ls.stdout
    found = run(["find", mnt], text=True)
    assert "@" not in found.stdout


def test_slice_size_and_bytes_are_stable(mnt):
    """stat size == bytes read, and two reads give the same bytes."""
    p = mnt / slice_name(CLIPS["C003mov"], 7, 53, "3")
    data = p.read_bytes()
    assert len(data) == os.stat(p).st_size
    assert p.read_bytes() == data


# ---- names that must not resolve -------------------------------------------------------

BAD = [
    ("A001C003_prores_2398.mov@00:59:59:00-01:00:00:10", r"outside the clip", "in before the clip"),
    ("A001C003_prores_2398.mov@01:00:01:00-01:00:02:01", r"outside the clip", "out after the clip"),
    ("A001C003_prores_2398.mov@01:00:01:00-01:00:00:10", r"not after in point", "out before in"),
    ("A001C003_prores_2398.mov@01:00:00:10-01:00:00:10", r"not after in point", "empty"),
    ("A001C003_prores_2398.mov@01:00:00:10-01:00:0x:00", r"looks like a timecode slice", "malformed out"),
    ("A001C003_prores_2398.mov@01:00:00:10-01:00:01:00+", r"handle", "dangling +"),
    ("A001C003_prores_2398.mov@01:00:00:10-01:00:01:00+4x", r"follows the out point", "junk after handles"),
    ("A001C003_prores_2398.mov@01:00:00:24-01:00:01:00", r"frame 24 does not exist", "frame 24 at 23.976"),
    ("A001C003_prores_2398.mov@01:60:00:00-01:60:01:00", r"out of range", "minute 60"),
    ("A001C003_prores_2398.mov@01:00:00:10-01:00:01:00.mxf", r"not the extension", "wrong trailing ext"),
    ("J010_2997df_min1.mov@00:01:00;00-00:01:00;10", r"does not exist in 29.97 drop-frame", "dropped ;00"),
    ("J010_2997df_min1.mov@00:00:59;25-00:01:00;01", r"does not exist in 29.97 drop-frame", "dropped ;01"),
    ("I009_5994df.mov@00:01:00;03-00:01:00;10", r"does not exist in 59.94 drop-frame", "59.94 dropped ;03"),
    ("J010_2997df_min1.mov@00:00:59;10-00:00:59;25", r"outside the clip", "DF in before the clip"),
    ("NOPE.mov@01:00:00:00-01:00:01:00", r"(?i)not found|no such|does not exist", "no such clip"),
]


@pytest.mark.parametrize("name,reason,what", BAD, ids=[b[2] for b in BAD])
def test_bad_slice_is_enoent_and_cli_says_why(mnt, reelfs, media_archive, name, reason, what):
    path = mnt / name
    with pytest.raises(FileNotFoundError) as e:
        os.stat(path)
    assert e.value.errno == errno.ENOENT
    with pytest.raises(FileNotFoundError):
        open(path, "rb")
    p = reelfs("slice", media_archive, f"{MEDIA_REL}/{name}")
    assert p.returncode != 0, f"reelfs slice accepted {name}:\n{p.stdout}"
    assert re.search(reason, p.stderr), f"reelfs slice {name}: reason not given:\n{p.stderr}"
    # A failed lookup does not poison the folder: a good slice still resolves.
    assert os.stat(mnt / slice_name(CLIPS["A001"], 10, 24)).st_size > 0


def test_minute_ten_label_is_not_dropped(mnt, media_dir):
    """00:10:00;00 exists (minute 10 keeps its labels) and is H008's frame 30."""
    c = CLIPS["H008"]
    path = mnt / f"{c.file}@00:10:00;00-00:10:00;02"
    assert frame_hashes(path) == src_hashes(media_dir, c)[30:32]
    assert xattrs(path)["user.reelfs.timecode"] == "00:10:00;00"


def test_at_sign_names_that_are_not_slices_stay_ordinary(mnt):
    with pytest.raises(FileNotFoundError):
        os.stat(mnt / "A001C003_prores_2398.mov@notatimecode")
    with pytest.raises(FileNotFoundError):
        os.stat(mnt / "mail@host.txt")


# ---- MXF and BWF ----------------------------------------------------------------------


@pytest.mark.parametrize("case", MXF_CASES, ids=case_id)
def test_mxf_slice(mnt, media_dir, case):
    """Same checks as QuickTime: frames, timecode (in - handles), every PCM track, colour."""
    c = CLIPS[case[0]]
    check_frames(mnt, media_dir, c, *case[1:4])
    check_timecode(mnt, media_dir, c, *case[1:4])
    check_pcm(mnt, media_dir, c, *case[1:4])
    check_colour(mnt, media_dir, c, *case[1:4], remuxed=True)


@pytest.mark.parametrize("spec", [
    ("01:00:00:10", "01:00:01:00", 0),
    ("01:00:00:00", "01:00:02:23", 0),
])
def test_wav_slice(mnt, media_dir, spec):
    """A BWF slice: bext time_reference = in point in samples; samples equal the source's.
    The labels are counted at 25 fps (what `reelfs info` shows for a WAV)."""
    a, b, _ = spec
    name = f"D004_bwf.wav@{a}-{b}"
    path = mnt / name
    sr, start = 48000, 172800000
    s0 = tc_to_frames(a, 25, False) * sr // 25 - start
    s1 = tc_to_frames(b, 25, False) * sr // 25 - start
    pr = ffprobe(path)
    assert int(pr["format"]["tags"]["time_reference"]) == start + s0
    src = pcm_s32(media_dir / "D004_bwf.wav", 0)
    got = pcm_s32(path, 0)
    assert got == src[8 * s0:8 * s1]


# ---- extraction -------------------------------------------------------------------------

EDL_LINES = [
    "TITLE: REELFS PULL TEST",                                                            # 1
    "FCM: NON-DROP FRAME",                                                                # 2
    "",                                                                                   # 3
    "* pull for vendor XYZ; reels as on the camera cards",                                # 4
    "001  A001     V     C        01:00:00:10 01:00:00:20 00:00:00:00 00:00:00:10",      # 5
    "M2   A001       048.0                01:00:00:10",                                   # 6
    "* FROM CLIP NAME:  A001C003_prores_2398.mov",                                        # 7
    "",                                                                                   # 8
    "002  C003C001 V     C        10:00:00:05 10:00:00:17 00:00:00:10 00:00:00:22",      # 9
    "* FROM CLIP NAME: C003C001_h264_25p.mov",                                            # 10
    "003  A001     V     C        01:00:01:00 01:00:01:00 00:00:00:22 00:00:00:22",      # 11
    "003  C003C001 V     D    012 10:00:02:00 10:00:03:00 00:00:00:22 00:00:01:22",      # 12
    "* FROM CLIP NAME: A001C003_prores_2398.mov",                                         # 13
    "* TO CLIP NAME: C003C001_h264_25p.mov",                                              # 14
    "this line is garbage @@@ 12 34",                                                     # 15
    "004  C003C001 V     C        10:00:03:05 10:00:03:05 00:00:01:22 00:00:01:22",      # 16
    "004  A001     V     W001 010 01:00:01:10 01:00:01:20 00:00:01:22 00:00:02:08",      # 17
    "005  ZZ999    V     C        05:00:00:00 05:00:01:00 00:00:02:08 00:00:03:08",      # 18
    "* FROM CLIP NAME: NOT_IN_ARCHIVE.mov",                                               # 19
    "006  A001     AA    C        01:00:00:10 01:00:00:20 00:00:00:00 00:00:00:10",      # 20
    "007  BL       V     C        00:00:00:00 00:00:01:00 00:00:03:08 00:00:04:08",      # 21
    "FCM: DROP FRAME",                                                                    # 22
    "008  J010     V     C        00:00:59;25 00:01:00;05 00:00:04:08 00:00:04:16",      # 23
    "",
]
GARBAGE_LINE = 15

# event, side, clip key, in index, out index (exclusive), expected name fragment
EDL_PULLS = [
    ("event 1", "A001", 10, 20, "A001_A001C003_prores_2398_01000010-01000020.mov"),
    ("event 2", "C003mov", 5, 17, "C003C001_h264_25p_10000005-10000017.mov"),
    # the outgoing side of the dissolve: IN for the dissolve's 12 frames
    ("event 3", "A001", 24, 36, "A001_A001C003_prores_2398_01000100-01000112.mov"),
    ("event 3", "C003mov", 50, 75, "C003C001_h264_25p_10000200-10000300.mov"),
    # the outgoing side of the wipe: IN for the wipe's 10 frames
    ("event 4", "C003mov", 80, 90, "C003C001_h264_25p_10000305-10000315.mov"),
    ("event 4", "A001", 34, 44, "A001_A001C003_prores_2398_01000110-01000120.mov"),
    ("event 8", "J010", 5, 13, "J010_2997df_min1_00005925-00010005.mov"),
]


@pytest.fixture(scope="module")
def edl_run(tmp_path_factory, reelfs, media_archive):
    d = tmp_path_factory.mktemp("edl")
    edl = d / "pull.edl"
    edl.write_bytes(("\r\n".join(EDL_LINES) + "\r\n").encode())
    out = d / "out"
    p = reelfs("extract", media_archive, "--edl", edl, "--out", out)
    rep = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else None
    return p, out, rep


def test_edl_extract_exit_code_and_report(edl_run):
    p, out, rep = edl_run
    assert p.returncode == 3, f"exit {p.returncode} (a missing event must give 3)\n{p.stdout}\n{p.stderr}"
    assert rep is not None, "no report.json"
    sources = [x["source"] for x in rep["pulls"]]
    for n in range(1, 9):
        assert f"event {n}" in sources, f"event {n} is not in report.json: {sources}"
    assert rep["missing"] == 1 and rep["failed"] == 0
    assert rep["extracted"] == len(EDL_PULLS)
    miss = [x for x in rep["pulls"] if x["status"] == "missing"]
    assert [m["source"] for m in miss] == ["event 5"]
    assert "ZZ999" in miss[0]["reason"]
    assert "missing" in p.stdout and "event 5" in p.stdout
    # every extracted pull's output exists with the size the report gives
    for x in rep["pulls"]:
        if x["status"] == "extracted":
            assert Path(x["output"]).is_file()
            assert Path(x["output"]).stat().st_size == x["bytes"]
    # the audio event over event 1's range is pulled once and listed
    e6 = next(x for x in rep["pulls"] if x["source"] == "event 6")
    assert e6["output"] == next(x for x in rep["pulls"] if x["source"] == "event 1")["output"]
    assert sorted(f.name for f in out.iterdir() if not f.name.startswith(".")) == sorted(
        [f"e{int(e.split()[1]):03d}_{n}" for e, _, _, _, n in EDL_PULLS] + ["report.json"])


def test_edl_garbage_line_reported_with_its_line_number(edl_run):
    p, _, rep = edl_run
    w = [x for x in rep["warnings"] if f"line {GARBAGE_LINE}" in x]
    assert w and "garbage" in w[0], rep["warnings"]
    assert f"line {GARBAGE_LINE}" in p.stderr
    # nothing else was warned about: TITLE/FCM/M2/comments/blank lines/CRLF all parse
    assert len(rep["warnings"]) == 1, rep["warnings"]


@pytest.mark.parametrize("pull", EDL_PULLS, ids=lambda x: f"{x[0]}-{x[1]}")
def test_edl_pulls_named_by_reel_and_range_and_frames_match(edl_run, media_dir, pull):
    _, out, rep = edl_run
    ev, key, a, b, name = pull
    c = CLIPS[key]
    x = next((x for x in rep["pulls"] if x["source"] == ev and x["output"] and x["output"].endswith(name)), None)
    assert x is not None, f"{ev}: no pull named *{name}: {[y['output'] for y in rep['pulls']]}"
    assert x["status"] == "extracted"
    assert x["first_tc"] == c.label(a) and x["frames"] == b - a
    f = Path(x["output"])
    assert frame_hashes(f) == src_hashes(media_dir, c)[a:b]
    if c.has_tc:
        assert tmcd_stream(ffprobe(f))["tags"]["timecode"] == c.label(a)


OTIO_CLIPS = [
    # name, target_url, start value, duration, rate, expected (clip key, in, out) or None
    ("A001C003_prores_2398", "file:///cards/A001C003_prores_2398.mov", 86410, 14, 23.976, ("A001", 10, 24)),
    # a name that matches nothing: the media reference's URL names the clip
    ("shot 010 take 2", "file:///cards/Day01/J010_2997df_min1.mov", 1795, 12, 29.97, ("J010", 5, 17)),
    ("nothing", "file:///cards/NOPE.mov", 0, 10, 24, None),
]


def _otio(clips):
    def rt(v, r):
        return {"OTIO_SCHEMA": "RationalTime.1", "rate": r, "value": v}

    def clip(name, url, start, dur, rate):
        return {"OTIO_SCHEMA": "Clip.2", "name": name, "metadata": {}, "effects": [], "markers": [],
                "enabled": True,
                "source_range": {"OTIO_SCHEMA": "TimeRange.1", "start_time": rt(start, rate),
                                 "duration": rt(dur, rate)},
                "media_references": {"DEFAULT_MEDIA": {"OTIO_SCHEMA": "ExternalReference.1", "name": "",
                                                       "target_url": url, "available_range": None,
                                                       "metadata": {}}},
                "active_media_reference_key": "DEFAULT_MEDIA"}

    children = []
    for i, c in enumerate(clips):
        children.append(clip(*c[:5]))
        if i == 0:
            children.append({"OTIO_SCHEMA": "Gap.1", "name": "", "metadata": {}, "effects": [], "markers": [],
                             "enabled": True, "source_range": {"OTIO_SCHEMA": "TimeRange.1",
                                                               "start_time": rt(0, 24), "duration": rt(10, 24)}})
    return {"OTIO_SCHEMA": "Timeline.1", "name": "pull", "metadata": {}, "global_start_time": None,
            "tracks": {"OTIO_SCHEMA": "Stack.1", "name": "tracks", "metadata": {}, "effects": [], "markers": [],
                       "enabled": True, "source_range": None,
                       "children": [{"OTIO_SCHEMA": "Track.1", "name": "V1", "kind": "Video", "metadata": {},
                                     "effects": [], "markers": [], "enabled": True, "source_range": None,
                                     "children": children}]}}


def test_otio_pull(tmp_path, reelfs, media_archive, media_dir):
    f = tmp_path / "pull.otio"
    f.write_text(json.dumps(_otio(OTIO_CLIPS), indent=2))
    out = tmp_path / "out"
    p = reelfs("extract", media_archive, "--otio", f, "--out", out)
    assert p.returncode == 3, f"{p.stdout}\n{p.stderr}"
    rep = json.loads((out / "report.json").read_text())
    assert len(rep["pulls"]) == len(OTIO_CLIPS)
    for x, (name, _, _, _, _, want) in zip(rep["pulls"], OTIO_CLIPS):
        if want is None:
            assert x["status"] == "missing", x
            continue
        assert x["status"] == "extracted", x
        c = CLIPS[want[0]]
        assert (x["src_in"], x["src_out"]) == (c.label(want[1]), c.label(want[2]))
        o = Path(x["output"])
        assert re.search(r"_" + re.escape(c.label(want[1]).replace(":", "").replace(";", "")) + "-"
                         + re.escape(c.label(want[2]).replace(":", "").replace(";", "")) + r"\.mov$", o.name)
        assert frame_hashes(o) == src_hashes(media_dir, c)[want[1]:want[2]]
    assert (rep["extracted"], rep["missing"]) == (2, 1)


def test_manual_pull_with_handles(tmp_path, reelfs, media_archive, media_dir):
    c = CLIPS["C003mp4"]
    out = tmp_path / "out"
    rep = reelfs.json("extract", media_archive, f"{MEDIA_REL}/{c.file}", "--in", "00:00:01:03",
                      "--out-tc", "00:00:02:10", "--handles", "5", "--out", out)
    assert (rep["extracted"], rep["missing"], rep["failed"]) == (1, 0, 0)
    x = rep["pulls"][0]
    f = Path(x["output"])
    assert f.name == "C003C002_h264_25p_00000103-00000210.mp4"
    assert (x["handles_before"], x["handles_after"], x["first_tc"], x["frames"]) == (5, 5, "00:00:00:23", 42)
    assert frame_hashes(f) == src_hashes(media_dir, c)[23:65]
    assert json.loads((out / "report.json").read_text())["pulls"][0]["output"] == x["output"]


def test_manual_pull_out_of_range_fails_with_exit_3(tmp_path, reelfs, media_archive):
    c = CLIPS["A001"]
    out = tmp_path / "out"
    p = reelfs("extract", media_archive, f"{MEDIA_REL}/{c.file}", "--in", "01:00:01:00", "--out-tc", "01:00:03:00",
               "--out", out)
    assert p.returncode == 3, p.stdout + p.stderr
    rep = json.loads((out / "report.json").read_text())
    assert rep["pulls"][0]["status"] in ("failed", "missing")
    assert "outside the clip" in rep["pulls"][0]["reason"]
    assert [f.name for f in out.iterdir()] == ["report.json"]
