"""The archive core (issue 3), checked the way a coordinator would: init, ingest,
ls, info, cat, restore, dedup, re-ingest, branches, log, stats.

Media facts come from scripts/test-media.md. Faults (bad input, crashes, damage)
are in test_faults.py.
"""

import os
import re
import shutil
import stat

import pytest

from helpers import assert_same_tree, b3, write_random

DAY = "main/Day01/test-media"


def info(reelfs, archive, name):
    return reelfs.json("info", archive, f"{DAY}/{name}")


@pytest.fixture
def small_tree(tmp_path):
    """A card-like folder with odd modes, exact mtimes, an empty file, an empty
    folder, spaces and non-ASCII in names, and a file of several chunks."""
    card = tmp_path / "A002_card"
    t = 1_600_000_000_123_456_789
    write_random(card / "CLIP" / "A002C001.mov", 3 << 20, 0o640, t)
    write_random(card / "CLIP" / "A002C002 take 2 (é).mov", 200_000, 0o600, t + 1)
    write_random(card / "multi_chunk.bin", 20 << 20, 0o644, t + 2)
    (card / "CLIP" / "sidecar.xml").write_text("<clip name='A002C001'/>\n" * 50)
    os.chmod(card / "CLIP" / "sidecar.xml", 0o755)
    (card / "empty.txt").write_bytes(b"")
    (card / "EMPTY_DIR").mkdir()
    os.chmod(card / "EMPTY_DIR", 0o700)
    for d, off in [(card / "EMPTY_DIR", 10), (card / "CLIP", 11), (card, 12)]:
        os.utime(d, ns=(t + off, t + off))
    return card


# ---- init ---------------------------------------------------------------------

def test_init_creates_the_documented_layout(reelfs, tmp_path):
    a = tmp_path / "arch"
    proc = reelfs.ok("init", a)
    assert "main" in proc.stdout
    for name in ["reelfs.toml", "catalog.db", "packs", "cache", "lock"]:
        assert (a / name).exists(), name
    assert re.search(r"^format_version\s*=\s*2\s*$", (a / "reelfs.toml").read_text(), re.M)
    assert reelfs.ok("branch", a).stdout.split()[0] == "main"
    assert reelfs.ok("ls", a).stdout.split() == ["main/"]
    assert reelfs.ok("ls", a, "main").stdout == ""
    assert reelfs.ok("log", a).stdout == ""
    reelfs.check_deep(a)


