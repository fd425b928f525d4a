"""HLS over the preview rungs: `preview-low` (640x360, under 1 Mb/s, a default
profile), `preview` (960x540) and `preview-high` (1920x1080 for HD sources, asked
for), each an H.264 fragmented MP4 with a keyframe every 2 s; `reelfs hls` writes
the master and media playlists (segments are byte ranges of the MP4s) and the files.

Judged by other tools only: ffprobe (sizes, bit rates, keyframe times, packet
positions), ffmpeg (decoding the playlists over file:, each segment on its own,
the psnr filter against the source), and the `m3u8` package (parsing every playlist).

Footage: C003C001 from scripts/gen-test-media (720p25, 100 frames, TC 10:00:00:00,
AAC), J010 (640x360, below HD), and a 1080p25 H.264 clip of 6 s made here (three
segments, TC 01:00:00:00, AAC) for the high rung and range playlists.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import m3u8
import pytest

from helpers import frame_psnrs

TIMEOUT = 600
HD = "H1080_h264_25p.mov"
HD_FRAMES = 150
C003 = "C003C001_h264_25p.mov"
SD = "J010_2997df_min1.mov"


def run(argv, timeout=TIMEOUT, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run([str(a) for a in argv], timeout=timeout, **kw)


def ffprobe_json(path, *extra):
    p = run(["ffprobe", "-v", "error", *extra, "-of", "json", path], text=True)
    assert p.returncode == 0, f"ffprobe {path}: {p.stderr}"
    return json.loads(p.stdout)


def video_stream(path):
    s = ffprobe_json(path, "-show_streams", "-show_format")
    return next(x for x in s["streams"] if x["codec_type"] == "video"), s["format"]


def decoded_frames(path, *input_opts):
    """Frames ffmpeg decodes from `path` (a file or a playlist), and their framemd5 lines."""
    p = run(["ffmpeg", "-nostdin", "-v", "error", *input_opts, "-i", path, "-map", "0:v:0", "-f", "framemd5", "-"], text=True)
    assert p.returncode == 0, f"ffmpeg cannot decode {path}:\n{p.stderr}"
    lines = [l.split(",")[-1].strip() for l in p.stdout.splitlines() if l and not l.startswith("#")]
    return lines


def keyframe_times(path):
    f = ffprobe_json(path, "-select_streams", "v:0", "-show_entries", "frame=pts_time,key_frame")["frames"]
    return [round(float(x["pts_time"]) - float(f[0]["pts_time"]), 3) for x in f if x["key_frame"] == 1]


@pytest.fixture(scope="module")
def hls(tmp_path_factory, reelfs, media_dir):
    """One archive: C003 and J010 with the default profiles, the 1080p clip with the
    default profiles plus preview-high; `reelfs hls` folders written per clip."""
    base = tmp_path_factory.mktemp("hls")
    e = SimpleNamespace(reelfs=reelfs, base=base, media=media_dir)
    src = base / "src" / "Day01"
    src.mkdir(parents=True)
    shutil.copy2(media_dir / C003, src / C003)
    shutil.copy2(media_dir / SD, src / SD)
    p = run(["ffmpeg", "-nostdin", "-v", "error", "-y",
             "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=25:duration={HD_FRAMES // 25}",
             "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={HD_FRAMES // 25}",
             "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "30",
             "-c:a", "aac", "-b:a", "96k", "-timecode", "01:00:00:00", src / HD])
    assert p.returncode == 0, p.stderr
    e.src = src
    e.archive = base / "archive"
    reelfs.ok("init", e.archive)
    reelfs.ok("ingest", e.archive, base / "src", "-m", "cards")
    e.default_run = reelfs.json("proxy", e.archive, "--profiles", "thumb,preview,preview-low", timeout=TIMEOUT)
    plain = reelfs.json("proxy", e.archive, "main/src/Day01/" + C003, timeout=TIMEOUT)
    e.plain_run = plain
    e.high_run = reelfs.json("proxy", e.archive, "main/src/Day01/" + HD, "--profiles", "preview-high", timeout=TIMEOUT)
    e.sd_high_run = reelfs.json("proxy", e.archive, "main/src/Day01/" + SD, "--profiles", "preview-high", timeout=TIMEOUT)
    e.out = {}
    for clip in (C003, HD):
        out = base / "hls" / clip
        reelfs.ok("hls", e.archive, f"main/src/Day01/{clip}", out)
        e.out[clip] = out
    yield e


def stem(clip):
    return clip.rsplit(".", 1)[0]


def rung_file(e, clip, profile):
    return e.out[clip] / f"{stem(clip)}.{profile}.mp4"


def rung_playlist(e, clip, profile):
    return e.out[clip] / f"{stem(clip)}.{profile}.m3u8"


def master(e, clip):
    return e.out[clip] / f"{stem(clip)}.m3u8"


# ---- the rungs ----------------------------------------------------------------------------


def test_plain_proxy_run_adds_the_low_rung_to_a_two_rung_ladder(hls):
    """`reelfs proxy` with no --profiles renders preview-low next to preview: the
    default run of C003 (after thumb,preview,preview-low were there) finds only the
    sheet and editorial missing, and its master lists exactly two renditions."""
    (item,) = hls.plain_run["rendered"]
    assert sorted(item["profiles"]) == ["editorial", "sheet"], item
    info = hls.reelfs.json("info", hls.archive, f"main/src/Day01/{C003}")
    assert sorted(p["profile"] for p in info["proxies"]) == ["editorial", "preview", "preview-low", "sheet", "thumb"]
    pl = m3u8.load(str(master(hls, C003)))
    assert [p.stream_info.resolution for p in pl.playlists] == [(640, 360), (960, 540)]


@pytest.mark.parametrize("clip", [C003, HD])
def test_rungs_keep_every_frame_and_their_keyframes_fall_on_the_same_2s_marks(hls, clip):
    profiles = ["preview-low", "preview"] + (["preview-high"] if clip == HD else [])
    n = len(decoded_frames(hls.src / clip))
    marks = None
    for prof in profiles:
        f = rung_file(hls, clip, prof)
        assert len(decoded_frames(f)) == n, f"{prof} of {clip}"
        times = keyframe_times(f)
        assert times == [2.0 * i for i in range(math.ceil(n / 50))], f"{prof} of {clip}: keyframes at {times}"
        marks = marks or times
        assert times == marks


def test_rung_sizes_and_bit_rates(hls):
    low, fmt = video_stream(rung_file(hls, HD, "preview-low"))
    assert (low["width"], low["height"]) == (640, 360)
    assert int(fmt["bit_rate"]) < 1_000_000, fmt["bit_rate"]
    mid, _ = video_stream(rung_file(hls, HD, "preview"))
    assert (mid["width"], mid["height"]) == (960, 540)
    high, fmt = video_stream(rung_file(hls, HD, "preview-high"))
    assert (high["width"], high["height"]) == (1920, 1080)
    assert high["codec_name"] == "h264"
    assert 1_000_000 < int(fmt["bit_rate"]) <= 8_500_000, fmt["bit_rate"]
    # The 720p clip's low rung keeps its aspect, and every segment stays under 1 Mb/s.
    low720, _ = video_stream(rung_file(hls, C003, "preview-low"))
    assert (low720["width"], low720["height"]) == (640, 360)
    for clip in (C003, HD):
        pl = m3u8.load(str(master(hls, clip)))
        assert pl.playlists[0].stream_info.bandwidth < 1_000_000, clip


def test_high_rung_is_only_for_hd_sources(hls):
    skipped = {Path(p).name: why for p, why in hls.sd_high_run["skipped"]}
    assert "HD" in skipped.get(SD, ""), hls.sd_high_run
    assert hls.sd_high_run["rendered"] == []
    info = hls.reelfs.json("info", hls.archive, f"main/src/Day01/{SD}")
    assert "preview-high" not in [p["profile"] for p in info["proxies"]]
    # Asked again: still not rendered, still said why (not "missing" forever, not silent).
    again = hls.reelfs.json("proxy", hls.archive, f"main/src/Day01/{SD}", "--profiles", "preview-high")
    assert again["rendered"] == [] and again["skipped"], again


# ---- segments ------------------------------------------------------------------------------


def segment_bytes(playlist_path, seg):
    pl = m3u8.load(str(playlist_path))
    data = (playlist_path.parent / pl.segment_map[0].uri).read_bytes()
    ilen, ioff = (int(x) for x in pl.segment_map[0].byterange.split("@"))
    slen, soff = (int(x) for x in pl.segments[seg].byterange.split("@"))
    return data[ioff:ioff + ilen] + data[soff:soff + slen]


@pytest.mark.parametrize("profile", ["preview-low", "preview", "preview-high"])
def test_every_segment_decodes_on_its_own_as_the_source_frames_it_covers(hls, profile, tmp_path):
    """Init + segment N alone decodes to source frames 50N .. 50N+49 (closed GOPs:
    no picture of a segment needs the segment before), so a player can join or
    switch at any segment."""
    pl_path = rung_playlist(hls, HD, profile)
    pl = m3u8.load(str(pl_path))
    assert len(pl.segments) == 3
    v, _ = video_stream(rung_file(hls, HD, profile))
    for n in range(3):
        f = tmp_path / f"seg{n}.mp4"
        f.write_bytes(segment_bytes(pl_path, n))
        frames = decoded_frames(f)
        assert len(frames) == 50, f"{profile} segment {n} decodes to {len(frames)} frames on its own, not 50"
        psnr = frame_psnrs(f, hls.src / HD, (v["width"], v["height"]), ref_opts=("-ss", f"{2 * n}"))
        assert len(psnr) == 50 and min(psnr) > 30, f"{profile} segment {n}: {psnr}"


def test_a_rung_switch_continues_the_picture_sequence(hls, tmp_path):
    """Segment 0 of preview-low, then segment 1 of preview-high (each with its own
    init): the pictures run on from source frame 49 to 50 and on."""
    a = tmp_path / "a.mp4"
    b = tmp_path / "b.mp4"
    a.write_bytes(segment_bytes(rung_playlist(hls, HD, "preview-low"), 0))
    b.write_bytes(segment_bytes(rung_playlist(hls, HD, "preview-high"), 1))
    lst = tmp_path / "list.txt"
    lst.write_text(f"file '{a}'\nfile '{b}'\n")
    joined = tmp_path / "joined.mkv"
    p = run(["ffmpeg", "-nostdin", "-v", "error", "-f", "concat", "-safe", "0", "-i", lst,
             "-vf", "scale=640:360", "-c:v", "ffv1", "-an", joined])
    assert p.returncode == 0, p.stderr
    psnr = frame_psnrs(joined, hls.src / HD, (640, 360))
    assert len(psnr) == 100 and min(psnr) > 28, psnr


# ---- playlists --------------------------------------------------------------------------------


@pytest.mark.parametrize("clip", [C003, HD])
def test_every_playlist_parses_and_describes_the_rungs(hls, clip):
    pl = m3u8.load(str(master(hls, clip)))
    assert pl.is_variant
    assert "#EXT-X-INDEPENDENT-SEGMENTS" in master(hls, clip).read_text()
    profiles = ["preview-low", "preview"] + (["preview-high"] if clip == HD else [])
    assert [p.uri for p in pl.playlists] == [f"{stem(clip)}.{x}.m3u8" for x in profiles]
    for var, prof in zip(pl.playlists, profiles):
        f = rung_file(hls, clip, prof)
        v, fmt = video_stream(f)
        si = var.stream_info
        assert si.resolution == (v["width"], v["height"])
        assert si.frame_rate == 25.0
        codecs = si.codecs.split(",")
        assert codecs[0].startswith("avc1.") and codecs[1] == "mp4a.40.2", si.codecs
        profile_idc = {"High": 100, "Main": 77, "Constrained Baseline": 66}[v["profile"]]
        assert int(codecs[0][5:7], 16) == profile_idc and int(codecs[0][9:11], 16) == v["level"]
        # Measured: the average over segments is the file's media bytes over its length.
        assert si.average_bandwidth <= si.bandwidth
        assert abs(si.average_bandwidth - int(fmt["bit_rate"])) < 0.05 * int(fmt["bit_rate"]), (si, fmt["bit_rate"])
        media = m3u8.load(str(rung_playlist(hls, clip, prof)))
        assert media.is_endlist and media.playlist_type == "vod"
        assert media.segment_map[0].uri == f.name
        total = sum(s.duration for s in media.segments)
        assert abs(total - float(fmt["duration"])) < 0.1
        assert all(round(s.duration) <= media.target_duration for s in media.segments)
        # The byte ranges tile the file from the end of the init segment, and each
        # starts at a 'moof' box.
        data = f.read_bytes()
        ilen = int(media.segment_map[0].byterange.split("@")[0])
        at = ilen
        for s in media.segments:
            length, off = (int(x) for x in s.byterange.split("@"))
            assert off == at and data[off + 4:off + 8] == b"moof"
            at = off + length


@pytest.mark.parametrize("profile", ["preview-low", "preview", "preview-high"])
def test_ffmpeg_plays_each_rung_playlist_end_to_end(hls, profile):
    """ffmpeg's HLS demuxer, reading byte ranges over file:, decodes every frame,
    and the same pictures as the MP4 file itself."""
    via_hls = decoded_frames(rung_playlist(hls, HD, profile), "-allowed_extensions", "ALL")
    direct = decoded_frames(rung_file(hls, HD, profile))
    assert len(via_hls) == HD_FRAMES
    assert via_hls == direct


def test_ffmpeg_opens_the_master_with_every_rendition(hls):
    s = ffprobe_json(master(hls, HD), "-show_programs")
    sizes = sorted((st["width"], st["height"]) for prog in s["programs"] for st in prog["streams"] if st["codec_type"] == "video")
    assert sizes == [(640, 360), (960, 540), (1920, 1080)]
    assert len(decoded_frames(master(hls, HD))) == HD_FRAMES


# ---- range playlists ----------------------------------------------------------------------------


def test_range_playlist_lists_the_covering_segments_and_starts_at_the_in_frame(hls):
    """01:00:02:10-01:00:03:05 is frames 60..80: only segment 1 (frames 50..99);
    playback starts at frame 60, by the file's own timing (ffprobe: pts of frame 60
    minus the decode time of the segment's first packet)."""
    out = hls.base / "range"
    rep = hls.reelfs.json("hls", hls.archive, f"main/src/Day01/{HD}", out, "--range", "01:00:02:10-01:00:03:05")
    assert rep["range"] == [60, 80]
    pl = m3u8.load(str(out / f"{stem(HD)}.m3u8"))
    assert len(pl.playlists) == 3
    for prof in ("preview-low", "preview", "preview-high"):
        path = out / f"{stem(HD)}.{prof}.m3u8"
        media = m3u8.load(str(path))
        full = m3u8.load(str(rung_playlist(hls, HD, prof)))
        assert [s.byterange for s in media.segments] == [full.segments[1].byterange]
        assert media.media_sequence == 1
        text = path.read_text()
        offset = float(text.split("#EXT-X-START:TIME-OFFSET=")[1].split(",")[0])
        assert "PRECISE=YES" in text
        f = out / f"{stem(HD)}.{prof}.mp4"
        pkts = ffprobe_json(f, "-select_streams", "v:0", "-show_entries", "packet=pts,dts,pos,duration")["packets"]
        seg_off = int(full.segments[1].byterange.split("@")[1])
        first = next(p for p in pkts if int(p["pos"]) > seg_off)
        pts_sorted = sorted(int(p["pts"]) for p in pkts)
        dur = int(pkts[0]["duration"])
        want = (pts_sorted[60] - int(first["dts"])) / (dur * 25)
        assert want <= offset < want + 1e-5, (offset, want)
        frames = decoded_frames(path, "-allowed_extensions", "ALL")
        assert len(frames) == 50


