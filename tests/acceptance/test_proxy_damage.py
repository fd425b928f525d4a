"""Damage inside a clip does not end its proxies (issue 11, "A damaged frame ends the proxy").

Clips are made here with ffmpeg (small, moov first) and damaged by overwriting bytes
inside one video sample, found with `ffprobe -show_packets`:
- an intra-frame clip (ProRes HQ, 48 frames, TC 01:00:00:00): half of frame 20's sample
  zeroed, which ffmpeg itself decodes as 48 frames, one "corrupt decoded frame";
- a long-GOP clip (H.264, GOP 25, 2 B-frames, 100 frames, TC 10:00:00:00): a P-frame
  inside the second GOP overwritten with random bytes, which breaks every picture that
  references it until the next keyframe (the B-frames before it in display order too);
- a truncated copy of the ProRes clip: its proxies still end where its frames end (PARTIAL).

What a user would check, with independent tools: the editorial and preview proxies have
exactly the source's frame count (`ffprobe -count_frames`); every frame outside the held
ranges matches the undamaged source frame for frame (ffmpeg's psnr filter, per-frame
stats file); a held frame is the last good picture; `info --json`, `info` and the mount's
`user.reelfs.note` name the damaged frame ranges with their timecodes.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from helpers import Mount


TIMEOUT = 300
PRORES_FRAMES, PRORES_BAD = 48, 20
H264_FRAMES, H264_GOP = 100, 25


def run(argv, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("timeout", TIMEOUT)
    return subprocess.run([str(a) for a in argv], **kw)


def ffmpeg(*args):
    p = run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], text=True)
    assert p.returncode == 0, p.stderr


def frame_count(path) -> int:
    p = run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
             "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path], text=True)
    assert p.returncode == 0, p.stderr
    return int(p.stdout.strip().split(",")[0])


def video_packets(path):
    """(pts, pos, size, key) of every video packet, in display (pts) order."""
    p = run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
             "packet=pts,pos,size,flags", "-of", "json", path], text=True)
    assert p.returncode == 0, p.stderr
    pk = [(int(x["pts"]), int(x["pos"]), int(x["size"]), "K" in x["flags"]) for x in json.loads(p.stdout)["packets"]]
    return sorted(pk)


def pict_types(path):
    p = run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pict_type",
             "-of", "csv=p=0", path], text=True)
    assert p.returncode == 0, p.stderr
    return [l.strip().strip(",") for l in p.stdout.split()]


def overwrite(src: Path, dst: Path, frame: int, length: int, fill: str):
    """A copy of `src` with `length` bytes in the middle of frame `frame`'s sample overwritten."""
    pts, pos, size, _ = video_packets(src)[frame]
    length = min(length, size * 8 // 10)
    off = pos + (size - length) // 2
    data = bytearray(src.read_bytes())
    data[off:off + length] = bytes(length) if fill == "zero" else random.Random(11).randbytes(length)
    dst.write_bytes(bytes(data))


def psnr_per_frame(proxy: Path, source: Path, work: Path) -> list[float]:
    """PSNR (dB, inf for identical) of proxy frame n against source frame n, scaled to the proxy's size.
    Both start at 0: the preview's first timestamp is its B-frame delay, and the psnr
    filter pairs frames by timestamp."""
    p = run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
             "-of", "csv=p=0", proxy], text=True)
    w, h = p.stdout.strip().split(",")[:2]
    stats = work / f"psnr-{proxy.parent.name}-{proxy.name}.log"
    ffmpeg("-i", proxy, "-i", source, "-lavfi",
           f"[0:v]setpts=PTS-STARTPTS,format=yuv420p[a];[1:v]setpts=PTS-STARTPTS,scale={w}:{h},format=yuv420p[b];"
           f"[a][b]psnr=stats_file={stats}",
           "-f", "null", "-")
    out = []
    for line in stats.read_text().splitlines():
        m = re.search(r"psnr_avg:(inf|[0-9.]+)", line)
        assert m, line
        out.append(float(m.group(1)))
    return out


def framemd5(path: Path) -> list[str]:
    p = run(["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:v:0", "-f", "framemd5", "-"], text=True)
    assert p.returncode == 0, p.stderr
    return [l.split(",")[-1].strip() for l in p.stdout.splitlines() if l and not l.startswith("#")]


