"""Every refusal reaches Python as the exception a pipeline script would catch
(reelfs.NotFound, NotAnArchive, InvalidRequest, InvalidTimecode, ...), carrying
the path it is about and a message that says what to do, the same words the CLI
prints; and nothing is written by a refused call."""

import shutil

import pytest

import reelfs

from conftest import PRORES

CLIP = f"main/Day01/A001/{PRORES}"


def test_an_archive_of_a_newer_format_is_not_opened_and_says_to_upgrade(tmp_path):
    a = reelfs.Archive.init(tmp_path / "a")
    toml = a.path / "reelfs.toml"
    toml.write_text(toml.read_text().replace("format_version = 2", "format_version = 99"))
    with pytest.raises(reelfs.NotAnArchive) as e:
        reelfs.Archive(a.path)
    assert e.value.path == str(a.path)
    assert "format version 99 is newer" in str(e.value) and "upgrade reelfs" in str(e.value)


def test_a_hand_edited_setting_out_of_range_names_the_file(tmp_path, cli):
    a = reelfs.Archive.init(tmp_path / "a")
    toml = a.path / "reelfs.toml"
    toml.write_text(toml.read_text().replace("level = 3", "level = 40"))
    with pytest.raises(reelfs.Error) as e:
        reelfs.Archive(a.path).branches()
    assert e.value.path == str(toml)
    assert "compression.level must be 1..=19" in str(e.value)
    p = cli.run("ls", a.path, rc=1)
    assert "compression.level must be 1..=19" in p.stderr


def test_names_that_do_not_exist_are_not_found_with_the_name(day01, tmp_path):
    with pytest.raises(reelfs.NotFound) as e:
        day01.delete_branch("nosuch")
    assert e.value.path == "nosuch"
    with pytest.raises(reelfs.NotFound) as e:
        day01.ls("nosuch/Day01")
    assert "no branch named 'nosuch'" in str(e.value) and "reelfs branch" in str(e.value)
    with pytest.raises(reelfs.NotFound) as e:
        day01.info("main/Day01/A001/missing.mov")
    assert "missing.mov" in str(e.value)
    with pytest.raises(reelfs.NotFound):
        day01.tape_export("no-such-plan", tmp_path / "export")
    assert not (tmp_path / "export").exists()
    assert [b.name for b in day01.branches()] == ["main"]


def test_timecodes_that_do_not_exist_are_invalid_timecode(day01):
    with pytest.raises(reelfs.InvalidTimecode) as e:
        day01.slice(CLIP, "01:00:00:30", "01:00:01:00")  # 23.976 has frames 0..23
    assert "01:00:00:30" in str(e.value)
    with pytest.raises(reelfs.InvalidTimecode):
        day01.slice(CLIP, "01:00:01:00", "01:00:00:10")  # out before in
    with pytest.raises(reelfs.InvalidTimecode):
        day01.slice(f"{CLIP}@f10-f999999")  # past the clip's end
    with pytest.raises(reelfs.InvalidRequest):
        day01.slice(CLIP, "01:00:00:10")  # in without out


def test_a_clip_call_on_a_folder_or_a_non_clip_is_an_invalid_request(tmp_path, media_dir):
    a = reelfs.Archive.init(tmp_path / "a")
    card = tmp_path / "A001"
    card.mkdir()
    shutil.copy2(media_dir / "K011_notmedia.bin", card / "notes.bin")
    shutil.copy2(media_dir / "C003C001_h264_25p.mov", card / "clip.mov")
    a.ingest([card], to="Day01")
    head = a.log("main")[0].commit
    with pytest.raises(reelfs.InvalidRequest) as e:
        a.tc_set("main/Day01/A001", "01:00:00:00")
    assert "is a folder; give BRANCH/PATH of a clip" in str(e.value)
    with pytest.raises(reelfs.InvalidRequest) as e:
        a.tc_set("main/Day01/A001/notes.bin", "01:00:00:00")
    assert "not a probed media file" in str(e.value)
    with pytest.raises(reelfs.InvalidTimecode):
        a.tc_set("main/Day01/A001/clip.mov", "01:00:00:25")  # 25 fps: frames 0..24
    with pytest.raises(reelfs.InvalidRequest) as e:
        a.tc_clear("main/Day01/A001/clip.mov")
    assert "nothing to clear" in str(e.value)
    with pytest.raises(reelfs.InvalidRequest) as e:
        a.info("main/Day01/A001")
    assert "is a folder with no image sequence" in str(e.value)
    assert a.log("main")[0].commit == head


def test_a_malformed_otio_timeline_is_an_invalid_request_naming_the_file(day01, tmp_path):
    bad = tmp_path / "cut.otio"
    bad.write_text('{"OTIO_SCHEMA": "Timeline.1", ')
    with pytest.raises(reelfs.InvalidRequest) as e:
        day01.extract_otio(bad, out=tmp_path / "pulls")
    assert e.value.path == str(bad)
    assert not (tmp_path / "pulls").exists() or not any((tmp_path / "pulls").iterdir())
