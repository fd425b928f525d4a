"""(The coverage work of issue 17: CLI behaviour no acceptance test checked.)
Asking a command for the wrong kind of thing (a folder where a clip is meant,
several items into a file, a clip with no preview) is refused with a message
that names the path and what to run instead; nothing is written and the
archive still checks."""

import shutil

import pytest


@pytest.fixture
def archive(reelfs, media_dir, tmp_path):
    card = tmp_path / "A001"
    card.mkdir()
    shutil.copy(media_dir / "C003C001_h264_25p.mov", card / "clip.mov")
    shutil.copy(media_dir / "D004_bwf.wav", card / "sound.wav")
    path = tmp_path / "archive"
    reelfs.ok("init", path)
    reelfs.ok("ingest", path, card, "--to", "Day01")
    return path


def refused(reelfs, *args, says):
    p = reelfs(*args)
    assert p.returncode != 0, p.stdout
    for s in [says] if isinstance(says, str) else says:
        assert s in p.stderr, p.stderr
    assert "panicked" not in p.stderr
    return p


def test_info_of_a_folder_without_an_image_sequence_says_to_list_it(reelfs, archive):
    refused(reelfs, "info", archive, "main/Day01/A001",
            says=["main/Day01/A001 is a folder with no image sequence", f"`reelfs ls {archive} main/Day01/A001` lists it"])


def test_cat_of_a_folder_says_to_list_it_and_writes_nothing(reelfs, archive):
    p = refused(reelfs, "cat", archive, "main/Day01/A001/", says="is a folder, not a file; `reelfs ls` lists a folder")
    assert p.stdout == ""


def test_restoring_several_items_into_a_file_is_refused_and_the_file_kept(reelfs, archive, tmp_path):
    dest = tmp_path / "notes.txt"
    dest.write_bytes(b"keep me")
    refused(reelfs, "restore", archive, "main/Day01/A001/clip.mov", "main/Day01/A001/sound.wav", dest,
            says=[str(dest), "not a folder; to restore several items give an existing folder"])
    assert dest.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["A001", "archive", "notes.txt"])


def test_hls_refuses_a_folder_and_a_clip_without_previews(reelfs, archive, tmp_path):
    out = tmp_path / "hls"
    refused(reelfs, "hls", archive, "main/Day01/A001", out,
            says="main/Day01/A001 is a folder; give a clip (BRANCH/PATH/clip.mov)")
    refused(reelfs, "hls", archive, "main/Day01/A001/clip.mov", out,
            says=["main/Day01/A001/clip.mov has no preview proxy to stream",
                  f"`reelfs proxy {archive} main/Day01/A001/clip.mov`"])
    assert not out.exists()
    reelfs.check_deep(archive)
