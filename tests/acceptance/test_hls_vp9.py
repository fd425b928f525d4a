"""The VP9 twin of the low HLS rung (`preview-low-vp9`), for reviewers whose browser
cannot decode H.264 (some Chromium builds, Firefox on some Linux distributions).

`reelfs proxy --profiles preview-low-vp9` renders it (not a default profile); the
master playlist then offers it beside the H.264 rungs with CODECS read from the
stream's own `vpcC`, and a player keeps to what it can decode. Debian's Chromium
decodes H.264, so the page refuses H.264 itself (MediaSource.isTypeSupported and
mediaCapabilities say no to avc1 before hls.js loads): both paths run every time.

Judged by ffprobe (codec, size, keyframe times), ffmpeg (decoding the VP9 rung's
playlist over HTTP frame for frame) and a real browser (Debian's chromium headless,
hls.js), which must reach past 5 s with no stall on the rung the test expects.
Footage: an 8 s 1280x720 25p H.264 clip with AAC, made here (four 2 s segments).
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import m3u8
import pytest
import requests

from browser import run_page
from test_hls import ffprobe_json, run
from test_serve import Server

TIMEOUT = 600
CLIP = "R001_h264_25p.mov"
FRAMES = 200


def keyframe_indices(path):
    """Which frames (by index) are keyframes. By index, not time: the VP9 rung has
    no B-frames, so its timeline is not offset like the H.264 rungs' (and MP4's
    AAC priming stretches its first frame by 21 ms); what a rung switch needs is
    the same frames starting each segment."""
    f = ffprobe_json(path, "-select_streams", "v:0", "-show_entries", "frame=key_frame")["frames"]
    assert len(f) == FRAMES, f"{path}: {len(f)} frames, not {FRAMES}"
    return [i for i, x in enumerate(f) if x["key_frame"] == 1]


@pytest.fixture(scope="module")
def vp9(tmp_path_factory, reelfs):
    """One archive, one clip with preview-low, preview and preview-low-vp9; served."""
    base = tmp_path_factory.mktemp("hls_vp9")
    src = base / "src"
    src.mkdir()
    p = run(["ffmpeg", "-nostdin", "-v", "error", "-y",
             "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=25:duration={FRAMES // 25}",
             "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={FRAMES // 25}",
             "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25",
             "-c:a", "aac", "-b:a", "96k", "-timecode", "01:00:00:00", src / CLIP])
    assert p.returncode == 0, p.stderr
    e = SimpleNamespace(reelfs=reelfs, base=base, archive=base / "archive", spec=f"main/src/{CLIP}")
    reelfs.ok("init", e.archive)
    reelfs.ok("ingest", e.archive, src, "-m", "reel")
    e.run = reelfs.json("proxy", e.archive, e.spec, "--profiles", "preview-low,preview,preview-low-vp9", timeout=TIMEOUT)
    e.out = base / "hls"
    reelfs.ok("hls", e.archive, e.spec, e.out)
    e.server = Server(reelfs, e.archive, "--cache-size", "32M")
    yield e
    e.server.stop()


def rung(e, profile):
    return e.out / f"{CLIP.rsplit('.', 1)[0]}.{profile}.mp4"


def test_vp9_rung_is_the_low_rung_in_vp9_with_the_same_2s_keyframes(vp9):
    v = ffprobe_json(rung(vp9, "preview-low-vp9"), "-show_streams")["streams"]
    video = next(s for s in v if s["codec_type"] == "video")
    assert (video["codec_name"], video["width"], video["height"]) == ("vp9", 640, 360), video
    assert [s["codec_name"] for s in v if s["codec_type"] == "audio"] == ["aac"]
    # Same keyframe marks as the H.264 rungs: a player may switch at any segment.
    assert keyframe_indices(rung(vp9, "preview-low-vp9")) == keyframe_indices(rung(vp9, "preview-low")) == [0, 50, 100, 150]


def test_master_offers_the_vp9_rung_beside_h264_with_its_real_codec_string(vp9):
    url = vp9.server.url(vp9.spec + ".m3u8")
    r = requests.get(url)
    assert r.status_code == 200, r.text
    pl = m3u8.loads(r.text, uri=url)
    by_codec = {p.stream_info.codecs.split(",")[0][:4]: p for p in pl.playlists}
    assert sorted(by_codec) == ["avc1", "vp09"], r.text
    vp = by_codec["vp09"]
    # vp09.PP.LL.DD: profile 0 (8-bit 4:2:0), a level FFmpeg's muxer wrote into
    # vpcC for 640x360 at 25 fps (2.1 = "21"), 8-bit; AAC as for the H.264 rungs.
    assert re.fullmatch(r"vp09\.00\.\d\d\.08,mp4a\.40\.2", vp.stream_info.codecs), vp.stream_info.codecs
    assert vp.stream_info.resolution == (640, 360)
    assert vp.stream_info.bandwidth < 1_000_000, vp.stream_info.bandwidth
    # The same as `reelfs hls` wrote to disk.
    local = m3u8.load(str(vp9.out / f"{CLIP.rsplit('.', 1)[0]}.m3u8"))
    assert sorted(p.stream_info.codecs for p in local.playlists) == sorted(p.stream_info.codecs for p in pl.playlists)
    # ffmpeg plays the VP9 rung's playlist over HTTP, every frame of the clip.
    p = run(["ffmpeg", "-nostdin", "-v", "error", "-i", vp.absolute_uri, "-map", "0:v:0", "-f", "framemd5", "-"], text=True)
    assert p.returncode == 0, p.stderr
    assert len([l for l in p.stdout.splitlines() if l and not l.startswith("#")]) == FRAMES


# ---- a real browser: Debian's chromium, headless, through hls.js ---------------------------

# REFUSE_AVC: the page says no to H.264 before hls.js loads, as a Chromium
# without H.264 would (hls.js asks MediaSource.isTypeSupported, and
# mediaCapabilities for some levels).
PAGE = """<!doctype html><html><body><video id="v" muted playsinline></video>
<script>
if (REFUSE_AVC) {
  const avc = (t) => /avc[13]/.test(String(t));
  const its = MediaSource.isTypeSupported.bind(MediaSource);
  MediaSource.isTypeSupported = (t) => avc(t) ? false : its(t);
  if (navigator.mediaCapabilities) {
    const info = navigator.mediaCapabilities.decodingInfo.bind(navigator.mediaCapabilities);
    navigator.mediaCapabilities.decodingInfo = (c) => (c && c.video && avc(c.video.contentType))
      ? Promise.resolve({supported: false, smooth: false, powerEfficient: false}) : info(c);
  }
}
</script>
<script src="/hls.js"></script><script>
const report = (o) => fetch('/report', {method: 'POST', body: JSON.stringify(o)});
const v = document.getElementById('v');
const st = {h264: MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001e"'),
            vp9: MediaSource.isTypeSupported('video/mp4; codecs="VP9CODEC"'),
            playing: false, stalls: [], errors: [], levels: [], played: [], t: 0};
