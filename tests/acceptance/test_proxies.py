"""Proxies (`reelfs proxy`): thumb JPEG, H.264 fragmented-MP4 preview and ProRes
editorial MOV rendered from one decode, stored inside the archive, shown in the
mount as `.proxy/<profile>/<stem>.<ext>`.

What "right" means is checked with independent tools, never with reelfs itself:
- frame count: `ffprobe -count_frames` of the proxy equals the source's;
- frame N is frame N, for EVERY frame: ffmpeg's psnr filter (per-frame stats) over the
  source scaled to the proxy's size and the proxy: the minimum over all frames > 30 dB,
  and each proxy frame clearly closer to its own source frame than to the ones before
  and after it (testsrc2 with a burnt-in counter changes every frame);
- timecode and reel: ffprobe (tmcd stream tags) and MediaInfo (QuickTime TC track);
- audio: track count, sample rate, sample format and duration (ffprobe);
- colour tags (ffprobe); the preview's box layout (ftyp, moov, then moof/mdat pairs).

The footage is scripts/gen-test-media (facts in scripts/test-media.md), plus two files
made here: a faststart copy of C003C001 cut to 60 % (a truncated source whose header
survives) and a byte copy of J010 under another name (same content, no new render).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from helpers import Mount

from helpers import assert_every_frame_is_source_frame

TIMEOUT = 300
CLIPS = [
    "A001C003_prores_2398.mov",   # ProRes HQ 1080p 23.976, TC 01:00:00:00 reel A001, 8x PCM, bt709
    "B002C001_dnxhd_2997df.mxf",  # MXF DNxHD, DF TC in the format tags, 2x PCM
    "C003C001_h264_25p.mov",      # long-GOP H.264 720p, AAC stereo, TC 10:00:00:00
    "D004_bwf.wav",               # audio only: a waveform thumb, nothing else
    "F006_vfr.mp4",               # variable frame rate: conformed
    "G007_truncated.mov",         # no moov: not decodable, skipped
    "J010_2997df_min1.mov",       # small ProRes Proxy 29.97 DF
    "K011_notmedia.bin",          # not media: skipped
]
TRUNC = "T013_truncated_faststart.mov"


def run(argv, timeout=TIMEOUT, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run([str(a) for a in argv], timeout=timeout, **kw)


def ffprobe(path, *extra) -> dict:
    p = run(["ffprobe", "-v", "error", *extra, "-show_streams", "-show_format", "-of", "json", path], text=True)
    assert p.returncode == 0, f"ffprobe {path} failed:\n{p.stderr}"
    return json.loads(p.stdout)


def video(probe):
    return next(s for s in probe["streams"] if s["codec_type"] == "video")


def audio(probe):
    return [s for s in probe["streams"] if s["codec_type"] == "audio"]


def tmcd(probe):
    return next((s for s in probe["streams"] if s.get("codec_tag_string") == "tmcd"), None)


def frame_count(path) -> int:
    p = run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
             "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path], text=True)
    assert p.returncode == 0, p.stderr
    return int(p.stdout.strip().split(",")[0])


def mediainfo_tc(path):
    p = run(["mediainfo", "--Output=JSON", path], text=True)
    assert p.returncode == 0, p.stderr
    for t in json.loads(p.stdout)["media"]["track"]:
        if t.get("@type") == "Other" and (t.get("Type") == "Time code" or "TC" in t.get("Format", "")):
            return t
    return None


def grab(path, n, out, size=None):
    """Frame n of `path` as an RGB PNG (scaled by ffmpeg to `size` = (w, h))."""
    vf = f"select=eq(n\\,{n})"
    if size:
        vf += f",scale={size[0]}:{size[1]}"
    p = run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", path, "-vf", vf, "-fps_mode", "passthrough",
             "-frames:v", "1", "-pix_fmt", "rgb24", out])
    assert p.returncode == 0 and Path(out).exists(), f"cannot grab frame {n} of {path}: {p.stderr!r}"
    return out


def psnr(a, b) -> float:
    p = run(["ffmpeg", "-nostdin", "-v", "info", "-i", a, "-i", b, "-lavfi", "psnr", "-f", "null", "-"], text=True)
    m = re.search(r"PSNR .*average:(inf|[0-9.]+)", p.stderr)
    assert m, f"no PSNR from ffmpeg:\n{p.stderr}"
    return float(m.group(1))


def top_boxes(path):
    out = []
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
        elif size == 0:
            size = len(data) - pos
        out.append(kind.decode("latin-1"))
        if size < 8:
            break
        pos += size
    return out


def make_truncated(media_dir: Path, out: Path):
    """C003C001 remuxed with the moov first, then cut to 60 %: the header says 100
    frames, about 60 of them are there."""
    full = out.with_suffix(".full.mov")
    p = run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", media_dir / "C003C001_h264_25p.mov",
             "-map", "0:v", "-map", "0:a", "-c", "copy", "-movflags", "+faststart", full])
    assert p.returncode == 0, p.stderr
    data = full.read_bytes()
    out.write_bytes(data[: len(data) * 6 // 10])
    full.unlink()


@pytest.fixture(scope="module")
def px(tmp_path_factory, reelfs, media_dir):
    """An archive with a few clips under main/Day01, proxies rendered once, mounted."""
    base = tmp_path_factory.mktemp("proxies")
    e = SimpleNamespace()
    e.reelfs = reelfs
    e.media = media_dir
    e.src = base / "src" / "Day01"
    e.src.mkdir(parents=True)
    for c in CLIPS:
        shutil.copy2(media_dir / c, e.src / c)
    make_truncated(media_dir, e.src / TRUNC)
    (base / "src" / "Docs").mkdir()
    (base / "src" / "Docs" / "notes.txt").write_text("no media here\n")
    archive_with_proxies(reelfs, e, base, [e.src, base / "src" / "Docs"])
    with Mount(reelfs, e.archive, base / "mnt", logdir=base) as m:
        e.mnt = m.mp
        e.day = m.mp / "main" / "Day01"
        yield e


def archive_with_proxies(reelfs, e, base, sources, *proxy_args):
    """Init `base/archive`, ingest `sources`, render (`reelfs proxy --json` plus
    `proxy_args`), and keep the report in `e.report`; `e.work` is a scratch folder."""
    e.archive = base / "archive"
    reelfs.ok("init", e.archive)
    reelfs.ok("ingest", e.archive, *sources, "-m", "cards")
    p = reelfs("proxy", e.archive, *proxy_args, "--json", timeout=900)
    assert p.returncode == 0, f"reelfs proxy failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    e.report = json.loads(p.stdout)
    e.work = base / "work"
    e.work.mkdir()


# The file extension of each profile's proxies.
PROFILE_EXT = {"thumb": "jpg", "sheet": "jpg", "preview": "mp4", "editorial": "mov", "editorial-dnxhr": "mov"}


def proxy_path(e, clip, profile):
    stem = clip.rsplit(".", 1)[0]
    return e.day / ".proxy" / profile / f"{stem}.{PROFILE_EXT[profile]}"


RENDERED = ["A001C003_prores_2398.mov", "B002C001_dnxhd_2997df.mxf", "C003C001_h264_25p.mov",
            "F006_vfr.mp4", "J010_2997df_min1.mov", TRUNC]
AUDIO_ONLY = "D004_bwf.wav"   # gets a waveform thumb only


# ---- the run ----------------------------------------------------------------------------


def test_report_renders_media_and_skips_the_rest_with_reasons(px):
    rep = px.report
    done = {Path(i["path"]).name: i for i in px.report["rendered"]}
    assert sorted(done) == sorted(RENDERED + [AUDIO_ONLY]), rep
    for name, i in done.items():
        want = ["thumb"] if name == AUDIO_ONLY else ["editorial", "preview", "preview-low", "sheet", "thumb"]
        assert sorted(i["profiles"]) == want, name
    skipped = {Path(p).name: why for p, why in rep["skipped"]}
    assert "not media" in skipped["K011_notmedia.bin"]
    assert "not media" in skipped["notes.txt"]
    assert "G007_truncated.mov" in skipped and skipped["G007_truncated.mov"]
    assert rep["failed"] == []


def test_second_run_renders_nothing(px):
    rep = px.reelfs.json("proxy", px.archive)
    assert rep["rendered"] == []
    assert rep["up_to_date"] == len(RENDERED) + 1
    assert rep["failed"] == []


def test_archive_checks_deep_with_proxies(px):
    px.reelfs.check_deep(px.archive)


# ---- frames --------------------------------------------------------------------------------


@pytest.mark.parametrize("clip", ["A001C003_prores_2398.mov", "B002C001_dnxhd_2997df.mxf", "C003C001_h264_25p.mov", "J010_2997df_min1.mov"])
@pytest.mark.parametrize("profile", ["editorial", "preview"])
def test_proxy_frame_count_equals_source(px, clip, profile):
    assert frame_count(proxy_path(px, clip, profile)) == frame_count(px.media / clip)


@pytest.mark.parametrize("clip", ["A001C003_prores_2398.mov", "C003C001_h264_25p.mov", "B002C001_dnxhd_2997df.mxf", "J010_2997df_min1.mov"])
@pytest.mark.parametrize("profile", ["editorial", "preview"])
def test_proxy_frame_n_is_source_frame_n(px, clip, profile):
    """Every frame, not a sample of them: a proxy that drops one frame and repeats
    the last (same count, same first and last picture) must fail."""
    prox = proxy_path(px, clip, profile)
    v = video(ffprobe(prox))
    n = frame_count(px.media / clip)
    assert frame_count(prox) == n
    assert_every_frame_is_source_frame(prox, px.media / clip, (v["width"], v["height"]), n,
                                       what=f"{profile} proxy of {clip}")


def test_editorial_is_prores_proxy_at_most_1920_wide(px):
    for clip in ["A001C003_prores_2398.mov", "C003C001_h264_25p.mov", "J010_2997df_min1.mov"]:
        v = video(ffprobe(proxy_path(px, clip, "editorial")))
        src = video(ffprobe(px.media / clip))
        assert v["codec_name"] == "prores" and v["profile"] == "Proxy", v
        assert v["codec_tag_string"] == "apco"
        assert v["width"] <= 1920
        assert (v["width"], v["height"]) == (src["width"], src["height"])
        assert v["r_frame_rate"] == src["r_frame_rate"]


def test_preview_is_h264_540p_keeping_aspect_with_2s_keyframes(px):
    prox = proxy_path(px, "A001C003_prores_2398.mov", "preview")
    v = video(ffprobe(prox))
    assert v["codec_name"] == "h264"
    assert (v["width"], v["height"]) == (960, 540)
    v720 = video(ffprobe(proxy_path(px, "C003C001_h264_25p.mov", "preview")))
    assert (v720["width"], v720["height"]) == (960, 540)
    p = run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=key_frame",
             "-of", "json", proxy_path(px, "C003C001_h264_25p.mov", "preview")], text=True)
    frames = json.loads(p.stdout)["frames"]   # in display order
    keys = [i for i, f in enumerate(frames) if f["key_frame"] == 1]
    assert keys == [0, 50], f"keyframes at {keys}, expected every 50 frames (2 s at 25 fps)"


def test_preview_is_fragmented_with_moov_first_and_aac_stereo(px):
    prox = proxy_path(px, "C003C001_h264_25p.mov", "preview")
    boxes = top_boxes(prox)
    assert boxes[0] == "ftyp" and boxes[1] == "moov", boxes
    assert "moof" in boxes and boxes.index("moov") < boxes.index("moof") < boxes.index("mdat"), boxes
    a = audio(ffprobe(prox))
    assert len(a) == 1 and a[0]["codec_name"] == "aac" and a[0]["channels"] == 2
    # Mono first track (A001) becomes stereo too.
    a = audio(ffprobe(proxy_path(px, "A001C003_prores_2398.mov", "preview")))
    assert len(a) == 1 and a[0]["channels"] == 2 and a[0]["sample_rate"] == "48000"


def test_thumb_is_a_320_wide_jpeg_and_not_black(px):
    for clip in ["A001C003_prores_2398.mov", "C003C001_h264_25p.mov"]:
        t = proxy_path(px, clip, "thumb")
        data = t.read_bytes()
        assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
        v = video(ffprobe(t))
        src = video(ffprobe(px.media / clip))
        assert v["width"] == 320
        assert abs(v["height"] - 320 * src["height"] / src["width"]) <= 2
        p = run(["ffmpeg", "-nostdin", "-v", "error", "-i", t, "-f", "rawvideo", "-pix_fmt", "gray", "-"])
        assert p.returncode == 0
        assert sum(p.stdout) / len(p.stdout) > 30, "thumbnail is black"


# ---- timecode, reel, audio, colour -------------------------------------------------------------


@pytest.mark.parametrize("clip,tc,reel", [
    ("A001C003_prores_2398.mov", "01:00:00:00", "A001"),
    ("C003C001_h264_25p.mov", "10:00:00:00", None),
    ("J010_2997df_min1.mov", "00:00:59;20", None),
    ("B002C001_dnxhd_2997df.mxf", "00:00:59;00", None),
])
def test_editorial_start_timecode_and_reel(px, clip, tc, reel):
    prox = proxy_path(px, clip, "editorial")
    pr = ffprobe(prox)
    assert video(pr)["tags"].get("timecode") == tc
    tm = tmcd(pr)
    assert tm is not None, "no tmcd track"
    assert tm["tags"].get("timecode") == tc
    if reel:
        assert tm["tags"].get("reel_name") == reel
        src_tm = tmcd(ffprobe(px.media / clip))
        assert src_tm["tags"]["reel_name"] == reel
    mi = mediainfo_tc(prox)
    assert mi is not None, "MediaInfo shows no time code track"
    assert mi["TimeCode_FirstFrame"] == tc
    if reel:
        assert mi.get("Title") == reel
    # MediaInfo prints no TimeCode_DropFrame for these files: drop-frame is the `;` of
    # the labels it reads from the tmcd track.
    assert (";" in mi["TimeCode_FirstFrame"]) == (";" in tc), mi
    assert (";" in mi["TimeCode_LastFrame"]) == (";" in tc), mi


@pytest.mark.parametrize("clip", ["A001C003_prores_2398.mov", "B002C001_dnxhd_2997df.mxf", "C003C001_h264_25p.mov", "J010_2997df_min1.mov"])
def test_editorial_keeps_every_audio_track(px, clip):
    prox = proxy_path(px, clip, "editorial")
    pa = audio(ffprobe(prox))
    sa = audio(ffprobe(px.media / clip))
    assert len(pa) == len(sa)
    for p, s in zip(pa, sa):
        assert p["codec_name"].startswith("pcm_"), p
        assert p["sample_rate"] == s["sample_rate"]
        assert p["channels"] == s["channels"]
        if s["codec_name"].startswith("pcm_"):
            assert p["codec_name"] == s["codec_name"], "PCM depth changed"
        assert abs(float(p["duration"]) - float(s["duration"])) < 0.05, (p["duration"], s["duration"])
        if s.get("nb_frames") and s["codec_name"].startswith("pcm_") and not clip.endswith(".mxf"):
            assert p["nb_frames"] == s["nb_frames"], "sample count differs"


@pytest.mark.parametrize("clip", ["A001C003_prores_2398.mov", "C003C001_h264_25p.mov", "J010_2997df_min1.mov"])
def test_editorial_colour_tags_match_source(px, clip):
    p = video(ffprobe(proxy_path(px, clip, "editorial")))
    s = video(ffprobe(px.media / clip))
    for k in ("color_primaries", "color_transfer", "color_space"):
        assert p.get(k, "unknown") == s.get(k, "unknown"), k


def test_vfr_source_conformed_and_noted(px, reelfs):
    prox = proxy_path(px, "F006_vfr.mp4", "editorial")
    v = video(ffprobe(prox))
    assert v["r_frame_rate"] == v["avg_frame_rate"] == "24000/1001"
    # 3 s of source at 23.976: 72 frames (±1)
    assert abs(frame_count(prox) - 72) <= 1
    info = reelfs.json("info", px.archive, "main/Day01/F006_vfr.mp4")
    assert any("variable frame rate" in p["note"] for p in info["proxies"])
    # The proxy files themselves say so too (format tag `comment`).
    for profile in ("editorial", "preview"):
        tags = ffprobe(proxy_path(px, "F006_vfr.mp4", profile))["format"].get("tags", {})
        assert "conformed to 24000/1001" in tags.get("comment", ""), (profile, tags)


# ---- damaged and not media -------------------------------------------------------------------------


def test_truncated_source_gives_partial_proxies(px, reelfs):
    info = reelfs.json("info", px.archive, f"main/Day01/{TRUNC}")
    prox = {p["profile"]: p for p in info["proxies"]}
    assert sorted(prox) == ["editorial", "preview", "preview-low", "sheet", "thumb"]
    first_bad = prox["editorial"]["partial_at"]
    assert isinstance(first_bad, int) and 30 < first_bad < 100, first_bad
    assert all(p["partial_at"] == first_bad for p in prox.values())
    n = frame_count(proxy_path(px, TRUNC, "editorial"))
    assert n == first_bad
    # The frames that are there are the right ones.
    w = px.work / "trunc"
    w.mkdir(exist_ok=True)
    k = n - 1
    s = grab(px.media / "C003C001_h264_25p.mov", k, w / "s.png")
    p = grab(proxy_path(px, TRUNC, "editorial"), k, w / "p.png")
    assert psnr(s, p) > 30


def test_audio_only_gets_a_waveform_thumb_and_nothing_else(px, reelfs):
    info = reelfs.json("info", px.archive, f"main/Day01/{AUDIO_ONLY}")
    (p,) = info["proxies"]
    assert p["profile"] == "thumb" and "waveform" in p["note"]
    t = px.day / ".proxy" / "thumb" / "D004_bwf.jpg"
    v = video(ffprobe(t))
    assert (v["width"], v["height"]) == (320, 96)
    # Two tones at a constant level: a band around the middle row, dark above and below.
    r = run(["ffmpeg", "-nostdin", "-v", "error", "-i", t, "-f", "rawvideo", "-pix_fmt", "gray", "-"])
    rows = [r.stdout[y * 320:(y + 1) * 320] for y in range(96)]
    mean = [sum(row) / 320 for row in rows]
    assert mean[48] > 150 and mean[2] < 60 and mean[93] < 60, mean
    for prof in ("preview", "editorial", "sheet"):
        assert not (px.day / ".proxy" / prof / f"D004_bwf.{PROFILE_EXT[prof]}").exists()


def test_not_media_and_undecodable_have_no_proxies(px, reelfs):
    for name in ["K011_notmedia.bin", "G007_truncated.mov"]:
        info = reelfs.json("info", px.archive, f"main/Day01/{name}")
        assert info["proxies"] == []
        stem = name.rsplit(".", 1)[0]
        for prof, ext in [("thumb", "jpg"), ("preview", "mp4"), ("editorial", "mov")]:
            assert not (px.day / ".proxy" / prof / f"{stem}.{ext}").exists()


# ---- info and the mount -------------------------------------------------------------------------


def test_info_lists_proxies(px, reelfs):
    info = reelfs.json("info", px.archive, "main/Day01/A001C003_prores_2398.mov")
    prox = {p["profile"]: p for p in info["proxies"]}
    assert sorted(prox) == ["editorial", "preview", "preview-low", "sheet", "thumb"]
    assert prox["sheet"]["name"] == ".proxy/sheet/A001C003_prores_2398.jpg"
    assert prox["editorial"]["name"] == ".proxy/editorial/A001C003_prores_2398.mov"
    assert prox["preview"]["name"] == ".proxy/preview/A001C003_prores_2398.mp4"
    assert prox["thumb"]["name"] == ".proxy/thumb/A001C003_prores_2398.jpg"
    for p in prox.values():
        assert p["partial_at"] is None and p["size"] > 0 and len(p["blob"]) == 64
    text = reelfs.ok("info", px.archive, "main/Day01/A001C003_prores_2398.mov").stdout
    assert ".proxy/editorial/A001C003_prores_2398.mov" in text


def test_mount_shows_proxy_folders(px):
    assert ".proxy" in os.listdir(px.day)
    assert sorted(os.listdir(px.day / ".proxy")) == ["editorial", "preview", "preview-low", "sheet", "thumb"]
    stems = sorted(n.rsplit(".", 1)[0] for n in RENDERED)
    for prof, ext in [("thumb", "jpg"), ("sheet", "jpg"), ("preview", "mp4"), ("editorial", "mov")]:
        names = sorted(os.listdir(px.day / ".proxy" / prof))
        extra = ["D004_bwf.jpg"] if prof == "thumb" else []
        assert names == sorted([f"{s}.{ext}" for s in stems] + extra)
    # A folder without media has no .proxy, listed or looked up.
    docs = px.mnt / "main" / "Docs"
    assert os.listdir(docs) == ["notes.txt"]
    assert not (docs / ".proxy").exists()
    # Proxies are read-only files with the size `info` gives.
    st = os.stat(proxy_path(px, "A001C003_prores_2398.mov", "editorial"))
    assert st.st_size > 0
    with pytest.raises(OSError):
        open(proxy_path(px, "A001C003_prores_2398.mov", "editorial"), "r+b")


def test_proxy_xattr_names_its_source(px):
    p = proxy_path(px, "A001C003_prores_2398.mov", "editorial")
    assert os.getxattr(p, "user.reelfs.source").decode() == "main/Day01/A001C003_prores_2398.mov"
    assert os.getxattr(p, "user.reelfs.profile").decode() == "editorial"
    t = proxy_path(px, TRUNC, "thumb")
    assert int(os.getxattr(t, "user.reelfs.partial_at").decode()) > 0


# ---- content-addressed: copies, rebuild, interrupt -----------------------------------------------


def test_copy_needs_no_render_and_rebuild_keeps_proxies(tmp_path, reelfs, media_dir):
    src = tmp_path / "src"
    (src / "A").mkdir(parents=True)
    shutil.copy2(media_dir / "J010_2997df_min1.mov", src / "A" / "J010.mov")
    arch = tmp_path / "archive"
    reelfs.ok("init", arch)
    reelfs.ok("ingest", arch, src / "A", "-m", "one")
    rep = reelfs.json("proxy", arch, "main/A")
    assert [Path(i["path"]).name for i in rep["rendered"]] == ["J010.mov"]
    (src / "B").mkdir()
    shutil.copy2(media_dir / "J010_2997df_min1.mov", src / "B" / "J010_copy.mov")
    reelfs.ok("ingest", arch, src / "B", "-m", "same content, another name")
    rep = reelfs.json("proxy", arch)
    assert rep["rendered"] == [] and rep["up_to_date"] == 1
    info = reelfs.json("info", arch, "main/B/J010_copy.mov")
    assert sorted(p["profile"] for p in info["proxies"]) == ["editorial", "preview", "preview-low", "sheet", "thumb"]
    before = {p["profile"]: p["blob"] for p in info["proxies"]}
    # The catalog rebuilt from the packs alone still knows the proxies.
    reelfs.ok("check", arch, "--rebuild-catalog")
    info = reelfs.json("info", arch, "main/B/J010_copy.mov")
    assert {p["profile"]: p["blob"] for p in info["proxies"]} == before
    reelfs.check_deep(arch)
    with Mount(reelfs, arch, tmp_path / "mnt", logdir=tmp_path) as m:
        assert sorted(os.listdir(m.mp / "main" / "B" / ".proxy" / "editorial")) == ["J010_copy.mov"]


def test_only_requested_profiles_render(tmp_path, reelfs, media_dir):
    arch = tmp_path / "archive"
    reelfs.ok("init", arch)
    shutil.copy2(media_dir / "J010_2997df_min1.mov", tmp_path / "J.mov")
    reelfs.ok("ingest", arch, tmp_path / "J.mov")
    rep = reelfs.json("proxy", arch, "--profiles", "thumb")
    assert rep["rendered"][0]["profiles"] == ["thumb"]
    rep = reelfs.json("proxy", arch, "--profiles", "thumb,editorial")
    assert rep["rendered"][0]["profiles"] == ["editorial"]
    p = reelfs("proxy", arch, "--profiles", "poster")
    assert p.returncode != 0 and "poster" in p.stderr


def test_interrupt_keeps_what_is_stored_and_next_run_resumes(tmp_path, reelfs, media_dir):
    arch = tmp_path / "archive"
    reelfs.ok("init", arch)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        shutil.copy2(media_dir / "A001C003_prores_2398.mov", src / f"A{i}.mov")
        with open(src / f"A{i}.mov", "ab") as f:  # distinct content, same media
            f.write(b"\0" * (i + 1))
    reelfs.ok("ingest", arch, src)
    p = reelfs.popen("proxy", arch, "--jobs", "1")
    line = p.stdout.readline()   # the first file is stored
    assert line.startswith("rendered "), line + p.stderr.read()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, (p.returncode, out, err)
    # Nothing half-visible: each file has all three proxies or none; no temp left.
    done = 0
    for i in range(4):
        prof = sorted(x["profile"] for x in reelfs.json("info", arch, f"main/src/A{i}.mov")["proxies"])
        assert prof in ([], ["editorial", "preview", "preview-low", "sheet", "thumb"]), prof
        done += bool(prof)
    assert 1 <= done < 4
    assert not any((arch / "cache" / "proxy-render").glob("*"))
    reelfs.check_deep(arch)
    rep = reelfs.json("proxy", arch)
    assert len(rep["rendered"]) == 4 - done and rep["up_to_date"] == done


def test_ingest_with_proxies_renders_after_the_commit(tmp_path, reelfs, media_dir):
    arch = tmp_path / "archive"
    reelfs.ok("init", arch)
    shutil.copy2(media_dir / "J010_2997df_min1.mov", tmp_path / "J.mov")
    shutil.copy2(media_dir / "K011_notmedia.bin", tmp_path / "K.bin")
    p = reelfs.ok("ingest", arch, tmp_path / "J.mov", tmp_path / "K.bin", "--to", "Day09", "--proxies")
    assert "committed" in p.stdout and "rendered main/Day09/J.mov" in p.stdout
    info = reelfs.json("info", arch, "main/Day09/J.mov")
    assert sorted(x["profile"] for x in info["proxies"]) == ["editorial", "preview", "preview-low", "sheet", "thumb"]


def test_watch_renders_new_commits_and_stops_on_sigterm(tmp_path, reelfs, media_dir):
    arch = tmp_path / "archive"
    reelfs.ok("init", arch)
    w = reelfs.popen("proxy", arch, "--watch", "--interval", "1")
    try:
        time.sleep(1)
        shutil.copy2(media_dir / "J010_2997df_min1.mov", tmp_path / "J.mov")
        reelfs.ok("ingest", arch, tmp_path / "J.mov")   # the watcher holds no lock while idle
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if reelfs.json("info", arch, "main/J.mov")["proxies"]:
                break
            time.sleep(0.5)
        prof = sorted(x["profile"] for x in reelfs.json("info", arch, "main/J.mov")["proxies"])
        assert prof == ["editorial", "preview", "preview-low", "sheet", "thumb"]
    finally:
        w.send_signal(signal.SIGTERM)
        out, err = w.communicate(timeout=60)
    assert w.returncode == 0, (out, err)


@pytest.mark.parametrize("size_mb", [30, 40])   # 30: full while rendering; 40: full while storing
def test_disk_full_while_rendering_keeps_nothing_half_and_resumes(tmp_path, reelfs, media_dir, size_mb):
    if os.geteuid() != 0:
        pytest.fail("mounting a tmpfs needs root (CI runs as root)")
    disk = tmp_path / "small-disk"
    disk.mkdir()
    p = run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", disk], text=True)
    assert p.returncode == 0, p.stderr
    try:
        arch = disk / "archive"
        reelfs.ok("init", arch)
        reelfs.ok("ingest", arch, media_dir / "A001C003_prores_2398.mov")   # 23 MB, 17 MB stored
        before = reelfs.json("info", arch, "main/A001C003_prores_2398.mov")
        # ProRes Proxy (8 MB) + DNxHR LB (11 MB) do not fit twice (render + store).
        p = reelfs("proxy", arch, "--profiles", "thumb,editorial,editorial-dnxhr")
        assert p.returncode != 0, p.stdout
        assert "No space left on device" in p.stderr and "is full" in p.stderr, p.stderr
        assert "run `reelfs proxy` again" in p.stderr
        after = reelfs.json("info", arch, "main/A001C003_prores_2398.mov")
        assert after["proxies"] == [] and after["content_hash"] == before["content_hash"]
        assert not any((arch / "cache" / "proxy-render").glob("*"))
        reelfs.check_deep(arch)
        # Space freed: the next run renders everything.
        p = run(["mount", "-o", "remount,size=200m", disk], text=True)
        assert p.returncode == 0, p.stderr
        rep = reelfs.json("proxy", arch, "--profiles", "thumb,editorial,editorial-dnxhr")
        assert [sorted(i["profiles"]) for i in rep["rendered"]] == [["editorial", "editorial-dnxhr", "thumb"]]
        reelfs.check_deep(arch)
    finally:
        run(["umount", "-l", disk])
