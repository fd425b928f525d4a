"""`scripts/bench serve`: `reelfs serve` against nginx serving a plain copy of the
same file from the same disk, measured in the same run (a benchmark, not a test).

Source: a 4K (3840x2160) ProRes 422 HQ clip at 23.976 with a tmcd track, made once
under DATA/cache/serve (a 2 s encode looped with -c copy to --serve-seconds,
default 10). The cached clip folder is nginx's root (the plain copy); the archive
is made from it under DATA/run-serve.

Measured, every cold figure after `sync; echo 3 > /proc/sys/vm/drop_caches` and, for
reelfs, a fresh server process (its chunk cache empty), best of --runs:
  - time to first byte of a GET of the original;
  - time to the first decoded frame: `ffmpeg -i URL -frames:v 1 -f null -`;
  - one client reading the whole original (curl to /dev/null), against gigabit (125 MB/s);
  - p50/p99 of 200 random 1 MiB range requests on one keep-alive connection, cold.
Not measured here (left for later): N paced clients, 200 HLS clients.
"""

import http.client
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

MiB = 1 << 20
CLIP = "A001C001_4k_prores_hq.mov"


def _sh(cmd):
    r = subprocess.run(cmd, shell=True, text=True, capture_output=True)
    if r.returncode != 0:
        sys.exit(f"bench serve: command failed ({r.returncode}): {cmd}\n{r.stdout}\n{r.stderr}")
    return r.stdout


def _drop_caches():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def ensure_source(args, log):
    d = os.path.join(args.data, "cache", "serve")
    out = os.path.join(d, "media", CLIP)
    if os.path.exists(out):
        return out
    os.makedirs(os.path.dirname(out), exist_ok=True)
    piece = os.path.join(d, "piece.mov")
    log("bench serve: encoding 2 s of 4K ProRes 422 HQ (once)")
    _sh(f"ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=3840x2160:rate=24000/1001 -t 2.002 "
        f"-c:v prores_ks -profile:v 3 -pix_fmt yuv422p10le '{piece}'")
    plays = max(1, int(round(args.serve_seconds / 2)))
    tmp = out + ".part.mov"
    _sh(f"ffmpeg -nostdin -v error -y -stream_loop {plays - 1} -i '{piece}' -map 0:v -c copy "
        f"-timecode 01:00:00:00 -metadata:s:v:0 reel_name=A001 '{tmp}'")
    os.rename(tmp, out)
    os.unlink(piece)
    return out


NGINX_CONF = """worker_processes 2;
daemon off;
pid {run}/nginx.pid;
error_log {run}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 60;
    types {{ video/quicktime mov; }}
    default_type application/octet-stream;
    client_body_temp_path {run}/nginx-tmp;
    proxy_temp_path {run}/nginx-tmp;
    fastcgi_temp_path {run}/nginx-tmp;
    uwsgi_temp_path {run}/nginx-tmp;
    scgi_temp_path {run}/nginx-tmp;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
"""


class Proc:
    def __init__(self, argv, ready):
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.base = ready(self.p)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def start_reelfs(reelfs, archive):
    def ready(p):
        line = p.stdout.readline()
        if "http://" not in line:
            sys.exit(f"bench serve: reelfs serve did not start: {line!r}")
        return line.split("http://", 1)[1].split("/", 1)[0]
    return Proc([reelfs, "serve", archive, "--listen", "127.0.0.1:0", "--cache-size", "1G"], ready)


def start_nginx(conf, port):
    def ready(p):
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return f"127.0.0.1:{port}"
            except OSError:
                time.sleep(0.05)
        sys.exit("bench serve: nginx did not start (see its error log)")
    return Proc(["nginx", "-c", conf, "-p", os.path.dirname(conf)], ready)


def ttfb(hostport, path):
    host, port = hostport.split(":")
    c = http.client.HTTPConnection(host, int(port))
    t0 = time.perf_counter()
    c.request("GET", path)
    r = c.getresponse()
    r.read(1)
    t = time.perf_counter() - t0
    c.close()
    return t


def ranges(hostport, path, size, n=200, seed=14):
    host, port = hostport.split(":")
    rnd = random.Random(seed)
    c = http.client.HTTPConnection(host, int(port))
    lat = []
    for _ in range(n):
        off = rnd.randrange(0, size - MiB)
        t0 = time.perf_counter()
        c.request("GET", path, headers={"Range": f"bytes={off}-{off + MiB - 1}"})
        r = c.getresponse()
        body = r.read()
        lat.append(time.perf_counter() - t0)
        if r.status != 206 or len(body) != MiB:
            sys.exit(f"bench serve: range at {off}: {r.status}, {len(body)} bytes")
    c.close()
    return lat