def test_bad_requests_say_what_to_do(hls, tmp_path):
    r = hls.reelfs
    # Outside the clip (it runs 01:00:00:00 to 01:00:06:00).
    p = r("hls", hls.archive, f"main/src/Day01/{HD}", tmp_path / "a", "--range", "01:00:05:00-01:00:09:00")
    assert p.returncode != 0 and "01:00:06:00" in p.stderr, p.stderr
    p = r("hls", hls.archive, f"main/src/Day01/{HD}", tmp_path / "b", "--range", "01:00:05:00")
    assert p.returncode != 0 and "IN-OUT" in p.stderr, p.stderr
    p = r("hls", hls.archive, f"main/src/Day01/{HD}", tmp_path / "c", "--range", "01:00:03:00-01:00:02:00")
    assert p.returncode != 0 and "after the in point" in p.stderr, p.stderr
    # A clip with no preview rendered points at `reelfs proxy`.
    arch = tmp_path / "arch"
    r.ok("init", arch)
    r.ok("ingest", arch, hls.src / SD, "-m", "one")
    p = r("hls", arch, f"main/{SD}", tmp_path / "d")
    assert p.returncode != 0 and "reelfs proxy" in p.stderr, p.stderr
    assert not (tmp_path / "d").exists()
    # Never into the archive's own folders.
    p = r("hls", hls.archive, f"main/src/Day01/{HD}", hls.archive / "cache" / "x")
    assert p.returncode != 0
    assert not (hls.archive / "cache" / "x").exists()


