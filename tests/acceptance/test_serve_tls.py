"""`reelfs serve --tls-cert F --tls-key F`: HTTPS with HTTP/2 by ALPN (HTTP/1.1 still
served), checked with curl, httpx, ffmpeg and `reelfs share` against a self-signed
certificate made by `openssl req` in the test. Loopback only."""

import json
import re
import signal
import ssl
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from test_serve import CLIP, SLICE, Server, framemd5, path_of, served_archive  # noqa: F401 (fixture)


def make_cert(d: Path, name="cert", cn="127.0.0.1"):
    """A self-signed certificate and its key (PEM), for 127.0.0.1."""
    cert, key = d / f"{name}.pem", d / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={cn}",
         "-addext", f"subjectAltName=IP:{cn}"],
        check=True, capture_output=True)
    return cert, key


class TlsServer(Server):
    """A `reelfs serve` with TLS: its first line names an https:// URL."""

    def __init__(self, reelfs, archive, cert, key, *flags):
        import os
        self.logdir = Path(archive).parent
        self.err_path = self.logdir / f"serve-tls-{os.getpid()}-{time.monotonic_ns()}.log"
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(
            reelfs.argv(["serve", archive, "--listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, *flags]),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.err, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"https://127\.0\.0\.1:(\d+)/", line)
        if not m:
            self.stop()
            pytest.fail(f"reelfs serve --tls-cert did not start on https: stdout {line!r}, stderr:\n{self.log()}")
        self.port = int(m.group(1))
        self.base = f"https://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    return make_cert(d)


@pytest.fixture(scope="module")
def tls_server(served_archive, reelfs, certs):  # noqa: F811
    archive, _ = served_archive
    s = TlsServer(reelfs, archive, *certs, "--cache-size", "64M")
    yield s
    s.stop()


def curl(*args):
    p = subprocess.run(["curl", "-sS", "-k", *args], capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    return p.stdout


def test_http2_is_negotiated_by_alpn_and_serves_the_original_bytes(tls_server, served_archive, tmp_path):
    out = tmp_path / "clip.mov"
    meta = curl("--http2", "-o", str(out), "-w", "%{http_version} %{http_code}", tls_server.url(path_of(CLIP))).decode()
    assert meta == "2 200", meta
    assert out.read_bytes() == (served_archive[1] / CLIP).read_bytes()


def test_http11_clients_are_still_served_over_tls(tls_server, served_archive, tmp_path):
    out = tmp_path / "clip.mov"
    meta = curl("--http1.1", "-o", str(out), "-w", "%{http_version} %{http_code}", tls_server.url(path_of(CLIP))).decode()
    assert meta == "1.1 200", meta
    assert out.read_bytes() == (served_archive[1] / CLIP).read_bytes()
    # The certificate the server presents is the one it was given.
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    with socket.create_connection(("127.0.0.1", tls_server.port)) as raw, ctx.wrap_socket(raw) as tls:
        assert tls.selected_alpn_protocol() == "http/1.1"


def test_ranges_over_http2(tls_server, served_archive, certs):
    data = (served_archive[1] / CLIP).read_bytes()
    with httpx.Client(http2=True, verify=str(certs[0])) as c:
        r = c.get(tls_server.url(path_of(CLIP)), headers={"Range": "bytes=1000-70999"})
        assert r.http_version == "HTTP/2"
        assert r.status_code == 206 and r.content == data[1000:71000]
        assert r.headers["content-range"] == f"bytes 1000-70999/{len(data)}"
        r = c.get(tls_server.url(path_of(CLIP)), headers={"Range": "bytes=-4096"})
        assert r.status_code == 206 and r.content == data[-4096:]
        r = c.get(tls_server.url(path_of(CLIP)), headers={"Range": f"bytes={len(data) + 10}-"})
        assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(data)}"


def test_ffmpeg_reads_an_original_and_a_slice_over_https_frame_for_frame(tls_server, served_archive, reelfs, tmp_path):
    archive, card = served_archive
    assert framemd5(tls_server.url(path_of(CLIP))) == framemd5(str(card / CLIP))
    local = tmp_path / "slice.mov"
    reelfs.ok("slice", archive, path_of(SLICE), "-o", local)
    assert framemd5(tls_server.url(path_of(SLICE))) == framemd5(str(local))


def test_a_plain_http_request_on_the_tls_port_gets_a_clear_400_and_the_server_keeps_serving(tls_server, served_archive):
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            got += b
    assert got.startswith(b"HTTP/1.1 400"), got[:200]
    assert b"https://" in got
    # A TLS handshake that goes wrong (garbage after the record type) ends that
    # connection only.
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=10) as s:
        s.sendall(b"\x16\x03\x01\x00\x05hello")
        s.settimeout(10)
        try:
            s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            pass
    assert tls_server.alive()
    meta = curl("--http2", "-o", "/dev/null", "-w", "%{http_code}", tls_server.url(path_of(CLIP))).decode()
    assert meta == "200"


def test_signed_links_and_hls_work_over_https(served_archive, reelfs, certs, tmp_path):
    archive, card = served_archive
    key = tmp_path / "token.key"
    key.write_bytes(bytes(range(32)))
    s = TlsServer(reelfs, archive, *certs, "--token-key", key)
    try:
        url = reelfs.ok("share", archive, path_of(CLIP), "--token-key", key, "--base-url", s.base).stdout.strip()
        assert url.startswith(s.base + "/") and "sig=" in url
        out = tmp_path / "signed.mov"
        meta = curl("--http2", "-o", str(out), "-w", "%{http_version} %{http_code}", url).decode()
        assert meta == "2 200" and out.read_bytes() == (card / CLIP).read_bytes()
        unsigned = curl("-o", "/dev/null", "-w", "%{http_code}", s.url(path_of(CLIP))).decode()
        assert unsigned == "403"
    finally:
        s.stop()


def test_an_hls_stream_decodes_end_to_end_over_https(tmp_path, reelfs, media_dir, certs):
    archive = tmp_path / "archive"
    card = tmp_path / "card"
    card.mkdir()
    (card / CLIP).write_bytes((media_dir / CLIP).read_bytes())
    reelfs.ok("init", archive)
    reelfs.ok("ingest", archive, card, "--to", "Day01", "-m", "hls")
    reelfs.ok("proxy", archive, "main/Day01/card", "--profiles", "preview-low")
    s = TlsServer(reelfs, archive, *certs)
    try:
        master = s.url(path_of(CLIP)) + ".m3u8"
        text = curl("--http2", master).decode()
        assert text.startswith("#EXTM3U"), text[:300]
        frames = subprocess.run(
            ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
             "-show_entries", "stream=nb_read_frames", "-of", "json", master],
            capture_output=True, text=True, timeout=300)
        assert frames.returncode == 0, frames.stderr
        src = subprocess.run(
            ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
             "-show_entries", "stream=nb_read_frames", "-of", "json", str(media_dir / CLIP)],
            capture_output=True, text=True, timeout=300, check=True)
        n = int(json.loads(frames.stdout)["streams"][0]["nb_read_frames"])
        assert n == int(json.loads(src.stdout)["streams"][0]["nb_read_frames"])
    finally:
        s.stop()


