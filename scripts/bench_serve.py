"""`scripts/bench serve`: `reelfs serve` against nginx serving a plain copy of the
same file from the same disk, measured in the same run (a benchmark, not a test).

Source: a 4K (3840x2160) ProRes 422 HQ clip at 23.976 with a tmcd track, made once
under DATA/cache/serve-unique: --serve-seconds (default 10) encoded whole, with
per-frame grain, so no two chunks are alike (as in a camera original). The cached clip folder is nginx's root (the plain copy); the archive
is made from it under DATA/run-serve.

Measured, every cold figure after `sync; echo 3 > /proc/sys/vm/drop_caches`, taken
once the server is up and has answered one GET of another file (`warm_then_drop`; for
reelfs a fresh process, its chunk cache empty), in rounds that take each side
in turn (the order flipping every round), best and median of the rounds:
  - time to first byte of a GET of the original (--serve-ttfb-runs rounds, default 15:
    a cold TTFB is a few ms, so one disk hiccup of another process moves it 10x);
  - time to the first decoded frame: `ffmpeg -i URL -frames:v 1 -f null -` (as many);
  - one client reading the whole original (curl to /dev/null), against gigabit
    (125 MB/s), --runs rounds;
  - p50/p99 of 200 random 1 MiB range requests on one keep-alive connection, cold.
  - N paced clients: each reads the original at the clip's real-time bitrate with a
    2 s buffer (never more than 2 s ahead of playback); N doubles until one underruns;
    the largest N with no underrun, reelfs vs nginx (cold at each N);
  - 200 HLS clients on the 540p `preview` rung, each fetching its segments by byte
    range in real time for --hls-seconds: segment fetch p50/p99, errors, late segments
    and the server's peak RSS (nginx serves the folder `reelfs hls` writes).
"""

import http.client
import os
import threading
import urllib.parse
import random
import shutil
import signal
import statistics
import socket
import subprocess
import sys
import time

MiB = 1 << 20
CLIP = "A001C001_4k_prores_hq.mov"
WARM = "warm/warm.bin"  # fetched from each server before its caches are dropped


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
    """The clip, encoded whole (never looped): every frame differs, as a camera's
    do. A clip looped by stream copy repeats its chunks, which the archive stores
    once and its chunk cache serves from memory after the first pass, so the
    archive read a fifth of what nginx read from disk (a whole-file figure of
    1.67x nginx's that measured dedup, not serving)."""
    d = os.path.join(args.data, "cache", "serve-unique")
    out = os.path.join(d, "media", CLIP)
    if os.path.exists(out):
        return out
    os.makedirs(os.path.dirname(out), exist_ok=True)
    log(f"bench serve: encoding {args.serve_seconds:g} s of 4K ProRes 422 HQ with per-frame grain (once)")
    # Temporal noise makes each frame unique and brings the bitrate to a camera
    # original's (~1.1 Gb/s here; testsrc2 alone encodes to a fifth of that).
    # The `prores` encoder: prores_ks takes ~8x the CPU for the same profile.
    tmp = out + ".part.mov"
    _sh(f"nice -n 19 ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=3840x2160:rate=24000/1001 "
        f"-t {args.serve_seconds} -vf noise=alls=5:allf=t+u -c:v prores -profile:v 3 -pix_fmt yuv422p10le "
        f"-timecode 01:00:00:00 -metadata:s:v:0 reel_name=A001 '{tmp}'")
    os.rename(tmp, out)
    return out


