"""reelfs.Timecode: SMPTE arithmetic from the crate's timecode module, checked
against known drop-frame facts and against the CLI's own arithmetic (the first
frame of a slice with handles)."""

from fractions import Fraction

import pytest

import reelfs
from reelfs import Timecode

from conftest import DF_CLIP, PRORES


def test_drop_frame_arithmetic_crosses_the_skipped_labels():
    tc = Timecode("00:59:59;28", rate="30000/1001") + 4
    assert str(tc) == "01:00:00;02" and tc.drop_frame
    assert tc.frames() == 107892 + 2  # 107892 frames per DF hour
    assert str(Timecode("00:00:59;29", rate="29.97 DF") + 1) == "00:01:00;02"
    assert str(Timecode("00:09:59;29", rate="29.97 DF") + 1) == "00:10:00;00"
    assert Timecode("00:10:00;00", rate="29.97") - Timecode("00:00:00;00", rate="29.97") == 17982
    assert str(Timecode("00:00:59;59", rate="59.94 DF") + 1) == "00:01:00;04"


def test_a_label_drop_frame_skips_is_an_error_not_rounded():
    with pytest.raises(reelfs.InvalidTimecode) as e:
        Timecode("00:01:00;00", rate="29.97")
    assert "00:01:00;02" in str(e.value)
    assert isinstance(e.value, reelfs.Error)
    with pytest.raises(reelfs.InvalidTimecode):
        Timecode("01:00:00:25", rate=25)
    with pytest.raises(reelfs.InvalidTimecode):
        Timecode("01:00:00;00", rate=25)
    with pytest.raises(reelfs.InvalidTimecode):
        Timecode("bogus", rate=24)
    with pytest.raises(reelfs.InvalidTimecode):
        Timecode("01:00:00:00", rate="12.5")


def test_rates_in_every_spelling():
    for rate in ("23.976", "24000/1001", Fraction(24000, 1001), 23.976):
        t = Timecode("01:00:00:00", rate=rate)
        assert t.rate == Fraction(24000, 1001) and t.fps == 24 and not t.drop_frame
        assert t.frames() == 86400
    assert Timecode("01:00:00:00", rate=25).seconds() == 3600
    assert Timecode("00:00:01:00", rate="29.97 NDF").seconds() == Fraction(1001, 1000)
    assert Timecode("01:00:00:00", rate="29.97", drop_frame=True).drop_frame
    with pytest.raises(reelfs.InvalidTimecode):
        Timecode("01:00:00;00", rate="29.97", drop_frame=False)
    with pytest.raises(TypeError):
        Timecode("01:00:00:00", rate=object())


def test_comparisons_hash_and_subtraction():
    a = Timecode("01:00:00:00", rate=24)
    b = a + 10
    assert a < b and b > a and a <= a and a != b and a == Timecode("01:00:00:00", rate="24")
    assert b - a == 10 and isinstance(b - 3, Timecode) and str(b - 10) == "01:00:00:00"
    assert 5 + a == a + 5
    assert len({a, Timecode.from_frames(86400, 24), b}) == 2
    with pytest.raises(TypeError):
        _ = a < Timecode("01:00:00:00", rate=25)
    with pytest.raises(reelfs.InvalidTimecode):
        _ = a - Timecode("01:00:00:00", rate=25)
    assert a != "01:00:00:00"
    # DF and NDF count the same frames: the difference is defined, order is not.
    df, ndf = Timecode("00:10:00;00", rate="29.97 DF"), Timecode("00:10:00:00", rate="29.97")
    assert ndf - df == 18000 - 17982
    assert df.with_drop_frame(False).frames() == df.frames()
    assert repr(df) == "reelfs.Timecode('00:10:00;00', rate='29.97 DF')"
    assert eval(repr(df), {"reelfs": reelfs}) == df


@pytest.mark.parametrize("clip", [PRORES, DF_CLIP])
def test_slice_first_frame_is_in_point_minus_handles_as_the_cli_counts(day01, cli, clip):
    path = f"main/Day01/A001/{clip}"
    start = day01.info(path).timecode
    assert start is not None
    in_tc = start + 20
    out_tc = in_tc + 10
    spec = f"{path}@{in_tc}-{out_tc}+8"
    plan = cli.json("slice", day01.path, spec)
    assert plan["handles_before"] == 8
    assert plan["start_tc"] == str(in_tc - 8)
    assert plan["in_tc"] == str(in_tc) and plan["out_tc"] == str(out_tc)
    assert plan["first_frame"] == (in_tc - 8) - start
    assert plan["end_frame"] - plan["first_frame"] == (out_tc - in_tc) + plan["handles_before"] + plan["handles_after"]
    assert day01.slice(path, in_tc, out_tc, handles=8).to_dict() == plan
