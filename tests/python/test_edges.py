"""Edges of the API a pipeline script meets: unmounting while a file is still
open on the mount, rebuilding a lost catalog, opening what is not a file, rates
without drop-frame, nonsense server options. Each must fail with a message that
says what to do, and lose nothing."""

import os

import pytest

import reelfs
from conftest import PRORES

CLIP = f"main/Day01/A001/{PRORES}"


def _is_mounted(path):
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == str(path) for line in f)


def test_stop_refuses_while_a_file_is_open_and_works_once_it_is_closed(day01, media_dir, tmp_path):
    mp = tmp_path / "mnt"
    mp.mkdir()
    m = reelfs.mount(day01, mp, read_only=True).start()
    try:
        fh = open(mp / CLIP, "rb")
        try:
            with pytest.raises(reelfs.Error) as e:
                m.stop()
            assert e.value.path == str(mp)
            # Still mounted and still serving the open file.
            assert _is_mounted(mp) and fh.read(16) == (media_dir / PRORES).read_bytes()[:16]
        finally:
            fh.close()
        m.stop()
        assert not _is_mounted(mp) and not m.mounted
    finally:
        if _is_mounted(mp):
            os.system(f"fusermount3 -u -z {mp}")


def test_rebuild_catalog_after_the_catalog_is_lost_keeps_every_file(tmp_path, media_dir):
    a = reelfs.Archive.init(tmp_path / "archive")
    a.ingest([media_dir / PRORES], to="Day01", message="Day 01")
    before = [e.to_dict() for e in a.ls("main/Day01")]
    (a.path / "catalog.db").unlink()
    for extra in ("catalog.db-wal", "catalog.db-shm"):
        if (a.path / extra).exists():
            (a.path / extra).unlink()
    rep = a.rebuild_catalog()
    assert rep["commits"] == 1 and rep["branches"] == 1 and rep["damaged_records"] == 0, rep
    assert [e.to_dict() for e in a.ls("main/Day01")] == before
    with a.open(f"main/Day01/{PRORES}") as fh:
        assert fh.read() == (media_dir / PRORES).read_bytes()
    assert a.check(deep=True).ok
    assert a.log("main")[0].message == "Day 01"


def test_open_refuses_a_folder_and_says_to_list_it(day01):
    with pytest.raises(reelfs.InvalidRequest, match="not a file; Archive.ls lists a folder") as e:
        day01.open("main/Day01/A001")
    assert e.value.path == "main/Day01/A001"
    with pytest.raises(reelfs.NotFound):
        day01.open("main/Day01/A001/nope.mov")


def test_drop_frame_only_at_the_rates_that_have_it():
    with pytest.raises(reelfs.InvalidTimecode, match="drop-frame exists at 29.97 and 59.94 only"):
        reelfs.Timecode("01:00:00:00", rate="25", drop_frame=True)
    tc = reelfs.Timecode("01:00:00;00", rate="30000/1001")
    assert tc.drop_frame and tc.rate_name == "29.97 DF"
    assert reelfs.Timecode("01:00:00:00", rate="24000/1001").rate_name == "23.976"


def test_serve_refuses_a_non_positive_idle_timeout(day01):
    for bad in (0, -1, float("nan")):
        with pytest.raises(reelfs.InvalidRequest, match="idle_timeout=.* must be a positive number of seconds"):
            reelfs.serve(day01, listen="127.0.0.1:0", idle_timeout=bad).start()
