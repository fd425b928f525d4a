"""How `reelfs extract` writes a pull (issue 16, extract row).

A zero-copy pull is the slice's new header plus essence bytes of the original.
The essence is taken from the chunks the read-ahead loaded and verified and goes
to the disk around the page cache (O_DIRECT, in aligned 4 MiB blocks), where the
output's filesystem allows it: no kernel copy and no page-cache pages per byte,
which made a pull 0.70x of `cp`; the frames are still exactly the source's."""

import shutil
import subprocess

from test_perfio import resident_bytes, takes_o_direct

MiB = 1 << 20
CLIP = "A001C003_prores_2398.mov"   # 48 frames of ProRes HQ from 01:00:00:00 at 23.976


def framemd5(path, *opts):
    out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", *opts, "-i", str(path), "-map", "0:v", "-f", "framemd5", "-"],
                         capture_output=True, text=True, check=True).stdout
    return [ln.split(",")[-1].strip() for ln in out.splitlines() if ln and not ln.startswith("#")]


def test_extract_writes_the_essence_around_the_page_cache_and_keeps_every_frame(reelfs, tmp_archive, media_dir, tmp_path):
    src = tmp_path / "card"
    src.mkdir()
    shutil.copy(media_dir / CLIP, src / CLIP)
    # Camera ProRes does not compress, but this synthetic clip does (about
    # 1.4x), and which of its chunks pay depends on the archive's random
    # chunker seed: store it raw, as a real original would be, so the test does
    # not pass or fail on the seed.
    toml = tmp_archive / "reelfs.toml"
    toml.write_text(toml.read_text().replace('policy = "auto"', 'policy = "never"'))
    assert 'policy = "never"' in toml.read_text()
    reelfs.ok("ingest", tmp_archive, src)
    out = tmp_path / "pull"
    p = subprocess.run([str(reelfs.binary), "extract", str(tmp_archive), f"main/card/{CLIP}", "--in", "01:00:00:12",
                        "--out-tc", "01:00:01:20", "--out", str(out), "--json"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    pulls = [q for q in out.iterdir() if q.suffix == ".mov"]
    assert len(pulls) == 1, list(out.iterdir())
    size = pulls[0].stat().st_size
    assert size >= 4 * MiB, f"the pull is {size} bytes: too small to show how it was written"
    if takes_o_direct(out):
        cached = resident_bytes(pulls[0])
        assert cached < MiB, f"{cached} of the pull's {size} bytes went through the page cache"
    # Frames 12..43 of the source, byte for byte (ProRes is intra: each frame is its own sample).
    want = framemd5(src / CLIP)[12:44]
    assert framemd5(pulls[0]) == want