# ---- over HTTP: `reelfs serve` --------------------------------------------------------------

import os

import requests

from test_serve import Server


@pytest.fixture(scope="module")
def served(hls):
    s = Server(hls.reelfs, hls.archive, "--cache-size", "64M")
    yield s
    s.stop()


def clip_path(clip):
    return f"main/src/Day01/{clip}"


def test_serve_answers_the_master_and_each_rung_playlist(served, hls):
    r = requests.get(served.url(clip_path(HD) + ".m3u8"))
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    pl = m3u8.loads(r.text, uri=served.url(clip_path(HD) + ".m3u8"))
    assert [p.stream_info.resolution for p in pl.playlists] == [(640, 360), (960, 540), (1920, 1080)]
    # The same measured figures as the playlist `reelfs hls` writes.
    local = m3u8.load(str(master(hls, HD)))
    assert [(p.stream_info.bandwidth, p.stream_info.codecs) for p in pl.playlists] == \
        [(p.stream_info.bandwidth, p.stream_info.codecs) for p in local.playlists]
    for var, prof in zip(pl.playlists, ["preview-low", "preview", "preview-high"]):
        rr = requests.get(var.absolute_uri)
        assert rr.status_code == 200, rr.text
        media = m3u8.loads(rr.text, uri=var.absolute_uri)
        assert media.segment_map[0].uri == f"/main/src/Day01/.proxy/{prof}/{stem(HD)}.mp4"
        assert [s.byterange for s in media.segments] == [s.byterange for s in m3u8.load(str(rung_playlist(hls, HD, prof))).segments]
        # Each segment URL, asked for its byte range, is exactly those bytes of the rung.
        data = rung_file(hls, HD, prof).read_bytes()
        length, off = (int(x) for x in media.segments[1].byterange.split("@"))
        seg = requests.get(media.segments[1].absolute_uri, headers={"Range": f"bytes={off}-{off + length - 1}"})
        assert seg.status_code == 206 and seg.content == data[off:off + length]
    head = requests.head(served.url(clip_path(HD) + ".m3u8"))
    assert head.status_code == 200 and head.content == b"" and int(head.headers["Content-Length"]) == len(r.content)


