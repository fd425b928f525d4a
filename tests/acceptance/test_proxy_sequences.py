"""Proxies beyond single movie files: image sequences (DPX, EXR), a source with
alpha (ProRes 4444), the DNxHR LB editorial profile and the contact sheet.

Checked with independent tools (ffprobe, MediaInfo, ffmpeg PSNR), as in
test_proxies.py, whose helpers this module reuses:
- a sequence renders as ONE proxy per profile, named after its stem, with as many
  frames as the sequence spans; frame N of the proxy is file N of the sequence, for
  every N (ffmpeg's psnr filter with per-frame stats, see helpers.py);
- the timecode and rate come from the frame headers (DPX TV header, EXR
  `timeCode`/`framesPerSecond`); a sequence without them is noted, never guessed
  silently;
- a gap or a damaged frame holds the previous picture (later frames keep their
  timecode) and is reported; a changed frame renders again, a copy does not;
- alpha survives into the editorial (ProRes 4444, alpha plane matches);
- the sheet's tiles are the source frames it claims to show.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from helpers import Mount, assert_every_frame_is_source_frame, frame_psnrs
from test_proxies import PROFILE_EXT, archive_with_proxies, ffprobe, frame_count, grab, mediainfo_tc, psnr, run, tmcd, video, audio

SEQS = {
    # folder: (pattern, ffmpeg input options, frames, header timecode, header rate)
    "L012_dpx_tc": ("L012.%07d.dpx", ["-start_number", "1001", "-framerate", "24"], 24, "01:00:00:00", "24/1"),
    "M013_exr": ("M013.%07d.exr", ["-apply_trc", "bt709", "-start_number", "1", "-framerate", "25"], 12, "02:00:00:00", "25/1"),
    "E005_dpx": ("E005.%07d.dpx", ["-start_number", "86400", "-framerate", "24"], 10, None, "24/1"),
}
ALPHA = "N014_prores4444_alpha.mov"
SMALL = "J010_2997df_min1.mov"
ALL_PROFILES = "thumb,sheet,preview,editorial,editorial-dnxhr"


@pytest.fixture(scope="module")
def sx(tmp_path_factory, reelfs, media_dir):
    """Three sequences, an alpha clip and a small clip under main/Shots, every profile
    rendered once, mounted."""
    base = tmp_path_factory.mktemp("proxyseq")
    e = SimpleNamespace()
    e.reelfs, e.media = reelfs, media_dir
    src = base / "src" / "Shots"
    src.mkdir(parents=True)
    for folder in SEQS:
        shutil.copytree(media_dir / folder, src / folder)
    for clip in (ALPHA, SMALL):
        shutil.copy2(media_dir / clip, src / clip)
    archive_with_proxies(reelfs, e, base, [src], "--profiles", ALL_PROFILES)
    with Mount(reelfs, e.archive, base / "mnt", logdir=base) as m:
        e.mnt = m.mp
        e.shots = m.mp / "main" / "Shots"
        yield e


def seq_proxy(e, folder, profile):
    stem = SEQS[folder][0].split(".")[0]
    return e.shots / folder / ".proxy" / profile / f"{stem}.{PROFILE_EXT[profile]}"


def grab_seq(e, folder, n, out, size):
    """Luma of frame n of the sequence (counting from its first file), as ffmpeg
    reads it and converts it with the Rec. 709 matrix the proxies are tagged with.
    Luma, not RGB: the RGB frames lose chroma detail in any 4:2:2/4:2:0 proxy, and
    testsrc2's saturated bars make that dominate an RGB PSNR."""
    pattern, opts, *_ = SEQS[folder]
    vf = f"select=eq(n\\,{n}),scale={size[0]}:{size[1]}:out_color_matrix=bt709:out_range=tv,format=yuv444p,extractplanes=y"
    p = run(["ffmpeg", "-nostdin", "-v", "error", "-y", *opts, "-i", e.media / folder / pattern, "-vf", vf,
             "-fps_mode", "passthrough", "-frames:v", "1", out])
    assert p.returncode == 0 and Path(out).exists(), p.stderr
    return out


def grab_y(path, n, out):
    """Luma of frame n of a proxy."""
    p = run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", path, "-vf", f"select=eq(n\\,{n}),extractplanes=y",
             "-fps_mode", "passthrough", "-frames:v", "1", out])
    assert p.returncode == 0 and Path(out).exists(), p.stderr
    return out


