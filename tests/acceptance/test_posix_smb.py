"""Finder and Explorer reach the mount over SMB (issue 12): Debian's smbd shares a
reelfs mount with `vfs objects = catia fruit streams_xattr` (what macOS clients
need: named streams such as AFP_AfpInfo kept in user xattrs) on 127.0.0.1 and a
free high port, with a config of its own in a temp folder, and smbclient (a real
SMB client, userspace) lists, reads, writes into a branch, sets and reads back a
named stream, renames and deletes. The smb.conf is the README's block.

Runs as root (the share maps guests to root so it may write the branch)."""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from helpers import Mount, b3, write_random


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SMB_CONF = """[global]
  server role = standalone server
  interfaces = 127.0.0.1
  bind interfaces only = yes
  smb ports = {port}
  disable netbios = yes
  lock directory = {state}/lock
  state directory = {state}/state
  cache directory = {state}/cache
  private dir = {state}/private
  pid directory = {state}/pid
  ncalrpc dir = {state}/ncalrpc
  log file = {state}/log.%m
  map to guest = Bad User
  guest account = root
  load printers = no
  printing = bsd
  printcap name = /dev/null
  # macOS clients: Finder info and resource forks as streams, kept in user xattrs
  vfs objects = catia fruit streams_xattr
  fruit:metadata = stream
  fruit:resource = xattr
  fruit:encoding = native
  ea support = yes
[archive]
  path = {path}
  read only = no
  guest ok = yes
  force user = root
"""


@pytest.fixture
def smb_share(tmp_path):
    """start(path) -> run(*smbclient commands), smbd serving `path` as //127.0.0.1/archive;
    run.stop() ends smbd (before the mount under it goes: a connection open in the mount
    would keep it busy)."""
    for tool in ("smbd", "smbclient"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} not found: run scripts/install-deps (samba, samba-vfs-modules, smbclient)", pytrace=False)
    procs = []

    def start(path):
        state = tmp_path / "smb"
        for d in ("lock", "state", "cache", "private", "pid", "ncalrpc"):
            (state / d).mkdir(parents=True, exist_ok=True)
        port = free_port()
        conf = state / "smb.conf"
        conf.write_text(SMB_CONF.format(port=port, state=state, path=path))
        log = open(state / "smbd.out", "w")
        p = subprocess.Popen(["smbd", "--foreground", "--no-process-group", f"--configfile={conf}", "--debug-stdout", "-d1"],
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(p)
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if p.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"smbd did not start:\n{(state / 'smbd.out').read_text()}", pytrace=False)
            time.sleep(0.1)

        def run(*commands, cwd=None):
            r = subprocess.run(["smbclient", "//127.0.0.1/archive", "-p", str(port), "-N", "-c", "; ".join(commands)],
                               capture_output=True, text=True, cwd=cwd, timeout=120)
            assert r.returncode == 0 and "NT_STATUS" not in r.stdout + r.stderr, \
                f"smbclient {commands} exited {r.returncode}\n{r.stdout}\n{r.stderr}\n{(state / 'smbd.out').read_text()}"
            return r.stdout

        run.stop = lambda: stop(p)
        return run

    yield start
    for p in procs:
        stop(p)


def stop(p):
    """End smbd and the per-connection processes it forked (its own session)."""
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    try:
        os.killpg(p.pid, signal.SIGKILL)  # any child left behind
    except ProcessLookupError:
        pass


