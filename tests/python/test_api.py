"""The Python API against the same archive as the CLI: every call, its errors,
and `to_dict()` equal to `reelfs … --json`."""

import ast
import fcntl
import io
import os
import shutil
from fractions import Fraction
from pathlib import Path

import pytest

import reelfs
from reelfs import _reelfs

from conftest import DF_CLIP, PRORES

CLIP = f"main/Day01/A001/{PRORES}"


def test_version_is_the_crates(tmp_path):
    cargo = (Path(__file__).resolve().parents[2] / "Cargo.toml").read_text()
    version = next(l.split('"')[1] for l in cargo.splitlines() if l.startswith("version"))
    assert reelfs.__version__ == version


def test_stubs_name_what_the_native_module_has():
    stub = ast.parse((Path(reelfs.__file__).parent / "_reelfs.pyi").read_text())
    declared = {n.name: n for n in stub.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    declared.update({t.target.id: t for t in stub.body if isinstance(t, ast.AnnAssign)})
    public = {n for n in dir(_reelfs) if not n.startswith("_")} | {"__version__"}
    assert set(declared) - {"__version__"} == public - {"__version__"}
    for name, node in declared.items():
        if isinstance(node, ast.ClassDef) and not issubclass(getattr(_reelfs, name), Exception):
            methods = {m.name for m in node.body if isinstance(m, ast.FunctionDef)} - {"__new__", "__init__"}
            real = {m for m in dir(getattr(_reelfs, name)) if not m.startswith("_")}
            assert {m for m in methods if not m.startswith("_")} == real, name
    assert (Path(reelfs.__file__).parent / "py.typed").exists()


def test_init_then_open_and_the_errors_of_both(tmp_path, cli):
    a = reelfs.Archive.init(tmp_path / "a")
    assert reelfs.Archive(tmp_path / "a").path == tmp_path / "a"
    assert [b.to_dict() for b in a.ls("")] == cli.json("ls", tmp_path / "a")
    with pytest.raises(reelfs.AlreadyExists) as e:
        reelfs.Archive.init(tmp_path / "a")
    assert e.value.path == str(tmp_path / "a") and "choose a new directory" in str(e.value)
    (tmp_path / "plain").mkdir()
    with pytest.raises(reelfs.NotAnArchive) as e:
        reelfs.Archive(tmp_path / "plain")
    assert e.value.path == str(tmp_path / "plain") and "reelfs init" in str(e.value)
    assert isinstance(e.value, reelfs.Error)


def test_ingest_reports_progress_and_matches_the_cli(tmp_path, media_dir, cli):
    card = tmp_path / "A001"
    card.mkdir()
    shutil.copy2(media_dir / PRORES, card / PRORES)
    a = reelfs.Archive.init(tmp_path / "py")
    seen = []
    rep = a.ingest([card], to="Day01", message="Day 01", progress=lambda p: seen.append(p))
    assert rep.files == 1 and rep.failed == [] and rep.commit
    assert any(p.bytes_done for p in seen)
    done = max(p.bytes_done for p in seen)
    assert done == rep.bytes_read == (card / PRORES).stat().st_size
    assert seen[-1].finished

    cli.run("init", tmp_path / "cli")
    by_cli = cli.json("ingest", tmp_path / "cli", card, "--to", "Day01", "-m", "Day 01")
    mine = rep.to_dict()
    assert mine.keys() == by_cli.keys()
    # The commit id covers the commit's time, and chunk counts follow each archive's
    # own chunker seed (reelfs.toml); everything else is the same.
    differ = {"commit", "chunks_new", "bytes_new_stored"}
    assert {k: v for k, v in mine.items() if k not in differ} == {k: v for k, v in by_cli.items() if k not in differ}


def test_ls_and_info_are_typed_and_match_the_cli(day01, cli):
    entries = day01.ls("main/Day01/A001")
    assert [e.to_dict() for e in entries] == cli.json("ls", day01.path, "main/Day01/A001")
    clip = next(e for e in entries if e.name == PRORES)
    assert clip.kind == "file" and clip.frames == 48
    assert clip.rate == Fraction(24000, 1001)
    assert clip.timecode == reelfs.Timecode("01:00:00:00", rate="23.976")

    f = day01.info(CLIP)
    assert f.to_dict() == cli.json("info", day01.path, CLIP)
    assert isinstance(f.rate, Fraction) and f.rate == Fraction(24000, 1001)
    assert isinstance(f.timecode, reelfs.Timecode) and str(f.timecode) == "01:00:00:00"
    assert f.reel == "A001" and f.frames == 48
    assert [t.kind for t in f.tracks].count("audio") == f.media.audio_tracks > 0
    assert f.media.colour.primaries == f.to_dict()["media"]["color_primaries"]

    df = day01.info(f"main/Day01/A001/{DF_CLIP}")
    assert df.timecode.drop_frame and df.media.drop_frame
    assert str(df.timecode) == df.to_dict()["media"]["timecode"]


def test_open_reads_the_original_bytes_and_seeks(day01, media_dir):
    original = (media_dir / PRORES).read_bytes()
    with day01.open(CLIP) as fh:
        assert isinstance(fh, io.RawIOBase) and fh.seekable() and fh.readable()
        assert fh.size == len(original)
        assert fh.read() == original
        assert fh.tell() == len(original)
        assert fh.read(10) == b""
        fh.seek(1_000_003)
        assert fh.read(4096) == original[1_000_003:1_000_003 + 4096]
        assert fh.seek(-100, io.SEEK_END) == len(original) - 100
        assert fh.read() == original[-100:]
        fh.seek(7)
        assert fh.seek(5, io.SEEK_CUR) == 12
        buf = bytearray(64)
        assert fh.readinto(buf) == 64 and bytes(buf) == original[12:76]
    assert fh.closed
    with pytest.raises(ValueError):
        fh.read(1)
    # Buffered, as most callers will wrap it.
    with io.BufferedReader(day01.open(CLIP)) as b:
        assert b.read(100) == original[:100]


def test_open_errors_say_what_is_wrong(day01):
    with pytest.raises(reelfs.NotFound) as e:
        day01.open("main/Day01/A001/nope.mov")
    assert e.value.path == "main/Day01/A001/nope.mov"
    with pytest.raises(reelfs.InvalidRequest) as e:
        day01.open("main/Day01/A001")
    assert "not a file" in str(e.value) and "ls" in str(e.value)
    with pytest.raises(reelfs.NotFound):
        day01.open("nobranch/x")
    with pytest.raises(reelfs.Error):
        day01.open("main/../etc/passwd")


def test_slice_is_the_clis_plan_and_bytes(day01, cli, tmp_path):
    s = day01.slice(CLIP, "01:00:01:00", "01:00:01:12", handles=6)
    spec = f"{CLIP}@01:00:01:00-01:00:01:12+6"
    assert s.spec == spec
    assert s.to_dict() == cli.json("slice", day01.path, spec)
    assert s.plan.frames == 12 + 12  # six handles each side
    out = s.write_to(tmp_path / "py.mov")
    cli.run("slice", day01.path, spec, "-o", tmp_path / "cli.mov")
    assert out.read_bytes() == (tmp_path / "cli.mov").read_bytes()
    assert len(out.read_bytes()) == s.size
    with s.open() as fh:
        assert fh.read() == out.read_bytes()
    # A whole slice name works too, and a bad range says why.
    assert day01.slice(spec).to_dict() == s.to_dict()
    with pytest.raises(reelfs.InvalidTimecode):
        day01.slice(CLIP, "01:00:01:00", "01:00:00:00")
    with pytest.raises(reelfs.InvalidTimecode):
        day01.slice(f"main/Day01/A001/{DF_CLIP}", "00:01:00;00", "00:01:01;00")


def test_restore_writes_byte_identical_files(day01, media_dir, tmp_path, cli):
    (tmp_path / "out").mkdir()  # an existing folder: the item goes inside it, as with the CLI
    rep = day01.restore(["main/Day01/A001"], tmp_path / "out")
    assert rep.failed == [] and rep.files == 3
    for name in (PRORES, DF_CLIP, "D004_bwf.wav"):
        assert (tmp_path / "out" / "A001" / name).read_bytes() == (media_dir / name).read_bytes()
    with pytest.raises(reelfs.NotFound):
        day01.restore("main/Day01/nothing", tmp_path / "out2")


def test_branch_diff_merge_log(tmp_path, media_dir, cli):
    a = reelfs.Archive.init(tmp_path / "a")
    src = tmp_path / "src"
    src.mkdir()
    (src / "notes.txt").write_text("v1\n")
    a.ingest([src], message="first")
    b = a.branch("directors-cut", source="main")
    assert b.name == "directors-cut" and b.head == a.branches()[0].head
    with pytest.raises(reelfs.AlreadyExists):
        a.branch("directors-cut")
    with pytest.raises(reelfs.InvalidRequest):
        a.branch("bad/name")
    shutil.copy2(media_dir / "D004_bwf.wav", src / "D004_bwf.wav")
    a.ingest([src], branch="directors-cut", message="sound")
    d = a.diff("main", "directors-cut")
    assert d.to_dict() == cli.json("diff", a.path, "main", "directors-cut")
    assert [(c.status, c.path) for c in d.changes] == [("added", "src/D004_bwf.wav")]
    m = a.merge("directors-cut", into="main")
    assert m.outcome == "fast-forward"
    assert a.log("main")[0].message == "sound"
    log = a.log("main", path="src/D004_bwf.wav")
    assert [e.to_dict() for e in log] == cli.json("log", a.path, "main", "src/D004_bwf.wav")
    assert log[0].status == "added"

    # Both sides change notes.txt: a conflict, nothing written.
    a.branch("grade", source="main")
    (src / "notes.txt").write_text("main\n")
    a.ingest([src], message="main notes")
    (src / "notes.txt").write_text("grade\n")
    a.ingest([src], branch="grade", message="grade notes")
    head = a.log("main")[0].commit
    with pytest.raises(reelfs.Conflict) as e:
        a.merge("grade", into="main")
    assert e.value.path == "main"
    assert [(c.path, c.kind) for c in e.value.report.conflicts] == [("src/notes.txt", "modify/modify")]
    assert "theirs" in str(e.value)
    assert a.log("main")[0].commit == head
    dry = a.merge("grade", into="main", dry_run=True)
    assert dry.outcome == "conflicts"
    m = a.merge("grade", into="main", theirs=["src/notes.txt"], message="take grade")
    assert m.outcome == "merged" and len(a.log("main")[0].parents) == 2
    with a.open("main/src/notes.txt") as fh:
        assert fh.read() == b"grade\n"
    a.delete_branch("grade")
    assert "grade" not in [b.name for b in a.branches()]


def test_check_stats_gc_match_the_cli(day01, cli):
    rep = day01.check(deep=True)
    assert rep.ok
    assert rep.to_dict() == cli.json("check", day01.path, "--deep")
    assert day01.stats().to_dict() == cli.json("stats", day01.path)
    assert day01.gc(dry_run=True).to_dict() == cli.json("gc", day01.path, "--dry-run")


def test_locked_archive_says_who_holds_it(archive):
    with open(archive.path / "lock", "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            with pytest.raises(reelfs.Locked) as e:
                archive.branch("b")
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
    assert e.value.path == str(archive.path) and "wait for it" in str(e.value)
    archive.branch("b")


def test_damaged_bytes_are_refused_and_check_finds_them(tmp_path):
    a = reelfs.Archive.init(tmp_path / "a")
    src = tmp_path / "noise.bin"
    data = os.urandom(3 << 20)  # incompressible: stored raw
    src.write_bytes(data)
    a.ingest([src])
    packs = sorted((tmp_path / "a" / "packs").rglob("*"), key=lambda p: p.stat().st_size if p.is_file() else 0)
    pack = packs[-1]
    raw = bytearray(pack.read_bytes())
    at = raw.find(data[1 << 20:(1 << 20) + 64])
    assert at > 0
    raw[at] ^= 0xFF
    pack.write_bytes(bytes(raw))
    with pytest.raises(reelfs.Damaged) as e:
        with a.open("main/noise.bin") as fh:
            fh.read()
    assert "check --deep" in str(e.value)
    assert not a.check(deep=True).ok


def test_extract_edl_matches_the_cli(day01, cli, tmp_path):
    edl = tmp_path / "pulls.edl"
    edl.write_text(
        "TITLE: pulls\nFCM: NON-DROP FRAME\n\n"
        "001  A001     V     C        01:00:00:10 01:00:00:20 00:00:00:00 00:00:00:10\n"
        "002  ZZZ999   V     C        01:00:00:10 01:00:00:20 00:00:00:10 00:00:00:20\n"
    )
    rep = day01.extract_edl(edl, out=tmp_path / "py", handles=2, branch="main/Day01")
    assert [p.status for p in rep.pulls] == ["extracted", "missing"]
    assert not rep.complete and rep.report_path == str(tmp_path / "py" / "report.json")
    by_cli = cli.json("extract", day01.path, "--edl", edl, "--handles", "2", "--branch", "main/Day01", "--out", tmp_path / "cli", rc=3)
    mine = rep.to_dict()
    for p in mine["pulls"] + by_cli["pulls"]:
        if p["output"]:
            p["output"] = Path(p["output"]).name
    assert mine == by_cli
    out = tmp_path / "py" / Path(rep.pulls[0].output).name
    assert out.read_bytes() == (tmp_path / "cli" / out.name).read_bytes()

    one = day01.extract(CLIP, "01:00:00:10", reelfs.Timecode("01:00:00:20", rate="23.976"), out=tmp_path / "one")
    assert [p.status for p in one.pulls] == ["extracted"] and one.complete
    cli_one = cli.json("extract", day01.path, CLIP, "--in", "01:00:00:10", "--out-tc", "01:00:00:20", "--out", tmp_path / "cli_one")
    assert Path(one.pulls[0].output).read_bytes() == Path(cli_one["pulls"][0]["output"]).read_bytes()
    with pytest.raises(reelfs.InvalidRequest) as e:
        day01.extract_edl(tmp_path / "py" / "report.json", out=tmp_path / "bad")
    assert "no CMX3600 events" in str(e.value)
    with pytest.raises(reelfs.NotFound):
        day01.extract_edl(tmp_path / "missing.edl", out=tmp_path / "bad2")


def test_proxy_renders_and_info_lists_it(tmp_path, media_dir):
    a = reelfs.Archive.init(tmp_path / "a")
    a.ingest([media_dir / "C003C001_h264_25p.mov"])
    phases = set()
    rep = a.proxy(["main"], profiles=["thumb"], progress=lambda p: phases.add(p.phase))
    assert [r["path"] for r in rep.rendered] == ["main/C003C001_h264_25p.mov"] and not rep.failed
    assert [p.profile for p in a.info("main/C003C001_h264_25p.mov").proxies] == ["thumb"]
    with a.open("main/.proxy/thumb/C003C001_h264_25p.jpg") as fh:
        assert fh.read(3) == b"\xff\xd8\xff"  # a JPEG
    with pytest.raises(reelfs.InvalidRequest):
        a.proxy(["main"], profiles=["bogus"])


def test_tc_set_applies_to_info(tmp_path, media_dir):
    a = reelfs.Archive.init(tmp_path / "a")
    a.ingest([media_dir / "F006_vfr.mp4"])
    rep = a.tc_set("main/F006_vfr.mp4", reelfs.Timecode("14:03:10:00", rate="25"), reel="PHONE1", rate="25")
    assert rep.timecode == "14:03:10:00" and rep.reel == "PHONE1"
    f = a.info("main/F006_vfr.mp4")
    assert f.reel == "PHONE1" and f.media.timecode_source == "user"
    with pytest.raises(reelfs.InvalidTimecode):
        a.tc_set("main/F006_vfr.mp4", "14:03:10:25", rate="25")
    a.tc_clear("main/F006_vfr.mp4")
    assert a.info("main/F006_vfr.mp4").media.timecode_source != "user"


def test_stubs_pass_stubtest_and_the_package_type_checks(tmp_path):
    """mypy's stubtest: every name, signature and class of the extension matches
    _reelfs.pyi; and mypy passes over the package itself (py.typed)."""
    import subprocess
    import sys

    # PEP 800 disjoint bases are new to typing (typing_extensions only); a pyclass
    # cannot be subclassed at all, which @final already says.
    st = subprocess.run([sys.executable, "-m", "mypy.stubtest", "--ignore-disjoint-bases", "reelfs._reelfs"],
                        capture_output=True, text=True, cwd=tmp_path)
    assert st.returncode == 0, st.stdout + st.stderr
    tc = subprocess.run([sys.executable, "-m", "mypy", "-p", "reelfs"], capture_output=True, text=True, cwd=tmp_path)
    assert tc.returncode == 0, tc.stdout + tc.stderr
