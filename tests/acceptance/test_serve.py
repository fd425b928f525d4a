"""`reelfs serve`: the archive over HTTP, checked with real clients (curl,
requests, httpx, ffmpeg) on loopback against the bytes of the files ingested.

Every server here listens on 127.0.0.1 port 0 (a free port the kernel picks)
and prints the address it got on its first line of output.
"""

import hashlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from email.parser import BytesParser
from pathlib import Path

import httpx
import pytest
import requests

from helpers import b3, write_random

CLIP = "A001C003_prores_2398.mov"       # ProRes, starts 01:00:00:00 at 23.976
MP4 = "C003C002_h264_25p.mp4"
WAV = "D004_bwf.wav"
MXF = "B002C001_dnxhd_2997df.mxf"
DPX_DIR = "E005_dpx"
SLICE = f"{CLIP}@01:00:00:05-01:00:00:20"


class Server:
    """A `reelfs serve` process; `url(path)` is the URL of a mount path."""

    def __init__(self, reelfs, archive, *flags, logdir=None):
        self.logdir = Path(logdir) if logdir else Path(archive).parent
        self.err_path = self.logdir / f"serve-{os.getpid()}-{time.monotonic_ns()}.log"
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(
            reelfs.argv(["serve", archive, "--listen", "127.0.0.1:0", *flags]),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.err, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if not m:
            self.stop()
            pytest.fail(f"reelfs serve did not start: stdout {line!r}, stderr:\n{self.log()}")
        self.port = int(m.group(1))
        self.base = f"http://127.0.0.1:{self.port}"

    def url(self, path):
        from urllib.parse import quote
        return self.base + quote("/" + path, safe="/:@+")

    def log(self):
        self.err.flush()
        return self.err_path.read_text(errors="replace")

    def rss_kib(self):
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def open_fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def fd_kinds(self):
        """(sockets, other files) open in the server."""
        d = f"/proc/{self.proc.pid}/fd"
        links = []
        for n in os.listdir(d):
            try:
                links.append(os.readlink(f"{d}/{n}"))
            except FileNotFoundError:
                pass
        socks = sum(1 for l in links if l.startswith("socket:"))
        return socks, len(links) - socks

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()


@pytest.fixture(scope="module")
def served_archive(tmp_path_factory, reelfs, media_dir):
    """An archive of a few clips under main/Day01, one more commit on a branch."""
    root = tmp_path_factory.mktemp("serve")
    card = root / "card"
    card.mkdir()
    for name in (CLIP, MP4, WAV, MXF):
        shutil.copy2(media_dir / name, card / name)
    shutil.copytree(media_dir / DPX_DIR, card / DPX_DIR)
    archive = root / "archive"
    reelfs.ok("init", archive)
    reelfs.ok("ingest", archive, card, "--to", "Day01", "-m", "Day 01")
    reelfs.ok("proxy", archive, "main/Day01/card", "--profiles", "thumb")
    return archive, card


@pytest.fixture(scope="module")
def server(served_archive, reelfs):
    archive, _ = served_archive
    s = Server(reelfs, archive, "--cache-size", "64M")
    yield s
    s.stop()


def src(served_archive, name):
    return served_archive[1] / name


def path_of(name):
    return f"main/Day01/card/{name}"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_hash(reelfs, archive, path):
    return reelfs.json("info", archive, path)["content_hash"]


# ---- GET / HEAD of originals ------------------------------------------------------

def test_get_serves_the_original_bytes_with_validators_and_cors(server, served_archive, reelfs):
    archive, _ = served_archive
    r = requests.get(server.url(path_of(CLIP)))
    assert r.status_code == 200, r.text
    assert sha(r.content) == sha(src(served_archive, CLIP).read_bytes())
    h = r.headers
    assert h["Accept-Ranges"] == "bytes"
    assert h["Content-Type"] == "video/quicktime"
    assert int(h["Content-Length"]) == src(served_archive, CLIP).stat().st_size
    assert h["ETag"] == '"%s"' % content_hash(reelfs, archive, path_of(CLIP))
    assert "GMT" in h["Last-Modified"]
    assert h["Access-Control-Allow-Origin"] == "*"
    assert "Content-Range" in h["Access-Control-Expose-Headers"]


def test_head_gives_the_headers_of_get_and_no_body(server):
    g = requests.get(server.url(path_of(CLIP)), stream=True)
    g.close()
    proc = subprocess.run(["curl", "-sS", "-I", server.url(path_of(CLIP))], capture_output=True, text=True, check=True)
    assert proc.stdout.startswith("HTTP/1.1 200")
    head = dict(l.split(": ", 1) for l in proc.stdout.strip().splitlines()[1:] if ": " in l)
    for k in ("etag", "content-length", "content-type", "accept-ranges", "last-modified"):
        assert head[k] == g.headers[k], k
    with httpx.Client() as c:
        r = c.head(server.url(path_of(CLIP)))
        assert r.status_code == 200 and r.content == b""


@pytest.mark.parametrize("name,ctype", [
    (CLIP, "video/quicktime"), (MP4, "video/mp4"), (WAV, "audio/wav"), (MXF, "application/mxf"),
])
def test_content_type_per_kind_of_media(server, name, ctype):
    with httpx.Client() as c:
        r = c.head(server.url(path_of(name)))
    assert r.status_code == 200
    assert r.headers["content-type"] == ctype


def test_dpx_frames_and_jpeg_proxies_have_their_types(server, served_archive):
    with httpx.Client() as c:
        listing = c.get(server.url(path_of(DPX_DIR)), headers={"Accept": "application/json"}).json()
        frame = next(e for e in listing["entries"] if e["name"].endswith(".dpx"))
        r = c.head(server.base + frame["url"])
        assert r.status_code == 200 and r.headers["content-type"] == "image/x-dpx"
        stem = CLIP.rsplit(".", 1)[0]
        r = c.get(server.url(f"main/Day01/card/.proxy/thumb/{stem}.jpg"))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/jpeg"
        assert r.content[:3] == b"\xff\xd8\xff"


# ---- ranges --------------------------------------------------------------------

def test_single_open_and_suffix_ranges(server, served_archive):
    data = src(served_archive, CLIP).read_bytes()
    size = len(data)
    u = server.url(path_of(CLIP))
    for rng, lo, hi in [("0-99", 0, 100), ("1000-", 1000, size), ("-500", size - 500, size),
                        (f"{size - 10}-{size + 1000}", size - 10, size)]:
        r = requests.get(u, headers={"Range": f"bytes={rng}"})
        assert r.status_code == 206, (rng, r.text)
        assert r.content == data[lo:hi], rng
        assert r.headers["Content-Range"] == f"bytes {lo}-{hi - 1}/{size}"
        assert int(r.headers["Content-Length"]) == hi - lo
    # curl's own -r
    out = subprocess.run(["curl", "-sS", "-r", "4096-8191", u], capture_output=True, check=True).stdout
    assert out == data[4096:8192]


def test_multiple_ranges_come_as_multipart_byteranges(server, served_archive):
    data = src(served_archive, CLIP).read_bytes()
    r = requests.get(server.url(path_of(CLIP)), headers={"Range": "bytes=100-199,5000-5099,-10"})
    assert r.status_code == 206
    ctype = r.headers["Content-Type"]
    assert ctype.startswith("multipart/byteranges; boundary=")
    assert int(r.headers["Content-Length"]) == len(r.content)
    msg = BytesParser().parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + r.content)
    parts = [(p["Content-Range"], p.get_payload(decode=True)) for p in msg.get_payload()]
    size = len(data)
    assert parts == [
        (f"bytes 100-199/{size}", data[100:200]),
        (f"bytes 5000-5099/{size}", data[5000:5100]),
        (f"bytes {size - 10}-{size - 1}/{size}", data[-10:]),
    ]
    for p in msg.get_payload():
        assert p["Content-Type"] == "video/quicktime"