def test_a_fruit_share_of_the_mount_lists_reads_writes_and_keeps_streams(reelfs, tmp_archive, tmp_path, smb_share):
    src = tmp_path / "card"
    write_random(src / "A001C001.mov", 40_000)
    reelfs.ok("ingest", tmp_archive, src, "-m", "card")
    work = tmp_path / "client"
    work.mkdir()
    write_random(work / "notes.bin", 5_000)
    write_random(work / "tag.bin", 32)
    with Mount(reelfs, tmp_archive, tmp_path / "mnt") as m:
        run = smb_share(m.mp)
        # The tree connect itself is what failed before (the share needs xattrs).
        listing = run("ls main\\card\\*")
        assert "A001C001.mov" in listing and "40000" in listing, listing
        run("cd main\\card", "get A001C001.mov got.mov", cwd=work)
        assert b3(work / "got.mov") == b3(src / "A001C001.mov")
        # Copy a file into the branch, add a named stream (what Finder's tags are), read it back.
        run("cd main\\card", "put notes.bin notes.bin", "put tag.bin notes.bin:com.apple.metadata_kMDItemUserTags",
            "get notes.bin:com.apple.metadata_kMDItemUserTags tag-back.bin", cwd=work)
        assert (work / "tag-back.bin").read_bytes() == (work / "tag.bin").read_bytes()
        info = run("cd main\\card", "allinfo notes.bin")
        assert "com.apple.metadata_kMDItemUserTags" in info and "32 bytes" in info, info
        assert b3(m.mp / "main" / "card" / "notes.bin") == b3(work / "notes.bin")
        # The stream is a user xattr of the file in the branch.
        assert any("kMDItemUserTags" in n for n in os.listxattr(m.mp / "main" / "card" / "notes.bin")), \
            os.listxattr(m.mp / "main" / "card" / "notes.bin")
        run("cd main\\card", "rename notes.bin renamed.bin")
        info = run("cd main\\card", "allinfo renamed.bin")
        assert "com.apple.metadata_kMDItemUserTags" in info, info
        run("cd main\\card", "put notes.bin scratch.bin", "del scratch.bin", cwd=work)
        listing = run("ls main\\card\\*")
        assert "renamed.bin" in listing and "scratch.bin" not in listing and "notes.bin" not in listing, listing
        run.stop()
        reelfs.ok("commit", tmp_archive, "main", "-m", "from a Mac")
    # Committed with its stream, and restored with it.
    dest = tmp_path / "restored"
    dest.mkdir()
    reelfs.ok("restore", tmp_archive, "main/card", dest)
    got = dest / "card" / "renamed.bin"
    assert b3(got) == b3(work / "notes.bin")
    names = [n for n in os.listxattr(got) if "kMDItemUserTags" in n]
    assert names and os.getxattr(got, names[0]).rstrip(b"\0") == (work / "tag.bin").read_bytes(), names
    reelfs.check_deep(tmp_archive)


def test_a_share_shows_originals_with_times_slices_by_name_and_proxies(reelfs, tmp_archive, tmp_path, smb_share):
    """What an editor browsing the share sees: originals with their sizes and times,
    a slice opened by its `.`-separated name (never listed: `:` is not a legal SMB
    name), the `.proxy` folders, and inode numbers that do not change under Samba
    during the session (Samba's file ids come from them)."""
    card = tmp_path / "card"
    card.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=24", "-t", "3",
                    "-c:v", "mpeg4", "-timecode", "01:00:00:00", str(card / "clip.mov")], check=True, timeout=120)
    reelfs.ok("ingest", tmp_archive, card, "-m", "card")
    reelfs.ok("proxy", tmp_archive, "--profiles", "thumb", timeout=300)
    work = tmp_path / "client"
    work.mkdir()
    with Mount(reelfs, tmp_archive, tmp_path / "mnt") as m:
        folder = m.mp / "main" / "card"
        st = os.stat(folder / "clip.mov")
        ino_before = {p: os.stat(folder / p).st_ino for p in ("clip.mov", ".proxy", ".proxy/thumb/clip.jpg")}
        run = smb_share(m.mp)
        listing = run("ls main\\card\\*")
        line = next((l for l in listing.splitlines() if l.split()[:1] == ["clip.mov"]), None)
        assert line is not None, listing
        assert str(st.st_size) in line.split(), line
        assert time.strftime("%H:%M:%S %Y", time.localtime(st.st_mtime)) in line, (line, st.st_mtime)
        assert "@" not in listing, "slices are opened by name, never listed"
        # A slice by its SMB-legal name: the same bytes as the mount's own slice.
        name = "clip.mov@01.00.00.00-01.00.01.00"
        run("cd main\\card", f"get {name} slice.mov", cwd=work)
        assert b3(work / "slice.mov") == b3(folder / "clip.mov@01:00:00:00-01:00:01:00")
        probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                                "stream=nb_read_frames:stream_tags=timecode", "-of", "json", str(work / "slice.mov")],
                               capture_output=True, text=True, check=True)
        assert '"nb_read_frames": "24"' in probe.stdout and "01:00:00:00" in probe.stdout, probe.stdout
        # The proxies, as Finder's hidden-folder view shows them.
        listing = run("ls main\\card\\.proxy\\thumb\\*")
        assert "clip.jpg" in listing, listing
        run("cd main\\card\\.proxy\\thumb", "get clip.jpg thumb.jpg", cwd=work)
        assert b3(work / "thumb.jpg") == b3(folder / ".proxy" / "thumb" / "clip.jpg")
        run.stop()
        assert {p: os.stat(folder / p).st_ino for p in ino_before} == ino_before