def run(args, reelfs, record, peer_cmds, notes, log):
    for tool in ("nginx", "curl", "ffmpeg"):
        if not shutil.which(tool):
            sys.exit(f"bench serve: {tool} is needed (scripts/install-deps installs it)")
    src = ensure_source(args, log)
    size = os.path.getsize(src)
    root = os.path.dirname(src)
    work = os.path.join(args.data, "run-serve")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "nginx-tmp"))
    archive = os.path.join(work, "archive")
    _sh(f"'{reelfs}' init '{archive}'")
    _sh(f"'{reelfs}' ingest '{archive}' '{root}' --to Day01 -m bench")
    rpath = f"/main/Day01/{os.path.basename(root)}/{CLIP}"
    npath = f"/{CLIP}"
    port = _free_port()
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(run=work, port=port, root=root))
    print("nginx configuration (the peer):")
    print(open(conf).read())
    nginx = start_nginx(conf, port)
    try:
        def best(measure_reelfs, measure_nginx):
            mine, peer = [], []
            for _ in range(args.runs):
                _drop_caches()
                s = start_reelfs(reelfs, archive)
                try:
                    mine.append(measure_reelfs(s.base))
                finally:
                    s.stop()
                _drop_caches()
                peer.append(measure_nginx(nginx.base))
            return mine, peer

        mine, peer = best(lambda b: ttfb(b, rpath), lambda b: ttfb(b, npath))
        m, p = min(mine), min(peer)
        record("serve", f"TTFB, {size / MiB:.0f} MiB 4K ProRes HQ, cold", f"{m * 1e3:.1f} ms", f"{p * 1e3:.1f} ms",
               f"{m / p:.2f}x", "<= 1.2x and < 1 s", m / p <= 1.2 and m < 1.0)

        def first_frame(b, path):
            t0 = time.perf_counter()
            _sh(f"ffmpeg -nostdin -v error -i 'http://{b}{path}' -frames:v 1 -f null -")
            return time.perf_counter() - t0
        mine, peer = best(lambda b: first_frame(b, rpath), lambda b: first_frame(b, npath))
        m, p = min(mine), min(peer)
        record("serve", "first decoded frame (ffmpeg -frames:v 1), cold", f"{m:.3f} s", f"{p:.3f} s",
               f"{m / p:.2f}x", "<= 1.2x and < 1 s", m / p <= 1.2 and m < 1.0)

        def whole(b, path):
            out = _sh(f"curl -sS -o /dev/null -w '%{{size_download}} %{{time_total}}' 'http://{b}{path}'").split()
            if int(out[0]) != size:
                sys.exit(f"bench serve: {path}: {out[0]} bytes, not {size}")
            return float(out[1])
        mine, peer = best(lambda b: whole(b, rpath), lambda b: whole(b, npath))
        m, p = min(mine), min(peer)
        rate_m, rate_p = size / m / 1e6, size / p / 1e6
        record("serve", "one client, whole original, cold", f"{rate_m:.0f} MB/s", f"{rate_p:.0f} MB/s",
               f"{rate_m / rate_p:.2f}x", ">= 0.9x", rate_m / rate_p >= 0.9)
        record("serve", "  vs gigabit (125 MB/s)", f"{rate_m / 125:.1f}x gigabit", "", "", ">= 1x", rate_m >= 125)

        mine, peer = best(lambda b: ranges(b, rpath, size), lambda b: ranges(b, npath, size))
        for q in (50, 99):
            m = min(_pct(x, q) for x in mine)
            p = min(_pct(x, q) for x in peer)
            record("serve", f"random 1 MiB range p{q}, cold, 200 requests", f"{m * 1e3:.1f} ms", f"{p * 1e3:.1f} ms",
                   f"{m / p:.2f}x", "report", None)
        peer_cmds.append(("serve: TTFB / first frame / whole file / ranges",
                          f"reelfs serve ARCHIVE --listen 127.0.0.1:0 --cache-size 1G (fresh process per round); GET {rpath}",
                          f"nginx -c {conf} (config printed above); GET {npath}"))
        notes.append("serve: first frame = ffmpeg process start + probe + one decode, the same for both servers")
        notes.append("serve: N paced clients and 200 HLS clients were not measured in this version")
    finally:
        nginx.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