def test_unsatisfiable_and_malformed_ranges_are_416_with_the_size(server, served_archive):
    size = src(served_archive, CLIP).stat().st_size
    u = server.url(path_of(CLIP))
    for rng in [f"bytes={size}-", "bytes=5-1", "bytes=abc", "bytes=-0",
                "bytes=" + ",".join(f"{i}-{i}" for i in range(10_000))]:
        r = requests.get(u, headers={"Range": rng})
        assert r.status_code == 416, (rng[:40], r.status_code)
        assert r.headers["Content-Range"] == f"bytes */{size}"
        assert len(r.content) < 1000
    assert "ends before it starts" in requests.get(u, headers={"Range": "bytes=5-1"}).text
    assert "10000 ranges" in requests.get(u, headers={"Range": "bytes=" + ",".join(["0-0"] * 10_000)}).text
    assert server.alive()


# ---- conditional requests ---------------------------------------------------------

def test_if_none_match_and_if_modified_since_give_304(server):
    u = server.url(path_of(CLIP))
    first = requests.head(u)
    etag, lm = first.headers["ETag"], first.headers["Last-Modified"]
    r = requests.get(u, headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""
    assert r.headers["ETag"] == etag
    assert requests.get(u, headers={"If-None-Match": '"someone-else"'}, stream=True).status_code == 200
    assert requests.get(u, headers={"If-Modified-Since": lm}).status_code == 304


def test_if_range_honours_the_range_only_for_the_same_version(server, served_archive):
    data = src(served_archive, CLIP).read_bytes()
    u = server.url(path_of(CLIP))
    etag = requests.head(u).headers["ETag"]
    r = requests.get(u, headers={"Range": "bytes=10-19", "If-Range": etag})
    assert r.status_code == 206 and r.content == data[10:20]
    r = requests.get(u, headers={"Range": "bytes=10-19", "If-Range": '"another-version"'})
    assert r.status_code == 200 and sha(r.content) == sha(data)


def test_a_resumed_download_reassembles_to_the_exact_file(server, served_archive):
    data_path = src(served_archive, CLIP)
    u = server.url(path_of(CLIP))
    got = bytearray()
    with httpx.Client() as c:
        with c.stream("GET", u) as r:
            etag = r.headers["etag"]
            for chunk in r.iter_raw(64 << 10):
                got += chunk
                if len(got) >= 3 << 20:
                    break  # the connection drops here
        r = c.get(u, headers={"Range": f"bytes={len(got)}-", "If-Range": etag})
        assert r.status_code == 206
        got += r.content
    assert b3(data_path) == __import__("blake3").blake3(bytes(got)).hexdigest()


# ---- slices, branches and old versions ----------------------------------------------

def test_a_slice_over_http_is_the_slice_the_cli_makes(server, served_archive, reelfs, tmp_path):
    archive, _ = served_archive
    local = tmp_path / "slice.mov"
    reelfs.ok("slice", archive, path_of(SLICE), "-o", local)
    r = requests.get(server.url(path_of(SLICE)))
    assert r.status_code == 200, r.text
    assert r.content == local.read_bytes()
    assert r.headers["Content-Type"] == "video/quicktime"
    assert r.headers["ETag"].startswith('"slice-')
    # Ranges of a slice are ranges of those bytes.
    r2 = requests.get(server.url(path_of(SLICE)), headers={"Range": "bytes=1000-2999"})
    assert r2.status_code == 206 and r2.content == local.read_bytes()[1000:3000]


def framemd5(url_or_path):
    out = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(url_or_path), "-map", "0:v:0",
                          "-c", "copy", "-f", "framemd5", "-"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = [l for l in out.stdout.splitlines() if not l.startswith("#")]
    assert lines
    return lines


def test_ffmpeg_reads_an_original_and_a_slice_over_http_frame_for_frame(server, served_archive, reelfs, tmp_path):
    archive, _ = served_archive
    assert framemd5(server.url(path_of(CLIP))) == framemd5(src(served_archive, CLIP))
    local = tmp_path / "slice.mov"
    reelfs.ok("slice", archive, path_of(SLICE), "-o", local)
    assert framemd5(server.url(path_of(SLICE))) == framemd5(local)
    tc = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format_tags=timecode:stream_tags=timecode",
                         "-of", "default=nw=1:nk=1", server.url(path_of(SLICE))], capture_output=True, text=True)
    assert "01:00:00:05" in tc.stdout, tc.stdout + tc.stderr