def test_ffmpeg_plays_the_hls_stream_over_http_end_to_end(served, hls):
    url = served.url(clip_path(HD) + ".m3u8")
    assert len(decoded_frames(url)) == HD_FRAMES
    for prof in ("preview-low", "preview-high"):
        frames = decoded_frames(f"{url}?rung={prof}")
        assert frames == decoded_frames(rung_file(hls, HD, prof)), prof


def http_segment(served, clip, profile, n, out):
    media = m3u8.loads(requests.get(served.url(clip_path(clip) + ".m3u8") + f"?rung={profile}").text, uri=served.base + "/")
    def get(uri, br):
        length, off = (int(x) for x in br.split("@"))
        r = requests.get(served.base + uri, headers={"Range": f"bytes={off}-{off + length - 1}"})
        assert r.status_code == 206
        return r.content
    out.write_bytes(get(media.segment_map[0].uri, media.segment_map[0].byterange) + get(media.segments[n].uri, media.segments[n].byterange))
    return out


def test_a_rung_switch_over_http_continues_the_picture_sequence(served, hls, tmp_path):
    """What a player does when bandwidth rises: rung preview-low's segment 1, then
    preview-high's segment 2, both fetched by byte range over HTTP; decoded one after
    the other they are source frames 50..149 without a gap or a repeat."""
    a = http_segment(served, HD, "preview-low", 1, tmp_path / "a.mp4")
    b = http_segment(served, HD, "preview-high", 2, tmp_path / "b.mp4")
    lst = tmp_path / "list.txt"
    lst.write_text(f"file '{a}'\nfile '{b}'\n")
    joined = tmp_path / "joined.mkv"
    p = run(["ffmpeg", "-nostdin", "-v", "error", "-f", "concat", "-safe", "0", "-i", lst,
             "-vf", "scale=640:360", "-c:v", "ffv1", "-an", joined])
    assert p.returncode == 0, p.stderr
    psnr = frame_psnrs(joined, hls.src / HD, (640, 360), ref_opts=("-ss", "2"))
    assert len(psnr) == 100 and min(psnr) > 28, psnr