# ---- sequences ------------------------------------------------------------------------------


def test_each_sequence_renders_once_not_per_frame(sx):
    done = {i["path"]: i for i in sx.report["rendered"]}
    for folder, (pattern, *_rest) in SEQS.items():
        assert f"main/Shots/{folder}/{pattern}" in done, sorted(done)
        assert sorted(done[f"main/Shots/{folder}/{pattern}"]["profiles"]) == sorted(ALL_PROFILES.split(","))
    # No frame file is reported on its own (rendered or skipped as a still).
    for path in list(done) + [p for p, _ in sx.report["skipped"]]:
        assert not path.endswith((".dpx", ".exr")) or "%" in path, path
    assert sx.report["failed"] == []


@pytest.mark.parametrize("folder", list(SEQS))
def test_sequence_proxy_has_one_frame_per_file_and_the_header_rate(sx, folder):
    _, _, frames, _, rate = SEQS[folder]
    for profile in ("editorial", "preview", "editorial-dnxhr"):
        prox = seq_proxy(sx, folder, profile)
        assert frame_count(prox) == frames, (profile, prox)
        assert video(ffprobe(prox))["r_frame_rate"] == rate


@pytest.mark.parametrize("folder", list(SEQS))
@pytest.mark.parametrize("profile", ["editorial", "preview"])
def test_sequence_proxy_frame_n_is_file_n(sx, folder, profile):
    """Every frame against every file (ffmpeg reads the sequence itself): a proxy that
    drops a file and repeats the last picture fails."""
    pattern, opts, frames, *_ = SEQS[folder]
    prox = seq_proxy(sx, folder, profile)
    v = video(ffprobe(prox))
    assert frame_count(prox) == frames
    assert_every_frame_is_source_frame(prox, sx.media / folder / pattern, (v["width"], v["height"]), frames,
                                       ref_opts=opts, what=f"{profile} proxy of {folder}")


@pytest.mark.parametrize("folder", ["L012_dpx_tc", "M013_exr"])
def test_sequence_editorial_carries_the_header_timecode(sx, folder):
    tc = SEQS[folder][3]
    prox = seq_proxy(sx, folder, "editorial")
    t = tmcd(ffprobe(prox))
    assert t is not None and t["tags"]["timecode"] == tc
    mi = mediainfo_tc(prox)
    assert mi is not None and mi["TimeCode_FirstFrame"] == tc, mi
    # The editorial is Y'CbCr tagged Rec. 709 (the RGB frames were converted so).
    v = video(ffprobe(prox))
    assert v["color_space"] == "bt709" and v["pix_fmt"] == "yuv422p10le"


def test_sequence_without_header_facts_says_so(sx, reelfs):
    prox = seq_proxy(sx, "E005_dpx", "editorial")
    assert tmcd(ffprobe(prox)) is None
    info = reelfs.json("info", sx.archive, "main/Shots/E005_dpx")
    (s,) = info["sequences"]
    assert (s["pattern"], s["first"], s["last"], s["frames"]) == ("E005.%07d.dpx", 86400, 86409, 10)
    assert s["timecode"] is None and s["frame_rate"] is None
    notes = " ".join(p["note"] for p in s["proxies"])
    assert "no timecode in the headers" in notes and "24 fps assumed" in notes


def test_info_of_a_sequence_folder(sx, reelfs):
    info = reelfs.json("info", sx.archive, "main/Shots/L012_dpx_tc")
    (s,) = info["sequences"]
    assert (s["first"], s["last"], s["gaps"], s["timecode"], s["frame_rate"]) == (1001, 1024, [], "01:00:00:00", "24/1")
    names = sorted(p["name"] for p in s["proxies"])
    assert ".proxy/editorial/L012.mov" in names and ".proxy/sheet/L012.jpg" in names
    text = reelfs.ok("info", sx.archive, "main/Shots/L012_dpx_tc").stdout
    assert "L012.%07d.dpx (frames 1001-1024, 24 files)" in text
    # A folder with no sequence still says to use ls.
    p = reelfs("info", sx.archive, "main")
    assert p.returncode != 0 and "ls" in p.stderr