def test_branch_at_commit_urls_serve_that_version(served_archive, reelfs, tmp_path):
    archive, _ = served_archive
    # Its own archive copy: this test commits.
    own = tmp_path / "archive"
    shutil.copytree(archive, own)
    log = reelfs.json("log", own, "main")
    first = (log["commits"] if isinstance(log, dict) else log)[0]
    commit = first.get("hash") or first.get("commit") or first.get("id")
    s = Server(reelfs, own)
    try:
        r = requests.get(s.url(f"main@{commit[:8]}/Day01/card/{WAV}"))
        assert r.status_code == 200, r.text
        assert r.content == src(served_archive, WAV).read_bytes()
    finally:
        s.stop()


# ---- listings and facts --------------------------------------------------------------

def test_folders_list_as_json_for_machines_and_html_for_people(server, served_archive, reelfs):
    archive, _ = served_archive
    with httpx.Client() as c:
        j = c.get(server.url("main/Day01/card"), headers={"Accept": "application/json"})
        assert j.status_code == 200 and j.headers["content-type"] == "application/json"
        entries = {e["name"]: e for e in j.json()["entries"]}
        clip = entries[CLIP]
        assert clip["kind"] == "file"
        assert clip["size"] == src(served_archive, CLIP).stat().st_size
        assert clip["content_hash"] == content_hash(reelfs, archive, path_of(CLIP))
        assert clip["media"], clip
        assert any("/.proxy/thumb/" in u for u in clip["proxies"])
        assert c.head(server.base + clip["url"]).status_code == 200
        assert entries[".proxy"]["kind"] == "folder"
        assert entries[DPX_DIR]["kind"] == "folder"
        root = c.get(server.base + "/", headers={"Accept": "application/json"}).json()
        assert [e["name"] for e in root["entries"]] == ["main"]
        h = c.get(server.url("main/Day01/card/"))
        assert h.status_code == 200 and h.headers["content-type"].startswith("text/html")
        assert f'href="/main/Day01/card/{CLIP}"' in h.text