def test_tc_query_redirects_to_the_slice_starting_at_that_frame(served, hls):
    r = requests.get(served.url(clip_path(HD)) + "?tc=01:00:02:00", allow_redirects=False)
    assert r.status_code == 303, r.text
    loc = r.headers["Location"]
    assert requests.utils.unquote(loc) == f"/{clip_path(HD)}@01:00:02:00-01:00:06:00"
    p = ffprobe_json(served.base + loc, "-show_streams")
    v = next(s for s in p["streams"] if s["codec_type"] == "video")
    assert v["tags"]["timecode"] == "01:00:02:00"
    assert len(decoded_frames(served.base + loc)) == HD_FRAMES - 50
    # Outside the clip, or not a timecode: 400 saying why.
    r = requests.get(served.url(clip_path(HD)) + "?tc=01:00:07:00", allow_redirects=False)
    assert r.status_code == 400 and "01:00:00:00 to 01:00:06:00" in r.text, r.text
    r = requests.get(served.url(clip_path(HD)) + "?tc=banana", allow_redirects=False)
    assert r.status_code == 400


def test_range_playlist_over_http(served, hls):
    url = served.url(clip_path(HD) + ".m3u8") + "?in=01:00:02:10&out=01:00:03:05"
    pl = m3u8.loads(requests.get(url).text, uri=url)
    assert len(pl.playlists) == 3
    for var in pl.playlists:
        assert "in=01:00:02:10&out=01:00:03:05" in var.uri
        text = requests.get(served.base + var.uri).text
        media = m3u8.loads(text)
        assert media.media_sequence == 1 and len(media.segments) == 1
        local = (hls.base / "range" / f"{stem(HD)}.{var.uri.split('rung=')[1].split('&')[0]}.m3u8")
        if local.exists():   # written by the `reelfs hls --range` test: the same start
            assert text.split("#EXT-X-START:")[1].split("\n")[0] == local.read_text().split("#EXT-X-START:")[1].split("\n")[0]
    assert len(decoded_frames(served.base + pl.playlists[0].uri)) == 50
    r = requests.get(served.url(clip_path(HD) + ".m3u8") + "?in=01:00:02:10")
    assert r.status_code == 400 and "out=" in r.text


