"""`reelfs extract --edl/--otio`: which clip a pull takes, and input that must be refused
or explained (issue 11), and EDL/OTIO read as the upstream OpenTimelineIO CMX3600
adapter reads them (issue 12).

The footage is made here with ffmpeg: a small ProRes clip (25 fps, 01:00:00:00, reel
A001C003, noisy so its bytes are stored raw) ingested twice, once under its camera name
in Day01 and once as a copy in CardCopy with 4 KiB in its middle overwritten (a copy of
a card holding a damaged file). The copy sorts first by path and has the same reel and
timecode range. Frames are compared with `ffmpeg -f framemd5`, never with reelfs.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

GOOD = "main/card/Day01/A001C003_231124_R1AB.mov"
COPY = "main/card/CardCopy/A001C003.mov"
FPS = 25
START = 90_000  # 01:00:00:00 at 25 fps


def label(frame):
    f = START + frame
    return f"{f // (3600 * FPS):02d}:{f // (60 * FPS) % 60:02d}:{f // FPS % 60:02d}:{f % FPS:02d}"


def frame_hashes(path):
    p = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0",
                        "-f", "framemd5", "-"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return [line.split(",")[-1].strip() for line in p.stdout.splitlines() if line and not line.startswith("#")]


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    d = tmp_path_factory.mktemp("edl-card")
    good = d / "card" / "Day01" / "A001C003_231124_R1AB.mov"
    good.parent.mkdir(parents=True)
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi",
                    "-i", f"testsrc2=size=320x180:rate={FPS},noise=alls=60:allf=t", "-frames:v", "50",
                    "-c:v", "prores_ks", "-profile:v", "0", "-timecode", "01:00:00:00",
                    "-metadata:s:v:0", "reel_name=A001C003", str(good)], check=True, timeout=120)
    data = bytearray(good.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 4096] = os.urandom(4096)
    copy = d / "card" / "CardCopy" / "A001C003.mov"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(bytes(data))
    return d / "card", good, copy, mid


@pytest.fixture(scope="module")
def archive(tmp_path_factory, reelfs, card):
    a = tmp_path_factory.mktemp("edl-archive") / "archive"
    reelfs.ok("init", a)
    reelfs.ok("ingest", a, card[0], "-m", "card and its copy")
    return a


def write_edl(path, lines):
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return path


def extract(reelfs, archive, tmp_path, kind, text_or_lines, name="pull"):
    src = tmp_path / f"{name}.{kind}"
    if isinstance(text_or_lines, list):
        write_edl(src, text_or_lines)
    elif isinstance(text_or_lines, bytes):
        src.write_bytes(text_or_lines)
    else:
        src.write_text(text_or_lines)
    out = tmp_path / f"{name}-out"
    p = reelfs("extract", archive, f"--{kind}", src, "--out", out)
    rep_path = out / "report.json"
    rep = json.loads(rep_path.read_text()) if rep_path.exists() else None
    return p, rep, src


def pull_of(rep, source):
    return next(x for x in rep["pulls"] if x["source"] == source)


# ---- the EDL pull chooses the clip the EDL names ---------------------------------------

def test_named_clip_wins_over_a_copy_with_the_same_reel_and_range(reelfs, archive, card, tmp_path):
    lines = ["TITLE: NAMED", "FCM: NON-DROP FRAME",
             "001  A001C003 V     C        01:00:00:10 01:00:01:00 00:00:00:00 00:00:00:15",
             "* FROM CLIP NAME: A001C003_231124_R1AB.mov"]
    p, rep, _ = extract(reelfs, archive, tmp_path, "edl", lines)
    assert p.returncode == 0, p.stdout + p.stderr
    x = pull_of(rep, "event 1")
    assert x["status"] == "extracted", x
    assert x["clip"] == GOOD
    assert sorted(c["path"] for c in x["candidates"]) == sorted([GOOD, COPY])
    assert "names it" in x["chosen_because"]
    assert frame_hashes(x["output"]) == frame_hashes(card[1])[10:25]
    # the table names every candidate too
    assert COPY in p.stdout and GOOD in p.stdout


def test_source_file_names_the_clip(reelfs, archive, tmp_path):
    lines = ["001  A001C003 V     C        01:00:00:10 01:00:00:20 00:00:00:00 00:00:00:10",
             "* SOURCE FILE: /Volumes/CARD_A/Day01/A001C003_231124_R1AB.mov"]
    p, rep, _ = extract(reelfs, archive, tmp_path, "edl", lines)
    assert p.returncode == 0, p.stdout + p.stderr
    assert pull_of(rep, "event 1")["clip"] == GOOD


def test_equal_candidates_are_all_named_never_silently(reelfs, archive, tmp_path):
    lines = ["001  A001C003 V     C        01:00:00:10 01:00:00:20 00:00:00:00 00:00:00:10"]
    p, rep, _ = extract(reelfs, archive, tmp_path, "edl", lines)
    assert p.returncode == 0, p.stdout + p.stderr
    x = pull_of(rep, "event 1")
    assert sorted(c["path"] for c in x["candidates"]) == sorted([GOOD, COPY])
    assert "2 clips match equally" in x["chosen_because"]
    assert "2 clips match equally" in p.stderr
    assert COPY in p.stdout and GOOD in p.stdout


def test_an_undamaged_candidate_is_preferred(reelfs, tmp_archive, card, tmp_path):
    reelfs.ok("ingest", tmp_archive, card[0], "-m", "card and its copy")
    # Damage the copy's stored bytes (its overwritten region is unique to it) and let
    # check --deep find it.
    needle = card[2].read_bytes()[card[3] + 100:card[3] + 164]
    for pack in sorted((tmp_archive / "packs").rglob("*.pack")):
        data = pack.read_bytes()
        at = data.find(needle)
        if at >= 0:
            with open(pack, "r+b") as f:
                f.seek(at + 10)
                f.write(bytes([data[at + 10] ^ 0x01]))
            break
    else:
        pytest.fail("the copy's bytes are not stored raw in any pack")
    assert reelfs("check", tmp_archive, "--deep").returncode != 0
    lines = ["001  A001C003 V     C        01:00:00:10 01:00:00:20 00:00:00:00 00:00:00:10"]
    p, rep, _ = extract(reelfs, tmp_archive, tmp_path, "edl", lines)
    assert p.returncode == 0, p.stdout + p.stderr
    x = pull_of(rep, "event 1")
    assert x["clip"] == GOOD and x["status"] == "extracted"
    damaged = {c["path"]: c["damaged"] for c in x["candidates"]}
    assert damaged[GOOD] is None and "damaged" in damaged[COPY]
    assert "flagged damaged" in x["chosen_because"]
    assert frame_hashes(x["output"]) == frame_hashes(card[1])[10:20]


# ---- input that should be refused or explained -----------------------------------------

def test_random_bytes_are_not_an_edl(reelfs, archive, tmp_path):
    p, rep, src = extract(reelfs, archive, tmp_path, "edl", os.urandom(1 << 20))
    assert p.returncode != 0
    assert f"no CMX3600 events found in {src}" in p.stderr
    assert "extracted" not in p.stdout
    # the message quotes a little of the file, escaped, never the megabyte
    assert len(p.stderr) < 4000, len(p.stderr)
    assert not any(ch in p.stderr for ch in "\x1b\x07\x00")


def test_text_without_event_lines_is_not_an_edl(reelfs, archive, tmp_path):
    p, _, src = extract(reelfs, archive, tmp_path, "edl", ["TITLE: EMPTY", "FCM: NON-DROP FRAME", "hello"])
    assert p.returncode != 0
    assert f"no CMX3600 events found in {src}" in p.stderr


def test_a_huge_bad_line_is_quoted_short(reelfs, archive, tmp_path):
    junk = "\x1b[2J" + "x" * (1 << 20)
    lines = [junk, "001  A001C003 V     C        01:00:00:10 01:00:00:20 00:00:00:00 00:00:00:10",
             "* FROM CLIP NAME: A001C003_231124_R1AB.mov"]
    p, rep, _ = extract(reelfs, archive, tmp_path, "edl", lines)
    assert p.returncode == 0, p.stderr[:2000]
    assert len(rep["warnings"]) == 1 and rep["warnings"][0].startswith("line 1:")
    assert len(rep["warnings"][0]) < 400
    assert "\x1b" not in p.stderr and len(p.stderr) < 1000


@pytest.mark.parametrize("src_in,src_out,why", [
    ("99:99:99:99", "01:00:01:00", "minutes 99 is out of range"),
    ("01:00:00:30", "01:00:01:00", "frame 30 does not exist at 25"),
    ("01:00:01:00", "01:00:00:10", "is after source out"),
], ids=["99h", "frame30at25", "in-after-out"])
def test_impossible_timecodes_are_invalid_with_their_line(reelfs, archive, tmp_path, src_in, src_out, why):
    lines = ["TITLE: BAD", "001  A001C003 V     C        01:00:00:10 01:00:00:20 00:00:00:00 00:00:00:10",
             "* FROM CLIP NAME: A001C003_231124_R1AB.mov",
             f"002  A001C003 V     C        {src_in} {src_out} 00:00:00:10 00:00:00:20"]
    p, rep, _ = extract(reelfs, archive, tmp_path, "edl", lines)
    assert p.returncode == 3, p.stdout + p.stderr
    x = pull_of(rep, "event 2")
    assert x["status"] == "invalid", x
    assert x["reason"].startswith("line 4: ") and why in x["reason"], x["reason"]
    assert rep["invalid"] == 1 and rep["missing"] == 0
    assert pull_of(rep, "event 1")["status"] == "extracted"
    assert "invalid" in p.stdout


@pytest.mark.parametrize("text,why", [
    ("{\"OTIO_SCHEMA\": \"Timeline.1\", ", "not OTIO JSON"),
    ("[]", "the top level is an array"),
    ("\x00\x01garbage", "not OTIO JSON"),
], ids=["bad-json", "array", "binary"])
def test_malformed_otio_is_an_error_with_the_reason(reelfs, archive, tmp_path, text, why):
    p, _, src = extract(reelfs, archive, tmp_path, "otio", text)
    assert p.returncode != 0
    assert f"cannot read {src} as an OTIO timeline" in p.stderr and why in p.stderr, p.stderr


def otio(clips):
    def rt(v, r):
        return {"OTIO_SCHEMA": "RationalTime.1", "rate": r, "value": v}

    def tr(start, dur, rate):
        return {"OTIO_SCHEMA": "TimeRange.1", "start_time": rt(start, rate), "duration": rt(dur, rate)}

    children = []
    for name, url, source_range, available in clips:
        children.append({
            "OTIO_SCHEMA": "Clip.1", "name": name, "metadata": {}, "effects": [], "markers": [],
            "source_range": source_range and tr(*source_range),
            "media_reference": {"OTIO_SCHEMA": "ExternalReference.1", "target_url": url, "metadata": {},
                                "available_range": available and tr(*available)}})
    return {"OTIO_SCHEMA": "Timeline.1", "name": "pull", "metadata": {}, "global_start_time": None,
            "tracks": {"OTIO_SCHEMA": "Stack.1", "name": "tracks", "metadata": {}, "source_range": None,
                       "children": [{"OTIO_SCHEMA": "Track.1", "name": "V1", "kind": "Video",
                                     "metadata": {}, "source_range": None, "children": children}]}}


@pytest.mark.parametrize("rate", [0, -25], ids=["zero", "negative"])
def test_otio_rate_zero_or_negative_is_refused_with_the_reason(reelfs, archive, tmp_path, rate):
    text = json.dumps(otio([("A001C003_231124_R1AB", "file:///card/A001C003_231124_R1AB.mov",
                             (START + 10, 10, rate), None)]))
    p, rep, _ = extract(reelfs, archive, tmp_path, "otio", text)
    assert p.returncode != 0
    x = rep["pulls"][0]
    assert x["status"] == "invalid" and "positive number of frames per second" in x["reason"], x
    assert "invalid" in p.stdout


# ---- EDL and OTIO as the upstream adapter reads them ----------------------------------

def test_ax_event_is_matched_by_its_clip_name(reelfs, archive, card, tmp_path):
    lines = ["TITLE: Premiere_Example",
             "001  AX       V     C        01:00:00:05 01:00:00:15 00:59:53:11 00:59:53:21",
             "* FROM CLIP NAME:  A001C003_231124_R1AB.mov",
             "002  AX       V     C        01:00:00:05 01:00:00:15 00:59:53:21 00:59:54:06"]
    p, rep, _ = extract(reelfs, archive, tmp_path, "edl", lines)
    x = pull_of(rep, "event 1")
    assert x["status"] == "extracted" and x["clip"] == GOOD, x
    assert frame_hashes(x["output"]) == frame_hashes(card[1])[5:15]
    # an AX event that names nothing is still aux: nothing to pull
    assert pull_of(rep, "event 2")["status"] == "skipped"
    assert p.returncode == 0, p.stdout + p.stderr


def test_from_clip_name_without_a_star_is_read(reelfs, archive, tmp_path):
    lines = ["001  AX       V     C        01:00:00:05 01:00:00:15 00:00:00:00 00:00:00:10",
             "FROM CLIP NAME:  A001C003_231124_R1AB.mov"]
    p, rep, _ = extract(reelfs, archive, tmp_path, "edl", lines)
    assert p.returncode == 0, p.stdout + p.stderr
    assert rep["warnings"] == []
    assert pull_of(rep, "event 1")["clip"] == GOOD


def test_a_transition_whose_event_id_does_not_match_is_invalid(reelfs, archive, tmp_path):
    lines = ["TITLE: dissolve test", "FCM: NON-DROP FRAME",
             "001  A001C003 V     C        01:00:00:05 01:00:00:14 01:00:00:00 01:00:00:09",
             "* FROM CLIP NAME:  A001C003_231124_R1AB.mov",
             "001  A001C003 V     C        01:00:00:14 01:00:00:14 01:00:00:09 01:00:00:09",
             "002  A001C003 V     D    010 01:00:01:08 01:00:01:18 01:00:00:09 01:00:00:19",
             "* FROM CLIP NAME:  A001C003_231124_R1AB.mov"]
    p, rep, _ = extract(reelfs, archive, tmp_path, "edl", lines)
    assert p.returncode == 3
    bad = [x for x in rep["pulls"] if x["status"] == "invalid"]
    assert len(bad) == 1 and bad[0]["reason"].startswith("line 5: "), rep["pulls"]
    assert "transition and event id mismatch" in bad[0]["reason"]


def test_frame_label_beyond_the_rate_is_invalid(reelfs, archive, tmp_path):
    lines = ["001  A001C003 V     C        01:00:01:25 01:00:01:30 00:00:00:00 00:00:00:05",
             "* FROM CLIP NAME:  A001C003_231124_R1AB.mov"]
    p, rep, _ = extract(reelfs, archive, tmp_path, "edl", lines)
    assert p.returncode == 3
    x = pull_of(rep, "event 1")
    assert x["status"] == "invalid" and "frame 25 does not exist at 25" in x["reason"], x


def test_frame_number_cut_points(reelfs, archive, card, tmp_path):
    lines = [f"001  A001C003 V     C        {START + 10} {START + 20} 0 10",
             "* FROM CLIP NAME:  A001C003_231124_R1AB.mov"]
    p, rep, _ = extract(reelfs, archive, tmp_path, "edl", lines)
    assert p.returncode == 0, p.stdout + p.stderr
    x = pull_of(rep, "event 1")
    assert (x["src_in"], x["src_out"], x["first_tc"]) == (label(10), label(20), label(10))
    assert frame_hashes(x["output"]) == frame_hashes(card[1])[10:20]


def test_otio_clip_without_source_range_uses_the_available_range(reelfs, archive, card, tmp_path):
    text = json.dumps(otio([("shot 010", "file:///card/Day01/A001C003_231124_R1AB.mov", None,
                             (START + 20, 12, FPS))]))
    p, rep, _ = extract(reelfs, archive, tmp_path, "otio", text)
    assert p.returncode == 0, p.stdout + p.stderr
    x = rep["pulls"][0]
    assert x["clip"] == GOOD and (x["src_in"], x["src_out"]) == (label(20), label(32)), x
    assert frame_hashes(x["output"]) == frame_hashes(card[1])[20:32]


def test_otio_with_inf_and_nan_literals_is_read(reelfs, archive, card, tmp_path):
    text = json.dumps(otio([("A001C003_231124_R1AB", "file:///card/Day01/A001C003_231124_R1AB.mov",
                             (START + 2, 8, FPS), None)]))
    # the literals OpenTimelineIO writes for non-finite floats (json.dumps writes
    # Infinity/NaN; OTIO's own writer also writes Inf)
    text = text.replace('"metadata": {}', '"metadata": {"a": Inf, "b": -Infinity, "c": NaN, "d": [-Inf]}', 1)
    assert "Inf," in text
    p, rep, _ = extract(reelfs, archive, tmp_path, "otio", text)
    assert p.returncode == 0, p.stdout + p.stderr
    x = rep["pulls"][0]
    assert x["status"] == "extracted" and x["clip"] == GOOD, x
    assert frame_hashes(x["output"]) == frame_hashes(card[1])[2:10]


def test_generators_and_bars_have_nothing_to_pull(reelfs, archive, tmp_path):
    doc = otio([("A001C003_231124_R1AB", "file:///card/Day01/A001C003_231124_R1AB.mov",
                 (START + 2, 8, FPS), None)])
    track = doc["tracks"]["children"][0]["children"]
    track.append({"OTIO_SCHEMA": "Clip.1", "name": "bars", "metadata": {},
                  "source_range": {"OTIO_SCHEMA": "TimeRange.1",
                                   "start_time": {"OTIO_SCHEMA": "RationalTime.1", "rate": FPS, "value": 0},
                                   "duration": {"OTIO_SCHEMA": "RationalTime.1", "rate": FPS, "value": 25}},
                  "media_reference": {"OTIO_SCHEMA": "GeneratorReference.1", "generator_kind": "SMPTEBars",
                                      "parameters": {}, "metadata": {}, "available_range": None}})
    p, rep, _ = extract(reelfs, archive, tmp_path, "otio", json.dumps(doc))
    assert p.returncode == 0, p.stdout + p.stderr
    assert [x["status"] for x in rep["pulls"]] == ["extracted", "skipped"]
    lines = ["001  BARS     V     C        00:00:00:00 00:00:01:00 00:00:00:00 00:00:01:00"]
    p, rep, _ = extract(reelfs, archive, tmp_path, "edl", lines, name="bars")
    assert p.returncode == 0 and pull_of(rep, "event 1")["status"] == "skipped", p.stdout