def test_init_refuses_a_non_empty_folder(reelfs, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("precious")
    proc = reelfs("init", tmp_path / "x")
    assert proc.returncode != 0
    assert "not empty" in proc.stderr
    assert (tmp_path / "x" / "keep.txt").read_text() == "precious"
    assert not (tmp_path / "x" / "reelfs.toml").exists()


# ---- ingest, ls, info: the media facts of scripts/test-media.md ----------------

def test_ingest_lists_every_file(reelfs, media_archive, media_dir):
    names = reelfs.ok("ls", media_archive, DAY).stdout.split()
    expected = sorted(p.name + ("/" if p.is_dir() else "") for p in media_dir.iterdir())
    assert sorted(names) == expected
    dpx = reelfs.ok("ls", media_archive, f"{DAY}/E005_dpx").stdout.split()
    assert dpx == [f"E005.{n:07d}.dpx" for n in range(86400, 86410)]
    assert reelfs.ok("ls", media_archive, "main").stdout.split() == ["Day01/"]


def test_ls_long_shows_duration_timecode_rate_codec(reelfs, media_archive):
    out = reelfs.ok("ls", media_archive, DAY, "-l").stdout
    lines = {line.split("\t")[3]: line for line in out.splitlines()}
    a001 = lines["A001C003_prores_2398.mov"]
    assert a001.split("\t")[1].strip() == "22782570"
    for want in ["48f", "01:00:00:00", "23.976fps", "prores"]:
        assert want in a001, a001
    for want in ["90f", "00:00:59;00", "29.97fps", "dnxhd"]:
        assert want in lines["B002C001_dnxhd_2997df.mxf"]
    for want in ["100f", "10:00:00:00", "25fps", "h264"]:
        assert want in lines["C003C001_h264_25p.mov"]
    assert "DAMAGED" in lines["G007_truncated.mov"]
    assert lines["E005_dpx/"].startswith("755")
    assert "DAMAGED" not in lines["K011_notmedia.bin"]


def test_ls_json_sizes_and_facts(reelfs, media_archive, media_dir):
    entries = {e["name"]: e for e in reelfs.json("ls", media_archive, DAY)}
    for p in media_dir.iterdir():
        e = entries[p.name]
        if p.is_file():
            assert e["kind"] == "file"
            assert e["size"] == p.stat().st_size
            assert e["mtime_ns"] == p.stat().st_mtime_ns
            assert e["hash"] == b3(p)
        else:
            assert e["kind"] == "dir"
            assert e["size"] == sum(f.stat().st_size for f in p.iterdir())
    a = entries["A001C003_prores_2398.mov"]
    assert (a["timecode"], a["drop_frame"], a["frame_rate"], a["duration_frames"], a["codec"], a["reel"]) == (
        "01:00:00:00", False, "24000/1001", 48, "prores", "A001")
    assert entries["G007_truncated.mov"]["damaged"] is True
    assert entries["B002C001_dnxhd_2997df.mxf"]["damaged"] is False


# name: (codec, profile, w, h, rate, fps, frames, tc, df, reel, audio tracks, channels each)
VIDEO_FACTS = {
    "A001C003_prores_2398.mov": ("prores", "HQ", 1920, 1080, "24000/1001", 23.976, 48,
                                 "01:00:00:00", False, "A001", 8, 1),
    "B002C001_dnxhd_2997df.mxf": ("dnxhd", "DNXHD", 1920, 1080, "30000/1001", 29.97, 90,
                                  "00:00:59;00", True, None, 2, 1),
    "C003C001_h264_25p.mov": ("h264", "High", 1280, 720, "25/1", 25.0, 100,
                              "10:00:00:00", False, None, 1, 2),
    "C003C002_h264_25p.mp4": ("h264", "High", 1280, 720, "25/1", 25.0, 100,
                              None, False, None, 1, 2),
    "H008_2997df_min10.mov": ("prores", "Proxy", 640, 360, "30000/1001", 29.97, 90,
                              "00:09:59;00", True, None, 2, 1),
    "I009_5994df.mov": ("prores", "Proxy", 640, 360, "60000/1001", 59.94, 120,
                        "00:00:59;50", True, None, 1, 1),
    "J010_2997df_min1.mov": ("prores", "Proxy", 640, 360, "30000/1001", 29.97, 60,
                             "00:00:59;20", True, None, 1, 1),
}


@pytest.mark.parametrize("name", sorted(VIDEO_FACTS))
def test_info_json_video_facts(reelfs, media_archive, media_dir, name):
    codec, profile, w, h, rate, fps, frames, tc, df, reel, ntracks, ch = VIDEO_FACTS[name]
    i = info(reelfs, media_archive, name)
    assert i["damaged"] is False and i["probe_error"] is None
    assert i["size"] == i["logical_bytes"] == (media_dir / name).stat().st_size
    m = i["media"]
    assert (m["codec"], m["profile"], m["width"], m["height"]) == (codec, profile, w, h)
    assert (m["frame_rate"], m["frame_rate_fps"]) == (rate, fps)
    assert m["variable_frame_rate"] is False
    assert m["duration_frames"] == frames
    assert (m["timecode"], m["drop_frame"], m["reel"]) == (tc, df, reel)
    assert m["audio_tracks"] == ntracks
    assert m["audio_channels"] == ntracks * ch
    audio = [s for s in m["streams"] if s["kind"] == "audio"]
    assert len(audio) == ntracks
    for s in audio:
        assert (s["channels"], s["sample_rate"]) == (ch, 48000)
        if codec == "prores" or name.endswith(".mxf"):
            assert (s["codec"], s["bits_per_sample"]) == ("pcm_s24le", 24)


def test_info_colour_tags(reelfs, media_archive):
    for name in ["A001C003_prores_2398.mov", "B002C001_dnxhd_2997df.mxf", "C003C001_h264_25p.mov"]:
        m = info(reelfs, media_archive, name)["media"]
        assert (m["color_primaries"], m["color_transfer"], m["color_matrix"]) == ("bt709",) * 3, name
    m = info(reelfs, media_archive, "H008_2997df_min10.mov")["media"]
    assert m["color_primaries"] in (None, "unknown", "unspecified")


def test_info_mxf_container(reelfs, media_archive):
    m = info(reelfs, media_archive, "B002C001_dnxhd_2997df.mxf")["media"]
    assert m["container"] == "mxf"


def test_info_bwf_time_reference(reelfs, media_archive):
    m = info(reelfs, media_archive, "D004_bwf.wav")["media"]
    assert m["container"] == "wav"
    assert m["time_reference_samples"] == 172800000  # 01:00:00:00 at 48 kHz
    assert m["timecode"] == "01:00:00:00"
    assert m["drop_frame"] is False
    assert m["codec"] == "pcm_s24le"
    assert (m["audio_tracks"], m["audio_channels"]) == (1, 2)
    assert m["duration_seconds"] == pytest.approx(3.0)
    assert m["width"] is None and m["duration_frames"] is None


def test_info_vfr_is_flagged(reelfs, media_archive):
    m = info(reelfs, media_archive, "F006_vfr.mp4")["media"]
    assert m["variable_frame_rate"] is True
    assert m["duration_frames"] == 66
    assert m["timecode"] is None
    assert m["audio_tracks"] == 0
    out = reelfs.ok("info", media_archive, f"{DAY}/F006_vfr.mp4").stdout
    assert "VARIABLE" in out


def test_info_dpx_frames(reelfs, media_archive):
    for n in (86400, 86409):
        i = info(reelfs, media_archive, f"E005_dpx/E005.{n:07d}.dpx")
        assert i["damaged"] is False
        m = i["media"]
        assert (m["codec"], m["width"], m["height"]) == ("dpx", 640, 360)
        # One DPX file is one frame; the rate is not in the file (test-media.md).
        assert m["duration_frames"] == 1
        assert m["timecode"] is None


def test_info_not_media_has_no_facts(reelfs, media_archive):
    i = info(reelfs, media_archive, "K011_notmedia.bin")
    assert i["media"] is None and i["damaged"] is False and i["probe_error"] is None


def test_info_human_readable(reelfs, media_archive, media_dir):
    out = reelfs.ok("info", media_archive, f"{DAY}/A001C003_prores_2398.mov").stdout
    assert f"blake3:{b3(media_dir / 'A001C003_prores_2398.mov')}" in out
    assert re.search(r"timecode\s+01:00:00:00 \(non-drop\)", out)
    assert re.search(r"reel\s+A001", out)
    assert re.search(r"duration\s+48 frames", out)
    assert re.search(r"resolution\s+1920x1080", out)
    assert re.search(r"audio\s+8 tracks, 8 channels", out)
    out = reelfs.ok("info", media_archive, f"{DAY}/B002C001_dnxhd_2997df.mxf").stdout
    assert re.search(r"timecode\s+00:00:59;00 \(drop-frame\)", out)
    out = reelfs.ok("info", media_archive, f"{DAY}/G007_truncated.mov").stdout
    assert "DAMAGED" in out


def test_info_of_a_folder_or_missing_path_is_an_error(reelfs, media_archive):
    # A folder holding an image sequence describes the sequence (test_proxy_sequences.py);
    # any other folder is an error that points at `ls`.
    proc = reelfs("info", media_archive, DAY)
    assert proc.returncode != 0 and "folder" in proc.stderr and "reelfs ls" in proc.stderr
    proc = reelfs("info", media_archive, f"{DAY}/E005_dpx")
    assert proc.returncode == 0 and "E005.%07d.dpx (frames 86400-86409, 10 files)" in proc.stdout
    proc = reelfs("info", media_archive, f"{DAY}/NOPE.mov")
    assert proc.returncode != 0 and "no such file" in proc.stderr
    proc = reelfs("ls", media_archive, "nobranch/x")
    assert proc.returncode != 0 and "no branch named 'nobranch'" in proc.stderr


def test_truncated_media_is_archived_exactly_and_flagged(reelfs, media_archive, media_dir):
    i = info(reelfs, media_archive, "G007_truncated.mov")
    assert i["damaged"] is True
    assert i["probe_error"]
    assert i["content_hash"] == b3(media_dir / "G007_truncated.mov")
    got = reelfs("cat", media_archive, f"{DAY}/G007_truncated.mov", text=False)
    assert got.returncode == 0
    assert got.stdout == (media_dir / "G007_truncated.mov").read_bytes()


# ---- content hash, cat, restore ---------------------------------------------

def test_content_hash_is_b3sum_of_the_file(reelfs, media_archive, media_dir):
    for p in sorted(media_dir.glob("*.*")) + sorted((media_dir / "E005_dpx").iterdir())[:2]:
        rel = p.relative_to(media_dir)
        assert info(reelfs, media_archive, str(rel))["content_hash"] == b3(p), rel
    if shutil.which("b3sum"):
        import subprocess
        p = media_dir / "A001C003_prores_2398.mov"
        out = subprocess.run(["b3sum", str(p)], capture_output=True, text=True, check=True).stdout
        assert out.split()[0] == info(reelfs, media_archive, p.name)["content_hash"]


@pytest.mark.parametrize("name", ["A001C003_prores_2398.mov", "B002C001_dnxhd_2997df.mxf",
                                  "D004_bwf.wav", "K011_notmedia.bin",
                                  "E005_dpx/E005.0086405.dpx"])
def test_cat_equals_source(reelfs, media_archive, media_dir, name):
    got = reelfs("cat", media_archive, f"{DAY}/{name}", text=False)
    assert got.returncode == 0, got.stderr
    assert got.stdout == (media_dir / name).read_bytes()


def test_restore_folder_is_identical_with_modes_and_mtimes(reelfs, media_archive, media_dir, tmp_path):
    dest = tmp_path / "restored"
    proc = reelfs.ok("restore", media_archive, DAY, dest)
    assert "restored" in proc.stdout
    assert_same_tree(media_dir, dest)


def test_restore_single_files(reelfs, media_archive, media_dir, tmp_path):
    into = tmp_path / "into"
    into.mkdir()
    # Several files into an existing folder keep their names.
    reelfs.ok("restore", media_archive, f"{DAY}/A001C003_prores_2398.mov",
              f"{DAY}/E005_dpx/E005.0086401.dpx", into)
    for rel in ["A001C003_prores_2398.mov", "E005_dpx/E005.0086401.dpx"]:
        src, dst = media_dir / rel, into / os.path.basename(rel)
        assert dst.read_bytes() == src.read_bytes()
        assert dst.stat().st_mtime_ns == src.stat().st_mtime_ns
        assert stat.S_IMODE(dst.stat().st_mode) == stat.S_IMODE(src.stat().st_mode)
    # One file to a new name.
    reelfs.ok("restore", media_archive, f"{DAY}/D004_bwf.wav", tmp_path / "renamed.wav")
    assert (tmp_path / "renamed.wav").read_bytes() == (media_dir / "D004_bwf.wav").read_bytes()
    # No temporary files left behind.
    assert not [p for p in into.iterdir() if "reelfs-restore" in p.name]


def test_round_trip_of_odd_files(reelfs, tmp_archive, small_tree, tmp_path):
    reelfs.ok("ingest", tmp_archive, small_tree, "-m", "card A002")
    dest = tmp_path / "out"
    reelfs.ok("restore", tmp_archive, "main/A002_card", dest)
    assert_same_tree(small_tree, dest)
    # Each file through cat, and the hash of each through info.
    for p in small_tree.rglob("*"):
        if p.is_file():
            rel = f"main/A002_card/{p.relative_to(small_tree)}"
            assert reelfs("cat", tmp_archive, rel, text=False).stdout == p.read_bytes()
            i = reelfs.json("info", tmp_archive, rel)
            assert i["content_hash"] == b3(p)
            assert i["mode"] == f"{stat.S_IMODE(p.stat().st_mode):o}"
    assert reelfs.json("info", tmp_archive, "main/A002_card/empty.txt")["size"] == 0
    assert reelfs.ok("ls", tmp_archive, "main/A002_card/EMPTY_DIR").stdout == ""
    reelfs.check_deep(tmp_archive)


def test_restore_replaces_an_existing_file(reelfs, tmp_archive, small_tree, tmp_path):
    """Restoring over an existing file replaces it with the archived bytes.
    (Links planted in DEST are tested in test_restore_safety.py.)"""
    reelfs.ok("ingest", tmp_archive, small_tree)
    dest = tmp_path / "x.mov"
    dest.write_bytes(b"old contents")
    reelfs.ok("restore", tmp_archive, "main/A002_card/CLIP/A002C001.mov", dest)
    assert dest.read_bytes() == (small_tree / "CLIP" / "A002C001.mov").read_bytes()


# ---- dedup and re-ingest ------------------------------------------------------

def test_copy_under_another_name_costs_no_stored_bytes(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "src"
    write_random(src / "A003C001.mov", 12 << 20)
    reelfs.ok("ingest", tmp_archive, src / "A003C001.mov", "--to", "Day02")
    before = reelfs.json("stats", tmp_archive)
    copy = tmp_path / "elsewhere" / "A003C001_copy.mov"
    copy.parent.mkdir()
    shutil.copyfile(src / "A003C001.mov", copy)
    rep = reelfs.json("ingest", tmp_archive, copy, "--to", "Selects")
    assert rep["files_stored"] == 1
    assert rep["bytes_new_stored"] == 0
    assert rep["chunks_new"] == 0 and rep["chunks_dedup"] >= 1
    after = reelfs.json("stats", tmp_archive)
    assert after["stored_bytes"] == before["stored_bytes"]
    assert after["unique_bytes"] == before["unique_bytes"]
    assert after["pack_bytes"] - before["pack_bytes"] < 64 << 10  # a few catalog records
    assert after["logical_bytes"] == 2 * before["logical_bytes"]
    assert after["dedup_ratio"] == pytest.approx(2.0, rel=0.01)
    assert after["files"] == 2
    a = reelfs.json("info", tmp_archive, "main/Day02/A003C001.mov")
    b = reelfs.json("info", tmp_archive, "main/Selects/A003C001_copy.mov")
    assert a["content_hash"] == b["content_hash"]


def test_reingest_unchanged_folder_reads_nothing(reelfs, tmp_archive, small_tree):
    first = reelfs.json("ingest", tmp_archive, small_tree)
    assert first["commit"] and first["bytes_read"] > 20 << 20
    again = reelfs.json("ingest", tmp_archive, small_tree)
    assert again["commit"] is None
    assert again["bytes_read"] == 0
    assert again["files_unchanged"] == again["files"] == first["files"]
    assert again["bytes_new_stored"] == 0
    assert len(reelfs.json("log", tmp_archive)) == 1
    proc = reelfs.ok("ingest", tmp_archive, small_tree)
    assert "nothing changed" in proc.stdout


def test_reingest_reads_only_the_changed_file(reelfs, tmp_archive, small_tree):
    reelfs.ok("ingest", tmp_archive, small_tree, "-m", "first")
    changed = small_tree / "CLIP" / "sidecar.xml"
    changed.write_text("<clip name='A002C001' note='new'/>\n")
    rep = reelfs.json("ingest", tmp_archive, small_tree, "-m", "second")
    assert rep["commit"]
    assert rep["bytes_read"] == changed.stat().st_size
    assert rep["files_stored"] == 1
    log = reelfs.json("log", tmp_archive)
    assert [c["message"] for c in log] == ["second", "first"]
    assert log[0]["parents"] == [log[1]["commit"]]
    got = reelfs("cat", tmp_archive, "main/A002_card/CLIP/sidecar.xml").stdout
    assert got == changed.read_text()
    # The first commit still has the old bytes.
    old = reelfs("cat", tmp_archive, f"main@{log[1]['commit'][:12]}/A002_card/CLIP/sidecar.xml").stdout
    assert old.startswith("<clip name='A002C001'/>")


# ---- branches, log, stats -----------------------------------------------------

def test_branch_create_list_log(reelfs, tmp_archive, small_tree, tmp_path):
    reelfs.ok("ingest", tmp_archive, small_tree, "-m", "card A002")
    before = reelfs.json("stats", tmp_archive)
    proc = reelfs.ok("branch", tmp_archive, "grade-v2", "--from", "main")
    assert "grade-v2" in proc.stdout
    after = reelfs.json("stats", tmp_archive)
    assert after["stored_bytes"] == before["stored_bytes"]
    assert after["pack_bytes"] - before["pack_bytes"] < 4096
    listing = dict(line.split("\t") for line in reelfs.ok("branch", tmp_archive).stdout.splitlines())
    assert set(listing) == {"main", "grade-v2"}
    assert listing["main"] == listing["grade-v2"]
    assert reelfs.ok("ls", tmp_archive).stdout.split() == ["grade-v2/", "main/"]
    assert reelfs.json("ls", tmp_archive, "grade-v2/A002_card") == reelfs.json("ls", tmp_archive, "main/A002_card")

    # A commit on the branch leaves main as it was.
    extra = tmp_path / "vfx"
    write_random(extra / "plate_v002.exr", 100_000)
    reelfs.ok("ingest", tmp_archive, extra, "--branch", "grade-v2", "-m", "vfx plate")
    assert "vfx" in reelfs.ok("ls", tmp_archive, "grade-v2").stdout.split("/\n")
    assert reelfs.ok("ls", tmp_archive, "main").stdout.split() == ["A002_card/"]
    glog = reelfs.json("log", tmp_archive, "grade-v2")
    mlog = reelfs.json("log", tmp_archive, "main")
    assert [c["message"] for c in glog] == ["vfx plate", "card A002"]
    assert [c["message"] for c in mlog] == ["card A002"]
    assert glog[1]["commit"] == mlog[0]["commit"]
    assert glog[0]["branch"] == "grade-v2"
    text = reelfs.ok("log", tmp_archive, "grade-v2").stdout.splitlines()
    assert len(text) == 2 and text[0].startswith(glog[0]["commit"][:12]) and "vfx plate" in text[0]
    # A branch from an older commit.
    reelfs.ok("branch", tmp_archive, "old", "--from", f"grade-v2@{glog[1]['commit'][:8]}")
    assert reelfs.json("log", tmp_archive, "old")[0]["commit"] == mlog[0]["commit"]
    reelfs.check_deep(tmp_archive)


def test_branch_errors(reelfs, tmp_archive):
    proc = reelfs("branch", tmp_archive, "main", "--from", "main")
    assert proc.returncode != 0 and "already exists" in proc.stderr
    for bad in ["a/b", "x@y", ".hidden"]:
        proc = reelfs("branch", tmp_archive, bad, "--from", "main")
        assert proc.returncode != 0 and "invalid branch name" in proc.stderr, bad
    proc = reelfs("branch", tmp_archive, "new", "--from", "nosuch")
    assert proc.returncode != 0 and "no branch named 'nosuch'" in proc.stderr
    proc = reelfs("ingest", tmp_archive, tmp_archive / "reelfs.toml", "--branch", "nosuch")
    assert proc.returncode != 0 and "no branch named 'nosuch'" in proc.stderr
    assert reelfs.ok("branch", tmp_archive).stdout.split()[0] == "main"


def test_stats(reelfs, tmp_archive, tmp_path):
    src = tmp_path / "s"
    write_random(src / "random.bin", 5 << 20)
    (src / "script.txt").write_text("INT. EDIT BAY - NIGHT.\n" * 100_000)  # compresses
    reelfs.ok("ingest", tmp_archive, src)
    s = reelfs.json("stats", tmp_archive)
    logical = (5 << 20) + (src / "script.txt").stat().st_size
    assert s["logical_bytes"] == s["unique_bytes"] == logical
    assert s["stored_bytes"] < logical - 1_000_000  # the script compressed
    assert s["stored_bytes"] > 5 << 20  # the random bytes did not
    assert s["compression_ratio"] > 1.0
    assert s["files"] == 2 and s["commits"] == 1 and s["branches"] == 1
    assert s["chunks"] >= 2 and s["packs"] >= 1
    text = reelfs.ok("stats", tmp_archive).stdout
    for word in ["logical bytes", "stored bytes", "chunks", "dedup ratio", "compression"]:
        assert word in text