def test_a_clip_without_previews_answers_404_saying_to_run_reelfs_proxy(hls, tmp_path):
    arch = tmp_path / "arch"
    hls.reelfs.ok("init", arch)
    hls.reelfs.ok("ingest", arch, hls.src / SD, "-m", "one")
    s = Server(hls.reelfs, arch)
    try:
        r = requests.get(s.url(f"main/{SD}.m3u8"))
        assert r.status_code == 404 and "reelfs proxy" in r.text, r.text
        # A name that is neither a clip's playlist nor a file: the ordinary 404.
        assert requests.get(s.url("main/nothing.mov.m3u8")).status_code == 404
    finally:
        s.stop()


def test_a_signed_master_playlist_signs_every_url_it_lists(hls, tmp_path):
    key = tmp_path / "token.key"
    key.write_bytes(os.urandom(32))
    s = Server(hls.reelfs, hls.archive, "--token-key", key)
    try:
        assert requests.get(s.url(clip_path(HD) + ".m3u8")).status_code == 403
        link = hls.reelfs.ok("share", hls.archive, clip_path(HD) + ".m3u8", "--token-key", key, "--base-url", s.base).stdout.strip()
        r = requests.get(link)
        assert r.status_code == 200, r.text
        pl = m3u8.loads(r.text)
        for var in pl.playlists:
            assert "sig=" in var.uri
            media = m3u8.loads(requests.get(s.base + var.uri).text)
            assert "sig=" in media.segment_map[0].uri
            assert requests.head(s.base + media.segment_map[0].uri).status_code == 200
            # The signature is the segment file's own: it opens nothing else.
            other = media.segment_map[0].uri.replace(stem(HD), stem(C003))
            assert requests.head(s.base + other).status_code == 403
        # ffmpeg follows the signed URLs end to end.
        assert len(decoded_frames(link)) == HD_FRAMES
        r = requests.get(link.replace(".m3u8?", "?") + "&tc=01:00:01:00", allow_redirects=False)
        assert r.status_code == 403   # the playlist's link does not open the clip itself
    finally:
        s.stop()


