"""The generated test footage has the facts listed in scripts/test-media.md.

These tests check the fixtures themselves (with ffprobe), not reelfs: if one
fails, the generator or the ffmpeg build changed, and the table is stale.
"""

import array
import json
import math
import struct
import subprocess
from fractions import Fraction

import pytest

CLIPS = [
    "A001C003_prores_2398.mov",
    "B002C001_dnxhd_2997df.mxf",
    "C003C001_h264_25p.mov",
    "C003C002_h264_25p.mp4",
    "D004_bwf.wav",
    "E005_dpx",
    "F006_vfr.mp4",
    "G007_truncated.mov",
    "H008_2997df_min10.mov",
    "I009_5994df.mov",
    "J010_2997df_min1.mov",
    "K011_notmedia.bin",
    "L012_dpx_tc",
    "M013_exr",
    "N014_prores4444_alpha.mov",
]


def probe(path, *extra):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_format", "-show_streams",
         *extra, str(path)],
        capture_output=True, text=True, check=True,
    ).stdout
    return json.loads(out)


def of_type(info, codec_type):
    return [s for s in info["streams"] if s["codec_type"] == codec_type]


def tone_hz(path, audio_index, channel=0, channels=1):
    """Frequency of a sine track, from zero crossings over its first second."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-map", f"0:a:{audio_index}",
         "-t", "1", "-f", "s16le", "-ac", str(channels), "-ar", "48000", "-"],
        capture_output=True, check=True,
    ).stdout
    s = array.array("h", raw)[channel::channels]
    crossings = sum(1 for a, b in zip(s, s[1:]) if (a < 0) != (b < 0))
    return crossings / 2 * 48000 / len(s)


def test_all_files_present(media_dir):
    for name in CLIPS:
        assert (media_dir / name).exists(), name
    assert (media_dir / ".gen-version").read_text().startswith("reelfs-test-media v")


# name: (profile, tag, size, rate, frames, timecode, reel, audio tracks, tones)
TMCD_PRORES = {
    "A001C003_prores_2398.mov": ("HQ", "apch", (1920, 1080), "24000/1001", 48,
                                 "01:00:00:00", "A001", 8,
                                 [200, 300, 400, 500, 600, 700, 800, 900]),
    "H008_2997df_min10.mov": ("Proxy", "apco", (640, 360), "30000/1001", 90,
                              "00:09:59;00", None, 2, [500, 700]),
    "I009_5994df.mov": ("Proxy", "apco", (640, 360), "60000/1001", 120,
                        "00:00:59;50", None, 1, [800]),
    "J010_2997df_min1.mov": ("Proxy", "apco", (640, 360), "30000/1001", 60,
                             "00:00:59;20", None, 1, [900]),
}


@pytest.mark.parametrize("name", sorted(TMCD_PRORES))
def test_prores_mov(media_dir, name):
    profile, tag, (w, h), rate, frames, tc, reel, ntracks, tones = TMCD_PRORES[name]
    info = probe(media_dir / name)
    assert "mov" in info["format"]["format_name"]
    assert info["format"]["tags"]["major_brand"].strip() == "qt"
    assert "timecode" not in info["format"].get("tags", {})  # MOV: stream tags only

    (v,) = of_type(info, "video")
    assert (v["codec_name"], v["profile"], v["codec_tag_string"]) == ("prores", profile, tag)
    assert (v["width"], v["height"], v["pix_fmt"]) == (w, h, "yuv422p10le")
    assert v["r_frame_rate"] == v["avg_frame_rate"] == rate
    assert int(v["nb_frames"]) == frames
    assert v["tags"]["timecode"] == tc

    (d,) = of_type(info, "data")
    assert d["codec_tag_string"] == "tmcd"
    assert d["tags"]["timecode"] == tc
    assert d["tags"].get("reel_name") == reel

    audio = of_type(info, "audio")
    assert len(audio) == ntracks
    seconds = round(frames * Fraction(rate) ** -1)
    for a in audio:
        assert (a["codec_name"], a["codec_tag_string"]) == ("pcm_s24le", "in24")
        assert (a["channels"], a["sample_rate"], a["bits_per_sample"]) == (1, "48000", 24)
        assert int(a["nb_frames"]) == 48000 * seconds
    for i, hz in enumerate(tones):
        assert tone_hz(media_dir / name, i) == pytest.approx(hz, abs=2)


def test_a001_colour_tags(media_dir):
    (v,) = of_type(probe(media_dir / "A001C003_prores_2398.mov"), "video")
    assert (v["color_primaries"], v["color_transfer"], v["color_space"]) == ("bt709",) * 3
    assert v["color_range"] == "tv"


def test_b002_dnxhd_mxf(media_dir):
    path = media_dir / "B002C001_dnxhd_2997df.mxf"
    info = probe(path, "-count_frames")
    fmt = info["format"]
    assert fmt["format_name"] == "mxf"
    assert fmt["tags"]["timecode"] == "00:00:59;00"  # MXF: format tag, not stream
    assert fmt["tags"]["operational_pattern_ul"] == "060e2b34.04010101.0d010201.01010900"  # OP1a
    (v,) = of_type(info, "video")
    assert (v["codec_name"], v["profile"]) == ("dnxhd", "DNXHD")
    assert (v["width"], v["height"], v["pix_fmt"]) == (1920, 1080, "yuv422p")
    assert v["r_frame_rate"] == "30000/1001"
    assert int(v["nb_read_frames"]) == 90
    assert "timecode" not in v.get("tags", {})
    assert (v["color_primaries"], v["color_transfer"], v["color_space"]) == ("bt709",) * 3
    audio = of_type(info, "audio")
    assert len(audio) == 2
    for a in audio:
        assert (a["codec_name"], a["channels"], a["sample_rate"]) == ("pcm_s24le", 1, "48000")
    assert [round(tone_hz(path, i)) for i in range(2)] == [1000, 2000]


@pytest.mark.parametrize("name", ["C003C001_h264_25p.mov", "C003C002_h264_25p.mp4"])
def test_c003_h264(media_dir, name):
    path = media_dir / name
    info = probe(path)
    (v,) = of_type(info, "video")
    assert (v["codec_name"], v["profile"]) == ("h264", "High")
    assert (v["width"], v["height"], v["pix_fmt"]) == (1280, 720, "yuv420p")
    assert v["r_frame_rate"] == v["avg_frame_rate"] == "25/1"
    assert int(v["nb_frames"]) == 100
    assert v["has_b_frames"] == 2
    (a,) = of_type(info, "audio")
    assert (a["codec_name"], a["channels"], a["channel_layout"], a["sample_rate"]) == (
        "aac", 2, "stereo", "48000")
    assert [round(tone_hz(path, 0, c, 2)) for c in range(2)] == [440, 660]

    keys = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
         "packet=pts_time,flags", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    key_times = sorted(float(t) for t, flags in (k.split(",") for k in keys) if "K" in flags)
    assert key_times == pytest.approx([i * 12 / 25 for i in range(9)])  # GOP 12

    data = of_type(info, "data")
    if name.endswith(".mov"):
        assert info["format"]["tags"]["major_brand"].strip() == "qt"
        (d,) = data
        assert d["codec_tag_string"] == "tmcd"
        assert d["tags"]["timecode"] == v["tags"]["timecode"] == "10:00:00:00"
        assert "reel_name" not in d["tags"]
    else:
        assert info["format"]["tags"]["major_brand"] == "isom"
        assert data == []
        assert "timecode" not in v.get("tags", {})
        assert "timecode" not in info["format"].get("tags", {})


def test_d004_bwf(media_dir):
    path = media_dir / "D004_bwf.wav"
    info = probe(path)
    assert info["format"]["format_name"] == "wav"
    assert info["format"]["tags"]["time_reference"] == "172800000"  # 01:00:00:00 @ 48k
    (a,) = info["streams"]
    assert (a["codec_name"], a["channels"], a["sample_rate"], a["bits_per_sample"]) == (
        "pcm_s24le", 2, "48000", 24)
    assert int(a["duration_ts"]) == 3 * 48000
    assert [round(tone_hz(path, 0, c, 2)) for c in range(2)] == [1000, 1500]
    # bext chunk present (mediainfo/other readers rely on it)
    assert b"bext" in path.read_bytes()[:4096]


def test_e005_dpx_sequence(media_dir):
    seq = media_dir / "E005_dpx"
    names = sorted(p.name for p in seq.iterdir())
    assert names == [f"E005.{n:07d}.dpx" for n in range(86400, 86410)]
    info = probe(seq / "E005.%07d.dpx", "-count_frames", "-start_number", "86400")
    (v,) = info["streams"]
    assert (v["codec_name"], v["width"], v["height"], v["pix_fmt"]) == (
        "dpx", 640, 360, "gbrp10le")
    assert v["bits_per_raw_sample"] == "10"
    assert int(v["nb_read_frames"]) == 10
    # no film/TV header at all: no timecode, no frame rate (unlike L012)
    for name in names:
        h = dpx_header(seq / name)
        assert (h["magic"], h["image_offset"], h["industry_size"]) == (b"XPDS", 1664, 0)


def test_f006_vfr(media_dir):
    info = probe(media_dir / "F006_vfr.mp4")
    (v,) = info["streams"]
    assert v["codec_name"] == "h264"
    assert int(v["nb_frames"]) == 30 + 12 + 24
    assert Fraction(v["r_frame_rate"]) != Fraction(v["avg_frame_rate"])


def test_g007_truncated(media_dir):
    path = media_dir / "G007_truncated.mov"
    whole = (media_dir / "C003C001_h264_25p.mov").stat().st_size
    assert path.stat().st_size == whole * 6 // 10
    proc = subprocess.run(["ffprobe", "-v", "error", str(path)], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "moov atom not found" in proc.stderr


def test_k011_not_media(media_dir):
    path = media_dir / "K011_notmedia.bin"
    assert path.stat().st_size == 1 << 20
    proc = subprocess.run(["ffprobe", "-v", "error", str(path)], capture_output=True)
    assert proc.returncode != 0


def bcd_tc(h, m, s, f):
    """SMPTE 12M BCD 0xHHMMSSFF (all flags 0)."""
    return int(f"{h:02d}{m:02d}{s:02d}{f:02d}", 16)


def dpx_header(path):
    """The DPX header fields the fixtures use, in the byte order of the magic."""
    b = path.read_bytes()[:2048]
    e = {b"SDPX": ">", b"XPDS": "<"}[b[:4]]
    u32 = lambda off: struct.unpack_from(e + "I", b, off)[0]
    r32 = lambda off: struct.unpack_from(e + "f", b, off)[0]
    h = {"magic": b[:4], "image_offset": u32(4), "file_size": u32(16),
         "generic_size": u32(24), "industry_size": u32(28), "element0_offset": u32(808)}
    if h["image_offset"] >= 2048:
        h.update(film_fps=r32(1724), tv_timecode=u32(1920), tv_user_bits=u32(1924),
                 tv_fps=r32(1940))
    return h


def test_l012_dpx_header_timecode(media_dir):
    seq = media_dir / "L012_dpx_tc"
    names = sorted(p.name for p in seq.iterdir())
    assert names == [f"L012.{n:07d}.dpx" for n in range(1001, 1025)]
    info = probe(seq / "L012.%07d.dpx", "-count_frames", "-start_number", "1001")
    (v,) = info["streams"]
    assert (v["codec_name"], v["width"], v["height"], v["pix_fmt"]) == (
        "dpx", 320, 180, "gbrp10le")
    assert v["bits_per_raw_sample"] == "10"
    assert int(v["nb_read_frames"]) == 24
    assert v["r_frame_rate"] == "25/1"  # image2's default: the header rate is not used

    for k, name in enumerate(names):
        h = dpx_header(seq / name)
        assert h["magic"] == b"XPDS"  # little-endian, as ffmpeg writes gbrp10le
        assert (h["image_offset"], h["element0_offset"]) == (2048, 2048)
        assert (h["generic_size"], h["industry_size"]) == (1664, 384)
        assert h["file_size"] == (seq / name).stat().st_size
        assert h["film_fps"] == h["tv_fps"] == 24.0
        assert h["tv_timecode"] == bcd_tc(1, 0, 0, k)  # 01:00:00:00 + k, bit 0x40 (DF) clear
        assert h["tv_user_bits"] == 0

    # ffmpeg 5.1's dpx decoder reads the TV time code into each frame's metadata
    tcs = subprocess.run(
        ["ffprobe", "-v", "error", "-start_number", "1001", "-show_entries",
         "frame_tags=timecode", "-of", "json", str(seq / "L012.%07d.dpx")],
        capture_output=True, text=True, check=True,
    ).stdout
    assert [f["tags"]["timecode"] for f in json.loads(tcs)["frames"]] == [
        f"01:00:00:{k:02d}" for k in range(24)]


EXR_LINES_PER_CHUNK = {0: 1, 1: 1, 2: 1, 3: 16, 4: 32, 5: 16, 6: 32, 7: 32, 8: 32, 9: 256}


def exr_header(path):
    """(attributes {name: (type, bytes)}, chunk offsets) of a single-part scanline EXR."""
    b = path.read_bytes()
    assert b[:4] == b"\x76\x2f\x31\x01"
    assert struct.unpack_from("<I", b, 4)[0] == 2  # version 2, scanline, single part
    attrs, p = {}, 8
    while b[p]:
        name, typ, _ = b[p:p + 600].split(b"\0", 2)
        p += len(name) + len(typ) + 2
        (size,) = struct.unpack_from("<I", b, p)
        attrs[name.decode()] = (typ.decode(), b[p + 4:p + 4 + size])
        p += 4 + size
    table = p + 1
    _, ymin, _, ymax = struct.unpack("<4i", attrs["dataWindow"][1])
    lines = EXR_LINES_PER_CHUNK[attrs["compression"][1][0]]
    n = math.ceil((ymax - ymin + 1) / lines)
    offsets = struct.unpack_from(f"<{n}Q", b, table)
    # every chunk: i32 y, i32 size, data; they follow the table back to back
    assert offsets[0] == table + 8 * n
    for i, off in enumerate(offsets):
        y, size = struct.unpack_from("<ii", b, off)
        assert y == ymin + i * lines
        assert off + 8 + size == (offsets[i + 1] if i + 1 < n else len(b))
    return attrs, offsets


def exr_channels(chlist):
    """[(name, pixel type)] from a chlist attribute (0 uint, 1 half, 2 float)."""
    out, p = [], 0
    while chlist[p]:
        end = chlist.index(b"\0", p)
        out.append((chlist[p:end].decode(), struct.unpack_from("<i", chlist, end + 1)[0]))
        p = end + 1 + 16  # pixel type, pLinear + 3 reserved, x/y sampling
    return out


def test_m013_exr_attributes(media_dir):
    seq = media_dir / "M013_exr"
    names = sorted(p.name for p in seq.iterdir())
    assert names == [f"M013.{n:07d}.exr" for n in range(1, 13)]
    info = probe(seq / "M013.%07d.exr", "-count_frames")
    (v,) = info["streams"]
    assert (v["codec_name"], v["width"], v["height"], v["pix_fmt"]) == (
        "exr", 640, 360, "gbrpf32le")
    assert int(v["nb_read_frames"]) == 12

    for k, name in enumerate(names):
        attrs, offsets = exr_header(seq / name)
        assert len(offsets) == 23  # zip: 16 lines per chunk
        assert attrs["compression"] == ("compression", b"\x03")  # ZIP_COMPRESSION
        assert attrs["dataWindow"][1] == struct.pack("<4i", 0, 0, 639, 359)
        assert exr_channels(attrs["channels"][1]) == [("B", 1), ("G", 1), ("R", 1)]  # half
        typ, data = attrs["timeCode"]
        assert typ == "timecode"
        assert struct.unpack("<II", data) == (bcd_tc(2, 0, 0, k), 0)  # 02:00:00:00 + k
        assert attrs["framesPerSecond"] == ("rational", struct.pack("<iI", 25, 1))


def alpha_plane(path, n, w=640, h=360):
    """Frame n's alpha as 8-bit gray bytes (row-major)."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path),
         "-vf", f"select=eq(n\\,{n}),alphaextract", "-frames:v", "1",
         "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        capture_output=True, check=True,
    ).stdout
    assert len(raw) == w * h
    return raw