@pytest.fixture(scope="module")
def dmg(tmp_path_factory, reelfs):
    base = tmp_path_factory.mktemp("proxy-damage")
    e = SimpleNamespace()
    e.base, e.work = base, base / "work"
    e.work.mkdir()
    clean = base / "clean"
    clean.mkdir()
    e.prores = clean / "P1.mov"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=24000/1001",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
           "-frames:v", PRORES_FRAMES, "-t", "2.002", "-c:v", "prores", "-profile:v", "3",
           "-c:a", "pcm_s24le", "-timecode", "01:00:00:00", "-movflags", "+faststart", e.prores)
    e.h264 = clean / "H1.mov"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
           "-f", "lavfi", "-i", "sine=frequency=660:sample_rate=48000",
           "-frames:v", H264_FRAMES, "-t", "4", "-c:v", "libx264", "-g", H264_GOP, "-keyint_min", H264_GOP,
           "-sc_threshold", "0", "-bf", "2", "-pix_fmt", "yuv420p", "-c:a", "aac",
           "-timecode", "10:00:00:00", "-movflags", "+faststart", e.h264)

    src = base / "src" / "Day01"
    src.mkdir(parents=True)
    overwrite(e.prores, src / "P1_damaged.mov", PRORES_BAD, 16384, "zero")
    # The long-GOP damage: the first P-frame from frame 36 on (inside the second GOP,
    # after some B-frames that reference it).
    types = pict_types(e.h264)
    e.h264_bad = next(i for i in range(36, 2 * H264_GOP) if types[i] == "P")
    overwrite(e.h264, src / "H1_damaged.mov", e.h264_bad, 1 << 20, "random")
    data = e.prores.read_bytes()
    (src / "P1_truncated.mov").write_bytes(data[: len(data) * 6 // 10])

    e.archive = base / "archive"
    reelfs.ok("init", e.archive)
    reelfs.ok("ingest", e.archive, src, "-m", "damaged card")
    e.report = reelfs.json("proxy", e.archive, timeout=TIMEOUT)
    e.reelfs = reelfs
    with Mount(reelfs, e.archive, base / "mnt") as m:
        e.day = m.mp / "main" / "Day01"
        yield e


def proxy(e, stem, profile):
    ext = {"editorial": "mov", "preview": "mp4", "thumb": "jpg", "sheet": "jpg"}[profile]
    return e.day / ".proxy" / profile / f"{stem}.{ext}"


def info_proxies(e, name):
    info = e.reelfs.json("info", e.archive, f"main/Day01/{name}")
    return {p["profile"]: p for p in info["proxies"]}


def held_frames(p) -> set[int]:
    return {f for r in p["damaged"] for f in range(r["first_frame"], r["last_frame"] + 1)}


def check_frames(e, stem, clean: Path, frames: int, profile: str, min_db: float):
    """Every frame of the proxy outside its held ranges matches the undamaged source;
    every held frame is the last good picture before its range."""
    prox = info_proxies(e, f"{stem}.mov")[profile]
    held = held_frames(prox)
    db = psnr_per_frame(proxy(e, stem, profile), clean, e.work)
    assert len(db) == frames
    bad = {n: db[n] for n in range(frames) if n not in held and db[n] < min_db}
    assert not bad, f"{profile}: frames outside the held ranges {prox['damaged']} differ from the source: {bad}"
    return prox, held


# ---- intra-frame (ProRes) ------------------------------------------------------------------------


def test_ffmpeg_decodes_every_frame_of_the_damaged_prores(dmg):
    # The premise: the damage is one frame's data, not the end of the clip.
    assert frame_count(dmg.day / "P1_damaged.mov") == PRORES_FRAMES


def test_intra_damage_keeps_every_rung_full_length(dmg):
    for profile in ("editorial", "preview"):
        assert frame_count(proxy(dmg, "P1_damaged", profile)) == PRORES_FRAMES, profile
    prox = info_proxies(dmg, "P1_damaged.mov")
    assert sorted(prox) == ["editorial", "preview", "preview-low", "sheet", "thumb"]
    for p in prox.values():
        assert p["partial_at"] is None, p
    item = next(i for i in dmg.report["rendered"] if i["path"].endswith("P1_damaged.mov"))
    assert item["frames"] == PRORES_FRAMES and item["partial_at"] is None, item


def test_intra_damage_holds_only_the_damaged_frame(dmg):
    prox, held = check_frames(dmg, "P1_damaged", dmg.prores, PRORES_FRAMES, "editorial", 30)
    assert held == {PRORES_BAD}, prox["damaged"]
    check_frames(dmg, "P1_damaged", dmg.prores, PRORES_FRAMES, "preview", 27)
    # The held frame is the last good picture: the editorial's frame 20 decodes to the
    # same pixels as its frame 19.
    md5 = framemd5(proxy(dmg, "P1_damaged", "editorial"))
    assert md5[PRORES_BAD] == md5[PRORES_BAD - 1]
    assert md5[PRORES_BAD + 1] != md5[PRORES_BAD - 1]


def test_intra_damage_is_listed_with_timecodes(dmg):
    prox = info_proxies(dmg, "P1_damaged.mov")
    for p in prox.values():
        assert p["damaged"] == [{"first_frame": 20, "last_frame": 20,
                                 "timecode_first": "01:00:00:20", "timecode_last": "01:00:00:20"}], p
        assert "01:00:00:20" in p["note"], p["note"]
    text = dmg.reelfs.ok("info", dmg.archive, "main/Day01/P1_damaged.mov").stdout
    assert "01:00:00:20" in text and "PARTIAL" not in text, text
    note = os.getxattr(proxy(dmg, "P1_damaged", "editorial"), "user.reelfs.note").decode()
    assert "20" in note and "01:00:00:20" in note, note


def test_intra_damage_keeps_audio_full_length(dmg):
    def samples(path):
        p = run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-count_packets", "-show_entries",
                 "stream=duration_ts,sample_rate", "-of", "json", path], text=True)
        s = json.loads(p.stdout)["streams"][0]
        return int(s["duration_ts"]), s["sample_rate"]
    assert samples(proxy(dmg, "P1_damaged", "editorial")) == samples(dmg.prores)