@pytest.mark.parametrize("case", ["missing_cert", "missing_key", "not_pem", "mismatched", "only_cert"])
def test_bad_certificates_or_keys_are_refused_before_binding_with_a_clear_error(served_archive, reelfs, tmp_path, case):
    archive, _ = served_archive
    cert, key = make_cert(tmp_path, "a")
    _, other_key = make_cert(tmp_path, "b")
    junk = tmp_path / "junk.pem"
    junk.write_text("this is not PEM\n")
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    addr = "127.0.0.1:%d" % port.getsockname()[1]
    port.close()
    args = {
        "missing_cert": ["--tls-cert", tmp_path / "nope.pem", "--tls-key", key],
        "missing_key": ["--tls-cert", cert, "--tls-key", tmp_path / "nope.key"],
        "not_pem": ["--tls-cert", cert, "--tls-key", junk],
        "mismatched": ["--tls-cert", cert, "--tls-key", other_key],
        "only_cert": ["--tls-cert", cert],
    }[case]
    p = subprocess.Popen(reelfs.argv(["serve", archive, "--listen", addr, *args]),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)
        p.communicate()
        pytest.fail(f"{case}: reelfs serve started instead of refusing")
    assert p.returncode != 0, out
    assert "serving" not in out
    expect = {
        "missing_cert": ["nope.pem", "--tls-cert"],
        "missing_key": ["nope.key", "--tls-key"],
        "not_pem": ["junk.pem", "private key", "--tls-key"],
        "mismatched": ["does not fit", "a.pem"],
        "only_cert": ["--tls-key"],
    }[case]
    for word in expect:
        assert word in err, f"{case}: {word!r} not in {err!r}"
    assert "panicked" not in err
    # Nothing was bound.
    with socket.socket() as s:
        s.bind(tuple([addr.split(":")[0], int(addr.split(":")[1])]))


def test_over_the_connection_limit_a_tls_client_gets_503_with_retry_after(served_archive, reelfs, certs):  # noqa: F811
    archive, _ = served_archive
    s = TlsServer(reelfs, archive, *certs, "--max-connections", "1")
    try:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", s.port)) as raw, ctx.wrap_socket(raw) as held:
            held.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert held.recv(4096).startswith(b"HTTP/1.1 200")
            # The held connection is the one allowed; the next is refused in TLS,
            # over HTTP/2 as negotiated.
            p = subprocess.run(["curl", "-sS", "-k", "--http2", "-D", "-", "-o", "/dev/null", "-w", "%{http_version}",
                                s.url(path_of(CLIP))], capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, p.stderr
            assert p.stdout.startswith("HTTP/2 503"), p.stdout
            assert "retry-after: 1" in p.stdout.lower()
        assert s.alive()
    finally:
        s.stop()