def test_mount_shows_one_proxy_per_sequence_naming_its_pattern(sx):
    d = sx.shots / "L012_dpx_tc"
    assert ".proxy" in os.listdir(d)
    assert sorted(os.listdir(d / ".proxy")) == ["editorial", "editorial-dnxhr", "preview", "sheet", "thumb"]
    assert os.listdir(d / ".proxy" / "editorial") == ["L012.mov"]
    p = d / ".proxy" / "editorial" / "L012.mov"
    assert os.getxattr(p, "user.reelfs.source").decode() == "main/Shots/L012_dpx_tc/L012.%07d.dpx"
    # The frames themselves are untouched files.
    assert len([n for n in os.listdir(d) if n.endswith(".dpx")]) == 24


def test_copied_sequence_needs_no_render_changed_frame_does(tmp_path, reelfs, media_dir):
    arch = tmp_path / "archive"
    reelfs.ok("init", arch)
    a = tmp_path / "A"
    shutil.copytree(media_dir / "L012_dpx_tc", a)
    reelfs.ok("ingest", arch, a, "-m", "a")
    rep = reelfs.json("proxy", arch, "--profiles", "thumb")
    assert [i["path"] for i in rep["rendered"]] == ["main/A/L012.%07d.dpx"]
    b = tmp_path / "B"
    shutil.copytree(a, b)
    c = tmp_path / "C"
    shutil.copytree(a, c)
    shutil.copy2(a / "L012.0001002.dpx", c / "L012.0001003.dpx")   # one frame differs
    reelfs.ok("ingest", arch, b, c, "-m", "b and c")
    rep = reelfs.json("proxy", arch, "--profiles", "thumb")
    assert [i["path"] for i in rep["rendered"]] == ["main/C/L012.%07d.dpx"]
    assert rep["up_to_date"] == 1


def test_gap_and_damaged_frame_hold_the_previous_picture(tmp_path, reelfs, media_dir):
    arch = tmp_path / "archive"
    reelfs.ok("init", arch)
    s = tmp_path / "S"
    shutil.copytree(media_dir / "L012_dpx_tc", s)
    (s / "L012.0001010.dpx").unlink()                          # a gap at 1010
    bad = s / "L012.0001005.dpx"
    bad.write_bytes(bad.read_bytes()[:3000])                   # truncated: does not decode
    reelfs.ok("ingest", arch, s, "-m", "damaged plate")
    rep = reelfs.json("proxy", arch, "--profiles", "editorial")
    (item,) = rep["rendered"]
    assert item["partial_at"] == 4, item
    assert "1010" in item["note"] and "1005" in item["note"], item["note"]
    with Mount(reelfs, arch, tmp_path / "mnt", logdir=tmp_path) as m:
        prox = m.mp / "main" / "S" / ".proxy" / "editorial" / "L012.mov"
        assert frame_count(prox) == 24                          # the numbering's span
        assert tmcd(ffprobe(prox))["tags"]["timecode"] == "01:00:00:00"
        w = tmp_path / "w"
        w.mkdir()
        # Held pictures: proxy frame 4 (file 1005, damaged) shows file 1004; 9 (gap) shows 1009.
        for held, shown in ((4, 3), (9, 8)):
            a, b = grab(prox, held, w / f"h{held}.png"), grab(prox, shown, w / f"s{shown}.png")
            assert psnr(a, b) > 40, (held, shown)
        # Frame 10 is file 1011 again, not shifted by the gap.
        v = video(ffprobe(prox))
        size = (v["width"], v["height"])
        src = grab_seq(_media_env(media_dir), "L012_dpx_tc", 10, w / "src10.png", size)
        assert psnr(src, grab_y(prox, 10, w / "p10.png")) > 30
        # Every frame is the file it should show: file 1001+k, except the two held ones.
        shown = list(range(24))
        shown[4], shown[9] = 3, 8

        def files(name, index):
            """An image sequence of links: its frame k is the undamaged file 1001+index[k]."""
            d = w / name
            d.mkdir()
            for k, i in enumerate(index):
                os.symlink(media_dir / "L012_dpx_tc" / f"L012.{1001 + i:07d}.dpx", d / f"r.{k:07d}.dpx")
            return d / "r.%07d.dpx"

        opts = ["-start_number", "0", "-framerate", "24"]
        same = frame_psnrs(prox, files("same", shown), size, ref_opts=opts)
        later = frame_psnrs(prox, files("later", [min(i + 1, 23) for i in shown]), size, ref_opts=opts)
        earlier = frame_psnrs(prox, files("earlier", [max(i - 1, 0) for i in shown]), size, ref_opts=opts)
        assert len(same) == 24 and min(same) >= 30, same
        for k, i in enumerate(shown):
            assert i == 23 or same[k] > later[k] + 5, (k, same[k], later[k])
            assert i == 0 or same[k] > earlier[k] + 5, (k, same[k], earlier[k])
    info = reelfs.json("info", arch, "main/S")
    assert info["sequences"][0]["gaps"] == ["1010"]