# ---- long-GOP (H.264) ----------------------------------------------------------------------------


def test_long_gop_damage_keeps_every_rung_full_length(dmg):
    assert frame_count(dmg.day / "H1_damaged.mov") == H264_FRAMES
    for profile in ("editorial", "preview"):
        assert frame_count(proxy(dmg, "H1_damaged", profile)) == H264_FRAMES, profile
    for p in info_proxies(dmg, "H1_damaged.mov").values():
        assert p["partial_at"] is None, p


def test_long_gop_damage_holds_until_the_next_keyframe(dmg):
    prox, held = check_frames(dmg, "H1_damaged", dmg.h264, H264_FRAMES, "editorial", 30)
    check_frames(dmg, "H1_damaged", dmg.h264, H264_FRAMES, "preview", 27)
    # The damaged P-frame is held, and nothing outside its GOP is.
    assert dmg.h264_bad in held, prox["damaged"]
    assert held <= set(range(H264_GOP, 2 * H264_GOP)), prox["damaged"]
    # Every held frame shows the last good picture before its range.
    md5 = framemd5(proxy(dmg, "H1_damaged", "editorial"))
    for r in prox["damaged"]:
        for f in range(r["first_frame"], r["last_frame"] + 1):
            assert md5[f] == md5[r["first_frame"] - 1], (f, r)


def test_long_gop_damage_is_listed_with_timecodes(dmg):
    prox = info_proxies(dmg, "H1_damaged.mov")
    ed = prox["editorial"]
    assert ed["damaged"], ed
    for r in ed["damaged"]:
        # 25 fps from 10:00:00:00: frame n is 10:00:0S:FF with S = n // 25, FF = n % 25.
        for k in ("first", "last"):
            n = r[f"{k}_frame"]
            assert r[f"timecode_{k}"] == f"10:00:{n // 25:02d}:{n % 25:02d}", r
            assert r[f"timecode_{k}"] in ed["note"], ed["note"]
    note = os.getxattr(proxy(dmg, "H1_damaged", "preview"), "user.reelfs.note").decode()
    assert ed["damaged"][0]["timecode_first"] in note, note


def test_long_gop_damage_keeps_audio_full_length(dmg):
    # AAC is decoded to PCM for the editorial: as many samples as the source decodes
    # to, give or take one AAC frame of encoder priming.
    def samples(path):
        p = run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                 "packet=duration_time:stream=sample_rate", "-of", "json", path], text=True)
        assert p.returncode == 0, p.stderr
        j = json.loads(p.stdout)
        rate = int(j["streams"][0]["sample_rate"])
        return round(sum(float(x["duration_time"]) for x in j["packets"]) * rate)
    src, ed = samples(dmg.h264), samples(proxy(dmg, "H1_damaged", "editorial"))
    assert abs(ed - src) <= 1024, (ed, src)


def test_rebuilt_catalog_keeps_the_damaged_ranges(dmg, tmp_path):
    before = {k: p["damaged"] for k, p in info_proxies(dmg, "H1_damaged.mov").items()}
    copy = tmp_path / "archive"
    shutil.copytree(dmg.archive, copy, ignore=shutil.ignore_patterns("lock"))
    dmg.reelfs.ok("check", copy, "--rebuild-catalog")
    info = dmg.reelfs.json("info", copy, "main/Day01/H1_damaged.mov")
    assert {p["profile"]: p["damaged"] for p in info["proxies"]} == before
    assert all(before.values()), before


# ---- truncation still ends the proxy -------------------------------------------------------------


def test_truncated_copy_is_still_partial(dmg):
    prox = info_proxies(dmg, "P1_truncated.mov")
    ed = prox["editorial"]
    first_bad = ed["partial_at"]
    assert isinstance(first_bad, int) and 0 < first_bad < PRORES_FRAMES, ed
    assert frame_count(proxy(dmg, "P1_truncated", "editorial")) == first_bad
    text = dmg.reelfs.ok("info", dmg.archive, "main/Day01/P1_truncated.mov").stdout
    assert f"PARTIAL from frame {first_bad}" in text
