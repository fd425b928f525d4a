"""`reelfs serve`: `GET clip?tc=TC` with `Accept: application/json` answers the
clip's `reelfs info --json` facts plus the frame at TC and the byte range of
its video sample in the original, so a player that seeks by byte lands on that
frame. The byte range is checked against ffprobe's packet table of the file.
"""

import json
import shutil
import subprocess

import pytest
import requests

from test_serve import Server

PRORES = "A001C003_prores_2398.mov"   # intra-only, starts 01:00:00:00 at 23.976
H264 = "C003C002_h264_25p.mp4"        # B-frames (decode order != display order), no tmcd: 00:00:00:00
WAV = "D004_bwf.wav"


@pytest.fixture(scope="module")
def seek_server(tmp_path_factory, reelfs, media_dir):
    root = tmp_path_factory.mktemp("seek")
    card = root / "card"
    card.mkdir()
    for name in (PRORES, H264, WAV):
        shutil.copy2(media_dir / name, card / name)
    archive = root / "archive"
    reelfs.ok("init", archive)
    reelfs.ok("ingest", archive, card, "--to", "Day01")
    s = Server(reelfs, archive, logdir=root)
    yield s, archive, card
    s.stop()


def video_packets_in_display_order(path):
    """(pos, size) of each video packet, sorted by presentation time."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts,pos,size",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    pkts = json.loads(out)["packets"]
    return [(int(p["pos"]), int(p["size"])) for p in sorted(pkts, key=lambda p: int(p["pts"]))]


@pytest.mark.parametrize("name,tc,index", [(PRORES, "01:00:00:10", 10), (H264, "00:00:00:10", 10), (H264, "00:00:00:00", 0)])
def test_tc_with_accept_json_gives_the_frames_byte_range_in_the_original(seek_server, reelfs, name, tc, index):
    s, archive, card = seek_server
    path = f"main/Day01/card/{name}"
    r = requests.get(s.url(path) + f"?tc={tc}", headers={"Accept": "application/json"}, allow_redirects=False)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    got = r.json()
    frame = got.pop("frame")
    assert got == reelfs.json("info", archive, path), "the clip's facts are not those of reelfs info --json"
    assert frame["tc"] == tc and frame["index"] == index
    pos, size = video_packets_in_display_order(card / name)[index]
    assert frame["byte_range"] == {"offset": pos, "length": size}, f"ffprobe puts frame {index} at {pos}+{size}"
    # Those bytes, fetched by range, are the sample's.
    b = requests.get(s.url(path), headers={"Range": f"bytes={pos}-{pos + size - 1}"})
    assert b.status_code == 206 and b.content == (card / name).read_bytes()[pos:pos + size]
    # Without Accept: application/json the same URL still redirects to the slice.
    assert requests.get(s.url(path) + f"?tc={tc}", allow_redirects=False).status_code == 303


def test_tc_with_accept_json_on_audio_says_why_there_is_no_byte_range(seek_server, reelfs):
    s, archive, _ = seek_server
    path = f"main/Day01/card/{WAV}"
    start = reelfs.json("info", archive, path)["media"]["timecode"]   # the BWF's time reference
    r = requests.get(s.url(path) + f"?tc={start}", headers={"Accept": "application/json"}, allow_redirects=False)
    assert r.status_code == 200, r.text
    frame = r.json()["frame"]
    assert frame["index"] == 0 and frame["byte_range"] is None
    assert "QuickTime" in frame["byte_range_error"]


def test_tc_with_accept_json_outside_the_clip_is_400_saying_its_span(seek_server):
    s, _, _ = seek_server
    r = requests.get(s.url(f"main/Day01/card/{PRORES}") + "?tc=02:00:00:00", headers={"Accept": "application/json"},
                     allow_redirects=False)
    assert r.status_code == 400 and "01:00:00:00 to" in r.text, r.text