def _media_env(media_dir):
    e = SimpleNamespace()
    e.media = media_dir
    return e


# ---- alpha, DNxHR, sheet ----------------------------------------------------------------------------


def test_alpha_source_gets_prores_4444_with_its_alpha(sx):
    prox = sx.shots / ".proxy" / "editorial" / "N014_prores4444_alpha.mov"
    v = video(ffprobe(prox))
    assert v["codec_tag_string"] == "ap4h" and v["pix_fmt"].startswith("yuva444p"), v
    assert frame_count(prox) == 48
    t = tmcd(ffprobe(prox))
    assert t["tags"]["timecode"] == "03:00:00:00" and t["tags"]["reel_name"] == "N014"
    w = sx.work / "alpha"
    w.mkdir(exist_ok=True)
    for k in (0, 24, 47):
        outs = []
        for name, path in (("s", sx.media / ALPHA), ("p", prox)):
            out = w / f"{name}{k}.png"
            r = run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", path, "-vf", f"select=eq(n\\,{k}),alphaextract",
                     "-fps_mode", "passthrough", "-frames:v", "1", "-pix_fmt", "gray", out])
            assert r.returncode == 0, r.stderr
            outs.append(out)
        assert psnr(*outs) > 35, f"alpha of frame {k} differs"


def test_dnxhr_profile_is_an_editorial_that_relinks(sx):
    prox = sx.shots / ".proxy" / "editorial-dnxhr" / SMALL
    p = ffprobe(prox)
    v = video(p)
    src = ffprobe(sx.media / SMALL)
    assert v["codec_name"] == "dnxhd" and v["profile"] == "DNXHR LB", v
    assert (v["width"], v["height"], v["r_frame_rate"]) == (video(src)["width"], video(src)["height"], video(src)["r_frame_rate"])
    assert frame_count(prox) == frame_count(sx.media / SMALL)
    assert tmcd(p)["tags"]["timecode"] == tmcd(src)["tags"]["timecode"] == "00:00:59;20"
    assert [(a["codec_name"], a["sample_rate"]) for a in audio(p)] == [(a["codec_name"], a["sample_rate"]) for a in audio(src)]


def test_sheet_tiles_are_the_frames_they_claim(sx):
    sheet = sx.shots / ".proxy" / "sheet" / SMALL.replace(".mov", ".jpg")
    data = sheet.read_bytes()
    assert data[:2] == b"\xff\xd8"
    v = video(ffprobe(sheet))
    src = video(ffprobe(sx.media / SMALL))
    n = frame_count(sx.media / SMALL)                     # 60: 25 tiles in 5 rows of 5
    tw = 240
    th = round(src["height"] * tw / src["width"] / 2) * 2
    assert (v["width"], v["height"]) == (5 * tw, 5 * th), v
    w = sx.work / "sheet"
    w.mkdir(exist_ok=True)
    for i in (0, 12, 24):
        frame = (2 * i + 1) * n // 50                       # the middle of each 25th
        tile = w / f"t{i}.png"
        r = run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", sheet, "-vf",
                 f"crop={tw}:{th}:{(i % 5) * tw}:{(i // 5) * th}", "-pix_fmt", "rgb24", tile])
        assert r.returncode == 0, r.stderr
        s = grab(sx.media / SMALL, frame, w / f"s{i}.png", (tw, th))
        other = grab(sx.media / SMALL, min(frame + 7, n - 1), w / f"o{i}.png", (tw, th))
        assert psnr(s, tile) > 25 and psnr(s, tile) > psnr(other, tile) + 3, f"tile {i} is not frame {frame}"