if (!Hls.isSupported()) { st.done = true; report(st); } else {
  const hls = new Hls({debug: false});
  hls.on(Hls.Events.MANIFEST_PARSED, (e, d) => { st.levels = d.levels.map(l => [l.width, l.height, l.videoCodec]); v.play(); });
  hls.on(Hls.Events.LEVEL_SWITCHED, (e, d) => { st.played.push(hls.levels[d.level].videoCodec); });
  hls.on(Hls.Events.ERROR, (e, d) => { st.errors.push(d.details + (d.fatal ? ' (fatal)' : ''));
    if (d.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR) st.stalls.push(v.currentTime); });
  v.addEventListener('playing', () => { st.playing = true; });
  v.addEventListener('waiting', () => { if (st.playing) st.stalls.push(v.currentTime); });
  hls.loadSource('SRC');
  hls.attachMedia(v);
  setInterval(() => { st.t = v.currentTime; st.done = v.currentTime > 5 || v.ended; report(st); }, 250);
}
</script></body></html>"""


def play_in_chromium(vp9, tmp_path, refuse_avc):
    url = vp9.server.url(vp9.spec + ".m3u8")
    vp9_codec = next(p.stream_info.codecs for p in m3u8.loads(requests.get(url).text).playlists
                     if p.stream_info.codecs.startswith("vp09")).split(",")[0]
    page = (PAGE.replace("REFUSE_AVC", "true" if refuse_avc else "false")
            .replace("VP9CODEC", vp9_codec).replace("SRC", url).encode())
    last = run_page(page, tmp_path)
    assert last["t"] > 5, f"playback reached {last['t']:.2f} s in 60 s: {last}"
    assert last["stalls"] == [], f"stalled at {last['stalls']}: {last}"
    assert not [e for e in last["errors"] if "fatal" in e], last
    return last


def test_chromium_without_h264_plays_the_vp9_rung_past_5s_without_a_stall(vp9, tmp_path):
    last = play_in_chromium(vp9, tmp_path, refuse_avc=True)
    assert not last["h264"], f"the page did not manage to refuse H.264: {last}"
    assert last["vp9"], f"this Chromium cannot decode VP9 in MSE either: {last}"
    # hls.js dropped the H.264 rungs it was told it cannot decode; what it played is the VP9 rung.
    assert [l[:2] for l in last["levels"]] == [[640, 360]] and last["levels"][0][2].startswith("vp09"), last
    assert last["played"] and all(c.startswith("vp09") for c in last["played"]), last


def test_chromium_with_h264_still_plays_the_master_that_offers_vp9_too(vp9, tmp_path):
    last = play_in_chromium(vp9, tmp_path, refuse_avc=False)
    assert last["h264"], (f"this Chromium cannot decode H.264 in MSE: the VP9 case above covers such a browser, "
                          f"but this one was expected to decode it (report: {last})")
    assert sorted(l[2][:4] for l in last["levels"]) == ["avc1", "avc1", "vp09"], last
    # Offered both, hls.js starts on H.264 (it ranks avc1 above vp09) and adapts
    # within that codec set: the VP9 rung costs an H.264 browser nothing.
    assert last["played"] and all(c.startswith("avc1") for c in last["played"]), last
