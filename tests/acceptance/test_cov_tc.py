"""(The coverage work of issue 17: CLI behaviour no acceptance test checked.)
`reelfs tc set` refuses what cannot be a clip's start timecode, says what to
give instead, and records nothing: the branch log is unchanged and `info` still
shows the file's own timecode."""

import shutil


def commits(reelfs, archive):
    return reelfs.ok("log", archive, "main").stdout.splitlines()


def test_tc_set_refuses_what_is_not_a_clip_head_or_timecode(reelfs, media_dir, tmp_path):
    card = tmp_path / "A001"
    card.mkdir()
    shutil.copy(media_dir / "C003C001_h264_25p.mov", card / "clip.mov")
    shutil.copy(media_dir / "K011_notmedia.bin", card / "notes.bin")
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    reelfs.ok("ingest", archive, card, "--to", "Day01")
    clip = "main/Day01/A001/clip.mov"
    before_log = commits(reelfs, archive)
    before_info = reelfs.ok("info", archive, clip).stdout
    head = reelfs.json("log", archive, "main")[0]["commit"]

    def refused(*args, says):
        p = reelfs("tc", "set", archive, *args)
        assert p.returncode != 0, p.stdout
        assert says in p.stderr, p.stderr
        assert "panicked" not in p.stderr

    refused("main/Day01/A001", "01:00:00:00", says="is a folder; give BRANCH/PATH of a clip")
    refused(f"main@{head[:12]}/Day01/A001/clip.mov", "01:00:00:00",
            says="a timecode is recorded on a branch head, not on an old commit")
    refused("main/Day01/A001/notes.bin", "01:00:00:00",
            says="is not a probed media file (see `reelfs info`)")
    refused(clip, "01:00:00:00", "--reel", " ", says="a reel name must be printable and not empty")
    refused(clip, "01:00:00:00", "--rate", "not-a-rate", says="not-a-rate")
    refused("main/Day01/A001/missing.mov", "01:00:00:00", says="missing.mov")
    # Nothing recorded by any of them.
    assert commits(reelfs, archive) == before_log
    assert reelfs.ok("info", archive, clip).stdout == before_info
    # The clip takes a valid one, and the line printed names the commit that records it.
    out = reelfs.ok("tc", "set", archive, clip, "01:00:00:00", "--reel", "A001", "--rate", "25").stdout
    log = commits(reelfs, archive)
    assert len(log) == len(before_log) + 1
    assert out.startswith(f"{clip}: start timecode 01:00:00:00 recorded (commit ")
    assert log[0].split()[0] in out, (out, log[0])
    assert "A001" in reelfs.ok("info", archive, clip).stdout
