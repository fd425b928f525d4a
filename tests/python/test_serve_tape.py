"""`reelfs.serve`, `Archive.share` and the tape calls: the server run by this
process (a real HTTP server on loopback, fetched with urllib), signed links
checked by that server, and plans written to a folder standing in for an LTFS
mount, then read back and verified. Every result's `to_dict()` is compared with
what the CLI's `--json` prints for the same archive."""

import hashlib
import os
import re
import shutil
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import reelfs
from conftest import PRORES

WAV = "D004_bwf.wav"


def fetch(url):
    """(status, body) of a GET; an HTTP error status is returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture
def shot(tmp_path, media_dir):
    """A fresh archive with a clip and a WAV in main/Day01/A001 (the tape calls write to its catalog)."""
    a = reelfs.Archive.init(tmp_path / "archive")
    card = tmp_path / "A001"
    card.mkdir()
    for name in (PRORES, WAV):
        shutil.copy2(media_dir / name, card / name)
    a.ingest([card], to="Day01", message="Day 01")
    return a, card


@pytest.fixture
def key_file(tmp_path):
    k = tmp_path / "token.key"
    k.write_bytes(os.urandom(32))
    k.chmod(0o600)
    return k


# ---- serve ---------------------------------------------------------------------------

def test_a_served_file_is_byte_identical_and_the_server_stops_after_the_block(shot):
    a, card = shot
    with reelfs.serve(a, listen="127.0.0.1:0") as srv:
        assert srv.running and re.fullmatch(r"http://127\.0\.0\.1:\d+", srv.url), srv.url
        status, body = fetch(f"{srv.url}/main/Day01/A001/{PRORES}")
        assert status == 200 and body == (card / PRORES).read_bytes()
        # A byte range, as a player asks for it.
        req = urllib.request.Request(f"{srv.url}/main/Day01/A001/{WAV}", headers={"Range": "bytes=100-199"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 206 and r.read() == (card / WAV).read_bytes()[100:200]
        assert fetch(f"{srv.url}/main/Day01/A001/nope.mov")[0] == 404
        host, port = srv.address.rsplit(":", 1)
    assert not srv.running
    # Stopped: nothing listens on the port any more.
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=5).close()


def test_the_server_stops_when_the_block_raises(shot):
    a, _ = shot
    srv = reelfs.serve(a, listen="127.0.0.1:0")
    with pytest.raises(RuntimeError, match="boom"):
        with srv:
            addr = srv.address
            assert fetch(f"http://{addr}/main/")[0] == 200
            raise RuntimeError("boom")
    assert not srv.running
    host, port = addr.rsplit(":", 1)
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=5).close()
    with pytest.raises(reelfs.InvalidRequest, match="not running"):
        srv.address


def test_serve_refuses_a_taken_address_a_bad_one_and_a_short_key(shot, tmp_path):
    a, _ = shot
    with reelfs.serve(a, listen="127.0.0.1:0") as srv:
        with pytest.raises(reelfs.InvalidRequest, match="cannot listen on .*pick another address"):
            reelfs.serve(a, listen=srv.address).start()
    with pytest.raises(reelfs.InvalidRequest, match="not an address.*127.0.0.1:0"):
        reelfs.serve(a, listen="localhost").start()
    short = tmp_path / "short.key"
    short.write_bytes(b"abc")
    with pytest.raises(reelfs.InvalidRequest, match="at least 16"):
        reelfs.serve(a, listen="127.0.0.1:0", token_key=short).start()
    with pytest.raises(reelfs.NotAnArchive):
        reelfs.serve(tmp_path, listen="127.0.0.1:0").start()


# ---- share ---------------------------------------------------------------------------

def test_a_signed_link_works_and_an_altered_one_is_refused(shot, key_file, cli):
    a, card = shot
    path = f"main/Day01/A001/{WAV}"
    with reelfs.serve(a, listen="127.0.0.1:0", token_key=key_file) as srv:
        # Unsigned: refused, and the answer says how to get a link.
        status, body = fetch(f"{srv.url}/{path}")
        assert status == 403 and b"reelfs share" in body
        s = a.share(path, key=key_file, expires="1h", base_url=srv)
        assert isinstance(s, reelfs.Share) and str(s) == s.url and s.kind == "file" and s.path == path
        assert s.url.startswith(f"{srv.url}/main/Day01/A001/") and "sig=" in s.url
        status, body = fetch(s.url)
        assert status == 200 and body == (card / WAV).read_bytes()
        # Another file with this file's signature, or a later expiry: refused.
        assert fetch(s.url.replace(WAV, PRORES))[0] == 403
        later = re.sub(r"expires=(\d+)", lambda m: f"expires={int(m.group(1)) + 1000}", s.url)
        assert fetch(later)[0] == 403
        forged = re.sub(r"sig=([0-9a-f])", lambda m: "sig=" + ("1" if m.group(1) == "0" else "0"), s.url)
        assert forged != s.url and fetch(forged)[0] == 403
        # The same link as the CLI's (the expiry is each call's own clock).
        c = cli.json("share", a.path, path, "--token-key", key_file, "--expires", "1h", "--base-url", srv.url)
        d = s.to_dict()
        assert {k: d[k] for k in ("path", "kind")} == {k: c[k] for k in ("path", "kind")}
        assert set(d) == set(c) and fetch(c["url"]) == (200, (card / WAV).read_bytes())


def test_share_refuses_a_missing_path_a_bad_expiry_and_a_bad_base_url(shot, key_file):
    a, _ = shot
    with pytest.raises(reelfs.InvalidRequest, match="nope.mov"):
        a.share("main/Day01/A001/nope.mov", key=key_file)
    with pytest.raises(reelfs.InvalidRequest, match="unknown unit 'y'"):
        a.share(f"main/Day01/A001/{WAV}", key=key_file, expires="3y")
    with pytest.raises(reelfs.InvalidRequest, match="must start with http"):
        a.share(f"main/Day01/A001/{WAV}", key=key_file, base_url="ftp://example.com")
    # Seconds as an int work too.
    assert a.share(f"main/Day01/A001/{WAV}", key=key_file, expires=90).kind == "file"


# ---- tape ----------------------------------------------------------------------------

def test_a_plan_written_to_an_ltfs_folder_is_verified_and_matches_the_cli(shot, cli, tmp_path):
    a, card = shot
    plan = a.tape_plan("main/Day01", copies=1, capacity=50 << 20, name="day01")
    assert isinstance(plan, reelfs.TapePlan) and plan.name == "day01" and plan.files == 2
    (tape,) = plan.tapes
    assert re.fullmatch(r"[A-Z]\d{5}L8", tape.barcode) and tape.files == 2
    mnt = tmp_path / "ltfs"  # a folder standing in for the volume an LTFS driver mounts
    mnt.mkdir()
    events = []
    out = a.tape_write(plan.name, tape.barcode, ltfs_mount=mnt, verify=True, progress=events.append)
    assert out.ok and out.write.complete and len(out.write.written) == 2 and events
    assert out.verify is not None and out.verify.ok and out.verify.verified == 2
    for name in (PRORES, WAV):
        on_tape = mnt / "Day01" / "A001" / name
        assert on_tape.read_bytes() == (card / name).read_bytes()
    rep = a.tape_verify(tape.barcode, ltfs_mount=mnt)
    assert rep.ok and rep.verified == 2 and rep.mismatches == []
    # ls, where: the CLI's --json exactly.
    assert a.tape_ls().to_dict() == cli.json("tape", "ls", a.path)
    one = a.tape_ls(tape.barcode)
    assert one.kind == "files" and one.cartridge.verified == 2 and {f.state for f in one.files} == {"verified"}
    assert one.to_dict() == cli.json("tape", "ls", a.path, "--tape", tape.barcode)
    where = a.tape_where(f"main/Day01/A001/{WAV}")
    assert [(c.barcode, c.state) for c in where.copies] == [(tape.barcode, "verified")]
    assert where.to_dict() == cli.json("tape", "where", a.path, f"main/Day01/A001/{WAV}")
    # Export: the catalog files of the plan, in a folder of their own.
    exp = a.tape_export(plan.name, tmp_path / "export")
    assert exp.plan == "day01" and exp.files and all(os.path.isfile(f) for f in exp.files)


def test_verify_names_a_changed_file_on_the_volume(shot, tmp_path):
    a, card = shot
    plan = a.tape_plan(f"main/Day01/A001/{WAV}", copies=1, capacity=20 << 20)
    barcode = plan.tapes[0].barcode
    mnt = tmp_path / "ltfs"
    mnt.mkdir()
    assert a.tape_write(plan.name, barcode, ltfs_mount=mnt).ok
    victim = mnt / "Day01" / "A001" / WAV
    data = bytearray(victim.read_bytes())
    data[1000] ^= 0x01
    victim.write_bytes(bytes(data))
    rep = a.tape_verify(barcode, ltfs_mount=mnt)
    assert not rep.ok
    (m,) = rep.mismatches
    assert m.tape_path == f"Day01/A001/{WAV}" and m.requeued_to  # a fresh copy is queued elsewhere
    states = {c.state for c in a.tape_where(f"main/Day01/A001/{WAV}").copies}
    assert states == {"bad", "queued"}
    # The archive's copy is untouched.
    with a.open(f"main/Day01/A001/{WAV}") as fh:
        assert hashlib.sha256(fh.read()).digest() == hashlib.sha256((card / WAV).read_bytes()).digest()


def test_tape_calls_refuse_bad_input_with_what_to_do(shot, tmp_path):
    a, _ = shot
    plan = a.tape_plan("main/Day01", copies=1, capacity=50 << 20)
    barcode = plan.tapes[0].barcode
    with pytest.raises(reelfs.InvalidRequest, match="ltfs_mount=DIR"):
        a.tape_write(plan.name, barcode)
    with pytest.raises(reelfs.InvalidRequest, match="exactly one"):
        a.tape_write(plan.name, barcode, ltfs_mount=tmp_path, device=tmp_path)
    with pytest.raises(reelfs.NotFound):
        a.tape_write("no-such-plan", barcode, ltfs_mount=tmp_path)
    with pytest.raises(reelfs.Error, match="give --ltfs-mount the folder"):
        a.tape_write(plan.name, barcode, ltfs_mount=tmp_path / "missing")
    with pytest.raises(reelfs.Error, match="LTO-99"):
        a.tape_plan("main/Day01", generation="LTO-99")
    with pytest.raises(reelfs.NotFound):
        a.tape_plan("main/NoSuchFolder")
    # Nothing was written anywhere by the refused calls.
    assert not (tmp_path / "missing").exists()
    assert [c.state for c in a.tape_ls().cartridges] == ["planned"]


def test_readme_serve_share_and_tape_example_runs(tmp_path, media_dir, monkeypatch, capsys):
    """The README's second Python example (serve, share, tape) runs as written,
    its paths moved into a temporary folder."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("\n## Python\n"):]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[1]
    a = reelfs.Archive.init(tmp_path / "archive")
    a.ingest([media_dir / PRORES], to="Day01")
    for fixed, mine in (("/tmp/demo-archive", tmp_path / "archive"), ("/tmp/demo-token.key", tmp_path / "token.key"),
                        ("/tmp/ltfs-A", tmp_path / "ltfs-A")):
        assert fixed in code
        code = code.replace(fixed, str(mine))
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["body"] == (media_dir / PRORES).read_bytes()
    assert capsys.readouterr().out.strip() == "True verified"
    assert (tmp_path / "ltfs-A" / "Day01" / PRORES).read_bytes() == scope["body"]