def test_n014_prores4444_alpha(media_dir):
    path = media_dir / "N014_prores4444_alpha.mov"
    info = probe(path)
    assert info["format"]["tags"]["major_brand"].strip() == "qt"
    (v,) = of_type(info, "video")
    assert (v["codec_name"], v["profile"], v["codec_tag_string"]) == ("prores", "4444", "ap4h")
    # encoded from yuva444p10le; ffmpeg's prores decoder outputs 4444 as 12 bit
    assert (v["width"], v["height"], v["pix_fmt"]) == (640, 360, "yuva444p12le")
    assert v["bits_per_raw_sample"] == "12"
    assert v["r_frame_rate"] == v["avg_frame_rate"] == "24000/1001"
    assert int(v["nb_frames"]) == 48
    assert v["tags"]["timecode"] == "03:00:00:00"
    assert "reel_name" not in v["tags"]

    (d,) = of_type(info, "data")
    assert d["codec_tag_string"] == "tmcd"
    assert (d["tags"]["timecode"], d["tags"]["reel_name"]) == ("03:00:00:00", "N014")

    (a,) = of_type(info, "audio")
    assert (a["codec_name"], a["codec_tag_string"]) == ("pcm_s24le", "in24")
    assert (a["channels"], a["sample_rate"], a["bits_per_sample"]) == (1, "48000", 24)
    assert int(a["nb_frames"]) == 96000
    assert tone_hz(path, 0) == pytest.approx(1100, abs=2)

    # the matte: in frame n, x < 12n is transparent; elsewhere opaque on top
    # and ~50 % (10-bit 512) on the bottom half
    w = 640
    for n in (0, 24, 47):
        alpha = alpha_plane(path, n)
        top, bottom = alpha[10 * w:11 * w], alpha[350 * w:351 * w]
        edge = 12 * n
        assert set(top[:edge]) <= {0} and set(bottom[:edge]) <= {0}
        assert set(top[edge:]) == {255}
        assert all(abs(x - 128) <= 2 for x in bottom[edge:])