def small_chunks(archive, kib):
    """--serve-chunk-kib K: cut the archive's chunks at about K KiB (min K/4,
    max 4K), so a clip of a bench-sized file has thousands of extents, as a
    long original (hours, or 1 TiB) has at the default 4 MiB: the case where
    reading a file's extent list a page at a time matters."""
    path = os.path.join(archive, "reelfs.toml")
    text = open(path).read()
    avg = kib << 10
    for key, v in (("min_size", max(64, avg // 4)), ("avg_size", avg), ("max_size", avg * 4)):
        lines = [f"{key} = {v}" if ln.startswith(f"{key} =") else ln for ln in text.splitlines()]
        text = "\n".join(lines) + "\n"
    with open(path, "w") as f:
        f.write(text)


def clip_extents(archive, size):
    import sqlite3
    db = sqlite3.connect(f"file:{os.path.join(archive, 'catalog.db')}?mode=ro", uri=True)
    try:
        return db.execute("SELECT COUNT(*) FROM extents WHERE blob IN (SELECT hash FROM blobs WHERE size = ?)", (size,)).fetchone()[0]
    finally:
        db.close()


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


def warm_then_drop(hostport, path):
    """The same cold start for both servers: each answers one GET of another
    file (`WARM`), so its code is loaded (a process's mapped pages survive
    drop_caches, and nginx's were loaded by the rounds before), then the page
    cache is dropped. A reelfs started after the drop paid a dozen page faults
    on its binary in the measured request (7 major faults in a 1-byte GET), on
    a disk shared with the machine's other work."""
    host, port = hostport.split(":")
    c = http.client.HTTPConnection(host, int(port))
    c.request("GET", path)
    r = c.getresponse()
    if r.status != 200 or len(r.read()) != 256 << 10:
        sys.exit(f"bench serve: GET {path}: {r.status}")
    c.close()
    _drop_caches()


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


PACED_SECONDS = 6.0   # playback each paced client must keep up with
PACED_BUFFER = 2.0    # seconds of media a paced client may hold ahead of playback
PACED_MAX = 128


def paced_client(hostport, path, rate, result, i, barrier):
    """Read `path` at `rate` bytes/s of playback, at most PACED_BUFFER s ahead.
    Playback starts once PACED_BUFFER s are buffered; an underrun is playback
    wanting bytes that have not arrived."""
    host, port = hostport.split(":")
    try:
        barrier.wait(timeout=60)
        c = http.client.HTTPConnection(host, int(port), timeout=30)
        c.request("GET", path)
        r = c.getresponse()
        if r.status != 200:
            result[i] = f"status {r.status}"
            return
        got, t0, play = 0, time.perf_counter(), None
        ahead = int(rate * PACED_BUFFER)  # bytes: integral, so the buffer can fill exactly
        want_total = int(rate * (PACED_SECONDS + PACED_BUFFER))
        while got < want_total:
            now = time.perf_counter()
            if play is None and got >= ahead:
                play = now
            played = 0 if play is None else (now - play) * rate
            if play is not None and got < played:
                result[i] = f"underrun after {now - play:.2f} s of playback"
                return
            if play is None and now - t0 > PACED_BUFFER * 3:
                result[i] = f"startup: 2 s of media did not arrive in 6 s ({got} of {ahead} bytes)"
                return
            room = int(played) + ahead - got
            if room <= 0:
                time.sleep(0.005)
                continue
            b = r.read(min(room, 256 << 10))
            if not b:
                break
            got += len(b)
        c.close()
        result[i] = None
    except Exception as e:  # a refused or cut connection is a failed client
        result[i] = f"{type(e).__name__}: {e}"


def paced_round(hostport, path, rate, n):
    result = ["did not finish"] * n
    barrier = threading.Barrier(n)
    ts = [threading.Thread(target=paced_client, args=(hostport, path, rate, result, i, barrier)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(PACED_SECONDS * 10)
    return [r for r in result if r]


def paced_max(path, rate, restart, log, label):
    """Largest N (doubling) whose clients all keep up; `restart` gives a fresh, cold server."""
    best, n = 0, 1
    while n <= PACED_MAX:
        hp = restart()
        fails = paced_round(hp, path, rate, n)
        log(f"bench serve: {label}: {n} paced clients: {len(fails)} failed {fails[:2]}")
        if fails:
            break
        best, n = n, n * 2
    return best


def parse_media_playlist(url, text):
    """(init (url, start, len), [(url, start, len, seconds)]) of a byte-range playlist."""
    init, segs, dur, rng = None, [], None, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXT-X-MAP:"):
            attrs = dict(kv.split("=", 1) for kv in line.split(":", 1)[1].split(","))
            ln, at = attrs["BYTERANGE"].strip('"').split("@")
            init = (urllib.parse.urljoin(url, attrs["URI"].strip('"')), int(at), int(ln))
        elif line.startswith("#EXTINF:"):
            dur = float(line.split(":", 1)[1].rstrip(","))
        elif line.startswith("#EXT-X-BYTERANGE:"):
            ln, at = line.split(":", 1)[1].split("@")
            rng = (int(at), int(ln))
        elif line and not line.startswith("#"):
            segs.append((urllib.parse.urljoin(url, line), rng[0], rng[1], dur))
    return init, segs


def hls_client(hostport, playlist, seconds, out, i, barrier):
    """Play `playlist` in real time for `seconds` (looping it): fetch each segment
    when the one before starts playing; late = a segment not there when due."""
    host, port = hostport.split(":")
    lat, late, errors = [], 0, 0
    try:
        barrier.wait(timeout=120)
        c = http.client.HTTPConnection(host, int(port), timeout=30)

        def get(u, start=None, length=None):
            p = urllib.parse.urlsplit(u)
            h = {"Range": f"bytes={start}-{start + length - 1}"} if start is not None else {}
            t0 = time.perf_counter()
            c.request("GET", p.path + ("?" + p.query if p.query else ""), headers=h)
            r = c.getresponse()
            body = r.read()
            if r.status not in (200, 206) or (length is not None and len(body) != length):
                raise RuntimeError(f"{u}: {r.status}, {len(body)} bytes")
            return body, time.perf_counter() - t0
        text, _ = get(f"http://{hostport}{playlist}")
        init, segs = parse_media_playlist(f"http://{hostport}{playlist}", text.decode())
        get(*init)
        start = time.perf_counter()
        due, k = start, 0
        while due - start < seconds:
            u, s0, ln, d = segs[k % len(segs)]
            wait = due - time.perf_counter() - d  # fetch one segment ahead
            if wait > 0:
                time.sleep(wait)
            try:
                _, t = get(u, s0, ln)
                lat.append(t)
                if time.perf_counter() > due + 0.001 and k > 0:
                    late += 1
            except Exception:
                errors += 1
                c.close()
                c = http.client.HTTPConnection(host, int(port), timeout=30)
            due += d
            k += 1
        c.close()
    except Exception:
        errors += 1
    out[i] = (lat, late, errors)


def hls_round(hostport, playlist, clients, seconds, pid):
    out = [([], 0, 1)] * clients
    barrier = threading.Barrier(clients)
    ts = [threading.Thread(target=hls_client, args=(hostport, playlist, seconds, out, i, barrier)) for i in range(clients)]
    peak = [0]
    done = threading.Event()

    def watch():
        while not done.is_set():
            try:
                for line in open(f"/proc/{pid}/status"):
                    if line.startswith("VmRSS:"):
                        peak[0] = max(peak[0], int(line.split()[1]))
            except OSError:
                pass
            time.sleep(0.2)
    w = threading.Thread(target=watch)
    w.start()
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds * 10 + 60)
    done.set()
    w.join()
    lat = [x for l, _, _ in out for x in l]
    return lat, sum(o[1] for o in out), sum(o[2] for o in out), peak[0]


def nginx_pids(master_pid):
    """nginx's master and its workers."""
    pids = [master_pid]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                st = open(f"/proc/{d}/status").read()
            except OSError:
                continue
            if any(l.split()[1:2] == [str(master_pid)] for l in st.splitlines() if l.startswith("PPid:")):
                pids.append(int(d))
    return pids


def cpu_seconds(pids):
    """User + system CPU seconds of these processes (all their threads) so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            # Fields after the command (which may hold spaces): utime is the 14th field.
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])
        except OSError:
            pass
    return total / tick


def nginx_rss_kib(master_pid):
    """RSS of nginx's master and workers together."""
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            st = open(f"/proc/{d}/status").read()
        except OSError:
            continue
        ppid = next((l.split()[1] for l in st.splitlines() if l.startswith("PPid:")), "")
        if d == str(master_pid) or ppid == str(master_pid):
            total += next((int(l.split()[1]) for l in st.splitlines() if l.startswith("VmRSS:")), 0)
    return total


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
    warm_file = os.path.join(root, WARM)
    if not os.path.exists(warm_file):
        os.makedirs(os.path.dirname(warm_file), exist_ok=True)
        with open(warm_file + ".part", "wb") as f:
            f.write(os.urandom(256 << 10))
        os.rename(warm_file + ".part", warm_file)
    _sh(f"'{reelfs}' init '{archive}'")
    if args.serve_chunk_kib:
        small_chunks(archive, args.serve_chunk_kib)
    _sh(f"'{reelfs}' ingest '{archive}' '{root}' --to Day01 -m bench")
    log(f"bench serve: the clip is {size / MiB:.0f} MiB in {clip_extents(archive, size)} extents")
    rpath = f"/main/Day01/{os.path.basename(root)}/{CLIP}"
    npath = f"/{CLIP}"
    rwarm = f"/main/Day01/{os.path.basename(root)}/{WARM}"
    nwarm = f"/{WARM}"
    port = _free_port()
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(run=work, port=port, root=root))
    print("nginx configuration (the peer):")
    print(open(conf).read())
    nginx = start_nginx(conf, port)
    rows = set(args.serve_rows.split(","))
    # --serve-ab BINARY: a second reelfs (the base) measured in the same rounds,
    # interleaved with this one and nginx, so an A/B on a loaded machine compares
    # figures taken under the same load; its rows are marked "(A/B base)".
    base_bin = os.path.abspath(args.serve_ab) if args.serve_ab else None
    base_measured = {}
    try:
        def best(measure_reelfs, measure_nginx, rounds):
            """Every round: this reelfs, the base, nginx, each cold (caches dropped;
            a fresh reelfs process). The order flips every round (ABC, CBA), so
            whatever drifts through a round (other work on the machine) weighs on
            every side alike."""
            mine, peer, base = [], [], []
            cpu = {"reelfs": [], "nginx": [], "base": []}

            def one_reelfs(binary, out):
                s = start_reelfs(binary, archive)
                try:
                    warm_then_drop(s.base, rwarm)
                    c0 = cpu_seconds([s.p.pid])
                    out.append(measure_reelfs(s.base))
                    cpu["reelfs" if binary == reelfs else "base"].append(cpu_seconds([s.p.pid]) - c0)
                finally:
                    s.stop()

            def one_nginx():
                warm_then_drop(nginx.base, nwarm)
                pids = nginx_pids(nginx.p.pid)
                c0 = cpu_seconds(pids)
                peer.append(measure_nginx(nginx.base))
                cpu["nginx"].append(cpu_seconds(pids) - c0)
            for k in range(rounds):
                sides = [lambda: one_reelfs(reelfs, mine)] + ([lambda: one_reelfs(base_bin, base)] if base_bin else []) + [one_nginx]
                for side in sides if k % 2 == 0 else reversed(sides):
                    side()
            base_measured["last"] = base
            base_measured["cpu"] = cpu
            return mine, peer

        def load_note(row, before):
            notes.append(f"serve: {row}: load average {before[0]:.2f} before, {os.getloadavg()[0]:.2f} after "
                         f"(1 min; {os.cpu_count()} cores)")

        def every_round(row, fmt, sides):
            for name, xs in sides:
                if xs:
                    notes.append(f"serve: {row} every round, {name}: " + ", ".join(fmt(x) for x in xs))

        def best_and_median(row, unit, scale, mine, peer, target, ok):
            """Two rows, best and median of the rounds, each side's own; the base's
            after them. Lower is better."""
            base = base_measured.get("last") or []
            for how, f in (("best", min), ("median", statistics.median)):
                m, p = f(mine), f(peer)
                record("serve", f"{row}, {how} of {len(mine)}", f"{m * scale:.{unit[1]}f} {unit[0]}",
                       f"{p * scale:.{unit[1]}f} {unit[0]}", f"{m / p:.2f}x", target, ok(m, p))
            for how, f in (("best", min), ("median", statistics.median)):
                if base:
                    b, p = f(base), f(peer)
                    record("serve", f"{row} (A/B base), {how}", f"{b * scale:.{unit[1]}f} {unit[0]}", "",
                           f"{b / p:.2f}x", "report", None)

        if "ttfb" in rows:
            before = os.getloadavg()
            mine, peer = best(lambda b: ttfb(b, rpath), lambda b: ttfb(b, npath), max(args.runs, args.serve_ttfb_runs))
            best_and_median(f"TTFB, {size / MiB:.0f} MiB 4K ProRes HQ, cold", ("ms", 1), 1e3, mine, peer,
                            "<= 1.2x and < 1 s", lambda m, p: m / p <= 1.2 and m < 1.0)
            every_round("TTFB (ms)", lambda x: f"{x * 1e3:.1f}", [("reelfs", mine), ("nginx", peer), ("base", base_measured["last"])])
            load_note("TTFB", before)

        def first_frame(b, path):
            t0 = time.perf_counter()
            _sh(f"ffmpeg -nostdin -v error -i 'http://{b}{path}' -frames:v 1 -f null -")
            return time.perf_counter() - t0
        if "frame" in rows:
            before = os.getloadavg()
            mine, peer = best(lambda b: first_frame(b, rpath), lambda b: first_frame(b, npath), max(args.runs, args.serve_ttfb_runs))
            best_and_median("first decoded frame (ffmpeg -frames:v 1), cold", ("s", 3), 1, mine, peer,
                            "<= 1.2x and < 1 s", lambda m, p: m / p <= 1.2 and m < 1.0)
            every_round("first frame (s)", lambda x: f"{x:.3f}", [("reelfs", mine), ("nginx", peer), ("base", base_measured["last"])])
            load_note("first frame", before)

        def whole(b, path):
            out = _sh(f"curl -sS -o /dev/null -w '%{{size_download}} %{{time_total}}' 'http://{b}{path}'").split()
            if int(out[0]) != size:
                sys.exit(f"bench serve: {path}: {out[0]} bytes, not {size}")
            return float(out[1])
        if "whole" in rows:
            before = os.getloadavg()
            mine, peer = best(lambda b: whole(b, rpath), lambda b: whole(b, npath), args.runs)
            base = base_measured.get("last") or []
            for how, f in (("best", min), ("median", statistics.median)):
                rate_m, rate_p = size / f(mine) / 1e6, size / f(peer) / 1e6
                record("serve", f"one client, whole original, cold, {how} of {len(mine)}", f"{rate_m:.0f} MB/s", f"{rate_p:.0f} MB/s",
                       f"{rate_m / rate_p:.2f}x", ">= 0.9x", rate_m / rate_p >= 0.9)
                record("serve", f"  vs gigabit (125 MB/s), {how}", f"{rate_m / 125:.1f}x gigabit", "", "", ">= 1x", rate_m >= 125)
            for how, f in (("best", min), ("median", statistics.median)):
                if base:
                    rate_b, rate_p = size / f(base) / 1e6, size / f(peer) / 1e6
                    record("serve", f"one client, whole original (A/B base), {how}", f"{rate_b:.0f} MB/s", "",
                           f"{rate_b / rate_p:.2f}x", "report", None)
            every_round("whole original (MB/s)", lambda x: f"{size / x / 1e6:.0f}", [("reelfs", mine), ("nginx", peer), ("base", base)])
            # The server's own CPU (user + system, all threads; nginx: master and
            # workers) per GB sent: what is ours, whatever else the machine runs.
            cpu = base_measured["cpu"]
            per_gb = {k: statistics.median(v) / (size / 1e9) for k, v in cpu.items() if v}
            record("serve", "  server CPU per GB sent, median", f"{per_gb['reelfs']:.2f} s", f"{per_gb['nginx']:.2f} s",
                   f"{per_gb['reelfs'] / per_gb['nginx']:.2f}x", "report", None)
            if "base" in per_gb:
                record("serve", "  server CPU per GB sent (A/B base), median", f"{per_gb['base']:.2f} s", "",
                       f"{per_gb['base'] / per_gb['nginx']:.2f}x", "report", None)
            every_round("server CPU s per whole original", lambda x: f"{x:.2f}", [(k, v) for k, v in cpu.items()])
            load_note("whole original", before)

        if "ranges" in rows:
            before = os.getloadavg()
            mine, peer = best(lambda b: ranges(b, rpath, size), lambda b: ranges(b, npath, size), args.runs)
            for q in (50, 99):
                m = min(_pct(x, q) for x in mine)
                p = min(_pct(x, q) for x in peer)
                record("serve", f"random 1 MiB range p{q}, cold, 200 requests", f"{m * 1e3:.1f} ms", f"{p * 1e3:.1f} ms",
                       f"{m / p:.2f}x", "report", None)
                if base_measured.get("last"):
                    b = min(_pct(x, q) for x in base_measured["last"])
                    record("serve", f"random 1 MiB range p{q} (A/B base)", f"{b * 1e3:.1f} ms", "", f"{b / p:.2f}x", "report", None)
            load_note("1 MiB ranges", before)
        if not rows & {"paced", "hls"}:
            peer_cmds.append(("serve: TTFB / first frame / whole file / ranges",
                              f"reelfs serve ARCHIVE --listen 127.0.0.1:0 --cache-size 1G (fresh process per round, one GET of {rwarm}, then caches dropped); GET {rpath}",
                              f"nginx -c {conf} (config printed above; one GET of {nwarm}, then caches dropped); GET {npath}"))
            return
        # ---- N paced clients at the clip's real-time bitrate -----------------------------
        dur = float(_sh(f"ffprobe -v error -show_entries format=duration -of csv=p=0 '{src}'").strip())
        rate = size / dur
        current = {}

        def restart_reelfs():
            if "s" in current:
                current.pop("s").stop()
            current["s"] = start_reelfs(reelfs, archive)
            warm_then_drop(current["s"].base, rwarm)
            return current["s"].base

        def restart_nginx():
            warm_then_drop(nginx.base, nwarm)
            return nginx.base
        before = os.getloadavg()
        try:
            n_mine = paced_max(rpath, rate, restart_reelfs, log, "reelfs")
        finally:
            if "s" in current:
                current.pop("s").stop()
        n_peer = paced_max(npath, rate, restart_nginx, log, "nginx")
        record("serve", f"paced clients at {rate * 8 / 1e6:.0f} Mb/s, 2 s buffer, no underrun", f"{n_mine}", f"{n_peer}",
               f"{n_mine / max(n_peer, 1):.2f}x", ">= 0.9x", n_mine >= 0.9 * n_peer)
        load_note("paced clients", before)

        # ---- 200 HLS clients on the 540p rung ---------------------------------------------
        _sh(f"'{reelfs}' proxy '{archive}' 'main/Day01/{os.path.basename(root)}/{CLIP}' --profiles preview")
        hls_dir = os.path.join(work, "hls")
        _sh(f"'{reelfs}' hls '{archive}' 'main/Day01/{os.path.basename(root)}/{CLIP}' '{hls_dir}'")
        stem = CLIP.rsplit(".", 1)[0]
        hls_conf = os.path.join(work, "nginx-hls.conf")
        hls_port = _free_port()
        with open(hls_conf, "w") as f:
            f.write(NGINX_CONF.format(run=work, port=hls_port, root=hls_dir).replace("nginx.pid", "nginx-hls.pid"))
        clients = args.hls_clients
        before = os.getloadavg()
        s = start_reelfs(reelfs, archive)
        warm_then_drop(s.base, rwarm)
        try:
            m_lat, m_late, m_err, m_rss = hls_round(s.base, f"{rpath}.m3u8?rung=preview", clients, args.hls_seconds, s.p.pid)
        finally:
            s.stop()
        hn = start_nginx(hls_conf, hls_port)
        try:
            _drop_caches()
            p_lat, p_late, p_err, _ = hls_round(hn.base, f"/{stem}.preview.m3u8", clients, args.hls_seconds, hn.p.pid)
            p_rss = nginx_rss_kib(hn.p.pid)
        finally:
            hn.stop()
        for q in (50, 99):
            m, p = _pct(m_lat, q), _pct(p_lat, q)
            record("serve", f"{clients} HLS clients, 540p, segment fetch p{q}", f"{m * 1e3:.1f} ms", f"{p * 1e3:.1f} ms",
                   f"{m / p:.2f}x", "report", None)
        record("serve", f"{clients} HLS clients: errors / late segments", f"{m_err} / {m_late}", f"{p_err} / {p_late}",
               "", "0 / 0", m_err == 0 and m_late == 0)
        load_note("HLS clients", before)
        record("serve", f"{clients} HLS clients: server peak RSS", f"{m_rss / 1024:.0f} MiB", f"{p_rss / 1024:.0f} MiB (end)",
               "", "report", None)
        peer_cmds.append(("serve: paced clients / HLS clients",
                          f"reelfs serve (fresh, cold per N); GET {rpath} and {rpath}.m3u8?rung=preview",
                          f"nginx -c {conf} / nginx -c {hls_conf} serving `reelfs hls` output; GET {npath} and /{stem}.preview.m3u8"))
        peer_cmds.append(("serve: TTFB / first frame / whole file / ranges",
                          f"reelfs serve ARCHIVE --listen 127.0.0.1:0 --cache-size 1G (fresh process per round, one GET of {rwarm}, then caches dropped); GET {rpath}",
                          f"nginx -c {conf} (config printed above; one GET of {nwarm}, then caches dropped); GET {npath}"))
        notes.append("serve: first frame = ffmpeg process start + probe + one decode, the same for both servers")
        notes.append(f"serve: paced clients double from 1 until one underruns (at most {PACED_MAX}); "
                     "the clients are Python threads on the same 2 cores as the servers")
    finally:
        nginx.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