def test_accept_json_on_a_clip_returns_its_info_facts(server, served_archive, reelfs):
    archive, _ = served_archive
    want = reelfs.json("info", archive, path_of(CLIP))
    r = requests.get(server.url(path_of(CLIP)), headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    assert r.json() == want
    s = requests.get(server.url(path_of(SLICE)), headers={"Accept": "application/json"}).json()
    assert s["kind"] == "slice" and s["slice"]["in_tc"] == "01:00:00:05"
    assert s["source"]["content_hash"] == want["content_hash"]


# ---- bad input ----------------------------------------------------------------------

def raw_request(port, data: bytes, timeout=10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            out += b
            if b"\r\n\r\n" in out:
                head, _, body = out.partition(b"\r\n\r\n")
                m = re.search(rb"content-length: (\d+)", head, re.I)
                if m and len(body) >= int(m.group(1)):
                    break
        return out


def status_of(resp: bytes) -> int:
    return int(resp.split(b" ", 2)[1])


@pytest.mark.parametrize("target,status", [
    ("/main/../../etc/passwd", 400),
    ("/main/%2e%2e/%2e%2e/etc/passwd", 400),
    ("/main%2F..%2F..%2Fetc", 400),
    ("//etc/passwd", 400),
    ("/main/a%00b", 400),
    ("/main/bad%zzescape", 400),
    ("/main/%ff%fe", 400),
    ("/nosuchbranch/x.mov", 404),
    ("/main/Day01/card/nothing-here.mov", 404),
    (f"/main/Day01/card/{CLIP}@99:00:00:00-99:00:01:00", 404),
])
def test_paths_that_escape_or_do_not_exist_are_4xx(server, target, status):
    resp = raw_request(server.port, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert status_of(resp) == status, resp[:300]
    assert b"root:" not in resp
    assert server.alive()


def test_overlong_urls_unknown_methods_and_garbage_are_4xx_not_a_crash(server):
    long = "/main/" + "a" * 9000
    assert status_of(raw_request(server.port, f"GET {long} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())) in (414, 431)
    resp = raw_request(server.port, b"BREW /main HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_of(resp) == 405 and b"allow: get, head, options" in resp.lower()
    assert status_of(raw_request(server.port, b"DELETE /main HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) == 405
    resp = raw_request(server.port, b"\x16\x03\x01garbage\r\n\r\n")
    assert resp == b"" or status_of(resp) == 400
    opt = raw_request(server.port, b"OPTIONS /main HTTP/1.1\r\nHost: x\r\nOrigin: http://elsewhere\r\nConnection: close\r\n\r\n")
    assert status_of(opt) == 204 and b"access-control-allow-headers: range" in opt.lower()
    assert server.alive()
    assert requests.head(server.url(path_of(CLIP))).status_code == 200


# ---- signed links ----------------------------------------------------------------------

@pytest.fixture
def key_file(tmp_path):
    k = tmp_path / "token.key"
    k.write_bytes(os.urandom(32))
    k.chmod(0o600)
    return k


def test_with_a_token_key_only_signed_links_are_served(served_archive, reelfs, key_file):
    archive, _ = served_archive
    s = Server(reelfs, archive, "--token-key", key_file)
    try:
        r = requests.get(s.url(path_of(WAV)))
        assert r.status_code == 403 and "reelfs share" in r.text
        url = reelfs.ok("share", archive, path_of(WAV), "--token-key", key_file, "--base-url", s.base).stdout.strip()
        assert url.startswith(s.base + "/main/Day01/card/") and "sig=" in url
        r = requests.get(url)
        assert r.status_code == 200 and r.content == src(served_archive, WAV).read_bytes()
        # One link, one path.
        other = url.replace(WAV, MP4)
        assert requests.get(other).status_code == 403
        tampered = re.sub(r"expires=(\d+)", lambda m: f"expires={int(m.group(1)) + 1000}", url)
        assert requests.get(tampered).status_code == 403
        # A folder's link lists signed links to what it holds.
        folder = reelfs.ok("share", archive, "main/Day01/card", "--token-key", key_file, "--base-url", s.base).stdout.strip()
        listing = requests.get(folder, headers={"Accept": "application/json"}).json()
        wav = next(e for e in listing["entries"] if e["name"] == WAV)
        assert "sig=" in wav["url"] and requests.head(s.base + wav["url"]).status_code == 200
        # An expired link is refused and says so.
        short = reelfs.ok("share", archive, path_of(WAV), "--token-key", key_file, "--expires", "1s", "--base-url", s.base).stdout.strip()
        time.sleep(2.5)
        r = requests.get(short)
        assert r.status_code == 403 and "expired" in r.text
    finally:
        s.stop()


def test_share_refuses_a_missing_path_and_a_short_key(served_archive, reelfs, key_file, tmp_path):
    archive, _ = served_archive
    p = reelfs("share", archive, "main/Day01/card/nope.mov", "--token-key", key_file)
    assert p.returncode != 0 and "nope.mov" in p.stderr
    short = tmp_path / "short.key"
    short.write_bytes(b"abc")
    p = reelfs("share", archive, path_of(WAV), "--token-key", short)
    assert p.returncode != 0 and "at least 16" in p.stderr
    p = reelfs("serve", archive, "--token-key", short, "--listen", "127.0.0.1:0", timeout=30)
    assert p.returncode != 0 and "at least 16" in p.stderr


# ---- faults ----------------------------------------------------------------------------

def flip_byte_of(archive, source_file, offset):
    with open(source_file, "rb") as f:
        f.seek(offset)
        needle = f.read(64)
    for pack in sorted((archive / "packs").rglob("*.pack")):
        data = pack.read_bytes()
        at = data.find(needle)
        if at >= 0:
            with open(pack, "r+b") as f:
                f.seek(at + 10)
                f.write(bytes([data[at + 10] ^ 0x01]))
            return pack
    raise AssertionError(f"{source_file} bytes not found in any pack")


def test_a_damaged_chunk_cuts_the_response_never_sends_wrong_bytes_and_is_logged(reelfs, tmp_archive, tmp_path):
    card = tmp_path / "card"
    victim = write_random(card / "A001C002.mov", 12 << 20)
    reelfs.ok("ingest", tmp_archive, card, "--to", "Day01")
    flip_byte_of(tmp_archive, victim, 9 << 20)
    s = Server(reelfs, tmp_archive, logdir=tmp_path)
    try:
        want = victim.read_bytes()
        got = bytearray()
        cut = False
        try:
            with httpx.Client() as c, c.stream("GET", s.url("main/Day01/card/A001C002.mov")) as r:
                assert r.status_code == 200
                for chunk in r.iter_raw(1 << 16):
                    got += chunk
        except (httpx.RemoteProtocolError, httpx.ReadError):
            cut = True
        assert cut and len(got) < len(want), "the response was not cut"
        assert bytes(got) == want[:len(got)], "wrong bytes were sent before the cut"
        # An undamaged range of the same file still reads.
        r = requests.get(s.url("main/Day01/card/A001C002.mov"), headers={"Range": "bytes=0-1048575"})
        assert r.status_code == 206 and r.content == want[:1 << 20]
        assert "main/Day01/card/A001C002.mov" in s.log()
        assert s.alive()
    finally:
        s.stop()


def stream_get(url, headers=None):
    """(status, bytes received, whether the response was cut)."""
    got = bytearray()
    status = None
    try:
        with httpx.Client() as c, c.stream("GET", url, headers=headers or {}) as r:
            status = r.status_code
            for chunk in r.iter_raw(1 << 14):
                got += chunk
    except (httpx.RemoteProtocolError, httpx.ReadError):
        return status, bytes(got), True
    return status, bytes(got), False


def test_a_files_first_16_kib_are_checked_on_their_own_and_never_sent_damaged(reelfs, tmp_archive, tmp_path):
    # A response's first piece from a file's start reads and checks the head
    # of its first chunk alone (its proof in the catalog): a damaged byte in
    # the head is never sent; a head before a damaged byte is sent whole.
    card = tmp_path / "card"
    a = write_random(card / "A001C003.mov", 6 << 20)
    b = write_random(card / "A001C004.mov", 6 << 20)
    reelfs.ok("ingest", tmp_archive, card, "--to", "Day01")
    flip_byte_of(tmp_archive, a, 5000)  # byte 5010: in the head
    flip_byte_of(tmp_archive, b, 40000)  # byte 40010: past the head, in the first 256 KiB block
    want_a, want_b = a.read_bytes(), b.read_bytes()
    s = Server(reelfs, tmp_archive, logdir=tmp_path)
    try:
        url_a, url_b = s.url("main/Day01/card/A001C003.mov"), s.url("main/Day01/card/A001C004.mov")
        for headers in ({}, {"Range": "bytes=0-99"}, {"Range": "bytes=6000-6099"}):
            status, got, cut = stream_get(url_a, headers)
            assert cut and got == b"", f"{headers}: {len(got)} bytes of a damaged head were sent"
        r = requests.get(url_b, headers={"Range": "bytes=0-16383"})
        assert r.status_code == 206 and r.content == want_b[:16384], "the undamaged head was not served"
        status, got, cut = stream_get(url_b)
        assert status == 200 and cut and got == want_b[:len(got)] and len(got) < 40010, f"{len(got)} bytes sent"
        # Past the damaged block, the same file still reads.
        r = requests.get(url_b, headers={"Range": "bytes=1048576-1052671"})
        assert r.status_code == 206 and r.content == want_b[1 << 20:(1 << 20) + 4096]
        log = s.log()
        assert "main/Day01/card/A001C003.mov" in log and "main/Day01/card/A001C004.mov" in log
        assert s.alive()
    finally:
        s.stop()


def test_connections_past_the_limit_get_503_with_retry_after(served_archive, reelfs):
    archive, _ = served_archive
    s = Server(reelfs, archive, "--max-connections", "2")
    held = []
    try:
        for _ in range(2):
            c = socket.create_connection(("127.0.0.1", s.port))
            c.sendall(b"GET /main HTTP/1.1\r\nHost: x\r\n\r\n")
            c.recv(1)  # served: the slot is taken
            held.append(c)
        resp = raw_request(s.port, b"GET /main HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(resp) == 503, resp[:200]
        assert b"retry-after: 1" in resp.lower()
        for c in held:
            c.close()
        ok = False
        for _ in range(100):
            r = raw_request(s.port, b"GET /main HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if status_of(r) == 200:
                ok = True
                break
            time.sleep(0.05)
        assert ok, "slots were not given back after the clients left"
    finally:
        for c in held:
            c.close()
        s.stop()


def test_idle_connections_are_closed(served_archive, reelfs):
    archive, _ = served_archive
    s = Server(reelfs, archive, "--idle-timeout", "1")
    try:
        with socket.create_connection(("127.0.0.1", s.port)) as c:
            c.settimeout(30)
            assert c.recv(1) == b"", "an idle connection was kept open"
    finally:
        s.stop()


def test_slow_clients_hold_a_bounded_buffer(served_archive, reelfs):
    archive, _ = served_archive
    s = Server(reelfs, archive, "--cache-size", "32M")
    socks = []
    try:
        # Warm up: one full read, so the cache is as full as it gets.
        requests.get(s.url(path_of(CLIP)))
        base = s.rss_kib()
        size = src(served_archive, CLIP).stat().st_size
        for _ in range(12):
            c = socket.create_connection(("127.0.0.1", s.port))
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
            c.sendall(f"GET /{path_of(CLIP)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            socks.append(c)
        # Each reads a little, like a client at 64 KiB/s, for a few rounds.
        for _ in range(4):
            for c in socks:
                c.recv(64 << 10)
            time.sleep(0.25)
        grown = s.rss_kib() - base
        # Each response may hold its queue (2 MiB), a piece being read and the socket's
        # write buffer, plus allocator slack per thread: 8 MiB a client is generous.
        # Unbounded buffering holds the file for each, 12 x 22 MB (measured: 210 MB).
        assert grown < 12 * 8 * 1024, f"RSS grew {grown} KiB for 12 slow clients of a {size}-byte file"
        assert s.alive()
    finally:
        for c in socks:
            c.close()
        s.stop()


def test_a_thousand_aborting_clients_leave_memory_and_files_where_they_were(served_archive, reelfs):
    archive, _ = served_archive
    s = Server(reelfs, archive, "--cache-size", "32M")
    size = src(served_archive, CLIP).stat().st_size
    rnd = random.Random(14)

    def abort_one():
        off = rnd.randrange(0, size - 1)
        with socket.create_connection(("127.0.0.1", s.port)) as c:
            hdr = f"Range: bytes={off}-\r\n" if rnd.random() < 0.7 else ""
            c.sendall(f"GET /{path_of(CLIP)} HTTP/1.1\r\nHost: x\r\n{hdr}\r\n".encode())
            try:
                c.recv(rnd.choice([1, 4096, 65536]))
            except ConnectionError:
                pass  # the server may answer a tiny range and close first
            # Closing with unread data sends a reset: the rudest way to leave.

    def run(n):
        threads = [threading.Thread(target=lambda: [abort_one() for _ in range(n // 8)]) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def settled(pred):
        for _ in range(200):
            if pred():
                return True
            time.sleep(0.05)
        return False

    try:
        # The listener and the runtime's signal pipe: the sockets of a server with no client.
        idle_socks = s.fd_kinds()[0]
        run(200)  # warm-up: threads, cache and pools at their working size
        assert settled(lambda: s.fd_kinds()[0] <= idle_socks)
        rss = s.rss_kib()
        run(1000)
        assert settled(lambda: s.fd_kinds()[0] <= idle_socks), f"{s.fd_kinds()[0] - idle_socks} client sockets still open after the clients left"
        # Files: the catalog's read-only connections (a pool of 8, 3 files each)
        # and the packs; bounded whatever the number of clients.
        assert s.fd_kinds()[1] <= 40, s.fd_kinds()
        grown = s.rss_kib() - rss
        assert grown < 32 * 1024, f"RSS grew {grown} KiB over 1000 aborted clients"
        assert requests.get(s.url(path_of(WAV))).content == src(served_archive, WAV).read_bytes()
    finally:
        s.stop()


def test_a_new_ingest_while_serving_keeps_unchanged_etags_and_if_range_gets_the_new_file(reelfs, tmp_archive, tmp_path):
    card = tmp_path / "card"
    same = write_random(card / "A001C001.mov", 1 << 20)
    changed = write_random(card / "A001C002.mov", 1 << 20)
    reelfs.ok("ingest", tmp_archive, card, "--to", "Day01")
    s = Server(reelfs, tmp_archive, logdir=tmp_path)
    try:
        u_same, u_changed = s.url("main/Day01/card/A001C001.mov"), s.url("main/Day01/card/A001C002.mov")
        etag_same = requests.head(u_same).headers["ETag"]
        old = requests.get(u_changed, headers={"Range": "bytes=0-65535"})
        assert old.status_code == 206
        etag_old = old.headers["ETag"]
        write_random(changed, 1 << 20)
        reelfs.ok("ingest", tmp_archive, card, "--to", "Day01")
        # The running server sees the new commit; the unchanged file keeps its ETag.
        assert requests.head(u_same).headers["ETag"] == etag_same
        r = requests.get(u_changed, headers={"Range": "bytes=65536-", "If-Range": etag_old})
        assert r.status_code == 200, "a resume across a change must get the whole new file"
        assert r.headers["ETag"] != etag_old
        assert r.content == changed.read_bytes()
        assert requests.get(u_same, headers={"If-None-Match": etag_same}).status_code == 304
    finally:
        s.stop()