# ---- a real browser: Debian's chromium, headless, through hls.js ---------------------------

from browser import run_page

PAGE = """<!doctype html><html><body><video id="v" muted playsinline></video>
<script src="/hls.js"></script><script>
const report = (o) => fetch('/report', {method: 'POST', body: JSON.stringify(o)});
const v = document.getElementById('v');
const codecs = 'video/mp4; codecs="CODECS"';
const st = {h264: MediaSource.isTypeSupported(codecs), playing: false, stalls: [], errors: [], levels: [], t: 0};
if (!st.h264 || !Hls.isSupported()) { st.done = true; report(st); } else {
  const hls = new Hls({debug: false});
  hls.on(Hls.Events.MANIFEST_PARSED, (e, d) => { st.levels = d.levels.map(l => [l.width, l.height, l.bitrate]); v.play(); });
  hls.on(Hls.Events.ERROR, (e, d) => { st.errors.push(d.details + (d.fatal ? ' (fatal)' : ''));
    if (d.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR) st.stalls.push(v.currentTime); });
  v.addEventListener('playing', () => { st.playing = true; });
  v.addEventListener('waiting', () => { if (st.playing) st.stalls.push(v.currentTime); });
  hls.loadSource('SRC');
  hls.attachMedia(v);
  setInterval(() => { st.t = v.currentTime; st.done = v.currentTime > 5 || v.ended; report(st); }, 250);
}
</script></body></html>"""


def test_chromium_plays_the_master_through_hlsjs_past_5s_without_a_stall(served, hls, tmp_path):
    """The page (its own origin: the stream is fetched cross-origin, so CORS is part of
    the test) plays /…/H1080.mov.m3u8 with hls.js; it reports currentTime every 250 ms.
    Passing 5 s with no 'waiting' after playback began and no stall error is the bar."""
    codecs = m3u8.load(str(master(hls, HD))).playlists[0].stream_info.codecs
    page = PAGE.replace("CODECS", codecs).replace("SRC", served.url(clip_path(HD) + ".m3u8")).encode()
    last = run_page(page, tmp_path)
    assert last["h264"], (f"this Chromium cannot decode {codecs} in MSE; the test would have to play a VP9 "
                          f"rung instead: test_hls_vp9.py plays one with H.264 refused (report: {last})")
    assert [l[:2] for l in last["levels"]] == [[640, 360], [960, 540], [1920, 1080]], last
    assert last["t"] > 5, f"playback reached {last['t']:.2f} s in 60 s: {last}"
    assert last["stalls"] == [], f"stalled at {last['stalls']}: {last}"
    assert not [e for e in last["errors"] if "fatal" in e], last
