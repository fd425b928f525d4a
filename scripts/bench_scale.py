"""`scripts/bench scale`: issue 18's "scale, shown rather than claimed".

  bigfile  A --scale-file-gib (default 1024, i.e. 1 TiB) QuickTime movie made here in
           seconds: uncompressed 8-bit 4:2:2 ('2vuy') 1024x512 at 24 fps, every frame
           exactly 1 MiB (so 1 TiB is 1,048,576 frames, 12 h 8 min), with a timecode
           track starting 01:00:00:00. The moov is written for real (built from a
           1-second ffmpeg encode, its sample tables extended); the mdat is a hole, so
           the source takes ~1 MiB of disk and every frame decodes (as a dark frame).
           Measured: ingest (read once; dedup stores one chunk), peak RSS of ingest and
           of the mount, `stat` through the mount, a slice of the last hour (stat,
           first byte, ffprobe of the slice), a cold 1 MiB read at 900/1024 of the file,
           `reelfs extract` of 1 GiB (1,000 frames) from the last hour; free disk before
           and after.
  archive  `reelfs synth --unique` catalogs (every extent its own 4 MiB chunk, packs
           as sparse stand-ins with real headers and trailers, no chunk bytes) at each
           size in --scale-tb (default 1,10,100 TB): `ls` of a roll folder, open+first
           byte through a mount, `branch`, `diff` of branches differing in 10 files,
           `log`, catalog bytes, `check` (not deep). Figures at each size are compared
           with the smallest; what is linear by nature is reported with its rate.
  remote   sequential cold read of a --scale-remote-mib file through the mount of an
           archive whose packs are on a local S3 server (--scale-s3-server: s3s-fs, from
           `scripts/install-deps --bench-tools`; or moto, as the tests use), vs `curl` GET
           of the pack object holding it from the same server (>= 0.8x).

--scale-parts bigfile,archive,remote picks parts. `bigfile-build` and `archive-build` only
make the big file's archive (ingest figures kept with it) and the synthetic archives,
under DATA/cache, so these long builds can run at the lowest priority outside the bench
lock; `bigfile` and `archive` then reuse them. Scratch is DATA/run-scale (deleted
afterwards unless --keep).
"""
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

MiB = 1 << 20
GiB = 1 << 30
FRAME = MiB
FPS = 24
W, H = 1024, 512          # 1024 x 512 x 2 bytes = 1 MiB a frame
TC_START = 3600 * FPS     # 01:00:00:00
CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf"}


def _sh(cmd, timeout=None):
    r = subprocess.run(cmd, shell=True, text=True, capture_output=True, timeout=timeout)
    if r.returncode != 0:
        raise SystemExit(f"bench scale: command failed ({r.returncode}): {cmd}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r.stdout


def _loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def _drop_caches():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def _timed(cmd, cold=True):
    if cold:
        _drop_caches()
    t0 = time.perf_counter()
    out = _sh(cmd)
    return time.perf_counter() - t0, out


def _time_v(cmd):
    """Wall seconds and peak RSS (bytes) of `cmd` under /usr/bin/time -v."""
    _drop_caches()
    t0 = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-v", "sh", "-c", cmd], text=True, capture_output=True)
    t = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"bench scale: {cmd} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    return t, int(m.group(1)) * 1024 if m else 0, r.stdout


def _tc(frame):
    f = frame % FPS
    s = frame // FPS
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}:{f:02d}"


# ---------------------------------------------------------------- a big QuickTime movie

def _boxes(data, off=0, end=None):
    end = len(data) if end is None else end
    out = []
    while off + 8 <= end:
        size, typ = struct.unpack(">I4s", data[off:off + 8])
        hdr = 8
        if size == 1:
            size = struct.unpack(">Q", data[off + 8:off + 16])[0]
            hdr = 16
        elif size == 0:
            size = end - off
        body = data[off + hdr:off + size]
        out.append([typ, _boxes(body) if typ in CONTAINERS else body])
        off += size
    return out


def _encode(boxes):
    out = b""
    for typ, body in boxes:
        b = _encode(body) if isinstance(body, list) else body
        out += struct.pack(">I4s", 8 + len(b), typ) + b
    return out


def _find(boxes, typ):
    return [b for b in boxes if b[0] == typ]


def _set_duration(body, ts_off_v0, ts_off_v1, value):
    """Set the duration field after the timescale (mvhd/mdhd) or at a fixed place (tkhd)."""
    ver = body[0]
    off = ts_off_v1 if ver == 1 else ts_off_v0
    fmt = ">Q" if ver == 1 else ">I"
    if ver == 0 and value >= 1 << 32:
        raise SystemExit("bench scale: duration does not fit a version-0 box")
    return body[:off] + struct.pack(fmt, value) + body[off + struct.calcsize(fmt):]


def _timescale(body, off_v0, off_v1):
    return struct.unpack(">I", body[(off_v1 if body[0] == 1 else off_v0):][:4])[0]


def make_big_movie(path, frames, work, log):
    """A real QuickTime movie of `frames` 1 MiB frames whose mdat is a hole."""
    tpl = os.path.join(work, "tpl.mov")
    _sh(f"ffmpeg -nostdin -v error -y -f lavfi -i color=c=black:s={W}x{H}:r={FPS} -frames:v {FPS} "
        f"-c:v rawvideo -pix_fmt uyvy422 -timecode {_tc(TC_START)} -f mov '{tpl}'")
    data = open(tpl, "rb").read()
    top = _boxes(data)
    moov = _find(top, b"moov")[0]
    mvhd = _find(moov[1], b"mvhd")[0]
    movie_ts = _timescale(mvhd[1], 12, 20)
    # The template's tmcd sample (the start frame number) and each track's sample tables.
    tracks = []
    for trak in _find(moov[1], b"trak"):
        mdia = _find(trak[1], b"mdia")[0]
        hdlr = _find(mdia[1], b"hdlr")[0][1]
        kind = hdlr[8:12]
        mdhd = _find(mdia[1], b"mdhd")[0]
        stbl = _find(_find(mdia[1], b"minf")[0][1], b"stbl")[0]
        stts = _find(stbl[1], b"stts")[0][1]
        delta = struct.unpack(">I", stts[12:16])[0]
        tracks.append((kind, trak, mdhd, stbl, _timescale(mdhd[1], 12, 20), delta))
    vid = [t for t in tracks if t[0] == b"vide"]
    tmc = [t for t in tracks if t[0] == b"tmcd"]
    if len(vid) != 1 or len(tmc) != 1:
        raise SystemExit(f"bench scale: the template has tracks {[t[0] for t in tracks]}, expected vide + tmcd")
    vts, vdelta = vid[0][4], vid[0][5]
    chunks = (frames + FPS - 1) // FPS

    def build(mdat_data_at):
        tmcd_at = mdat_data_at
        video_at = mdat_data_at + MiB     # frames start 1 MiB into the data, after the tmcd sample
        for kind, trak, mdhd, stbl, ts, delta in tracks:
            if kind == b"vide":
                dur_media = frames * vdelta
                stbl[1] = [b for b in stbl[1] if b[0] not in (b"stts", b"stsz", b"stsc", b"stco", b"co64", b"stss")]
                stbl[1].append([b"stts", struct.pack(">II", 0, 1) + struct.pack(">II", frames, vdelta)])
                stsc = [(1, FPS, 1)] + ([(chunks, frames % FPS, 1)] if frames % FPS else [])
                stbl[1].append([b"stsc", struct.pack(">II", 0, len(stsc)) + b"".join(struct.pack(">III", *e) for e in stsc)])
                stbl[1].append([b"stsz", struct.pack(">III", 0, FRAME, frames)])
                offs = b"".join(struct.pack(">Q", video_at + i * FPS * FRAME) for i in range(chunks))
                stbl[1].append([b"co64", struct.pack(">II", 0, chunks) + offs])
            else:
                dur_media = frames * vdelta * ts // vts
                stbl[1] = [b for b in stbl[1] if b[0] not in (b"stts", b"stsz", b"stsc", b"stco", b"co64")]
                stbl[1].append([b"stts", struct.pack(">II", 0, 1) + struct.pack(">II", 1, dur_media)])
                stbl[1].append([b"stsc", struct.pack(">II", 0, 1) + struct.pack(">III", 1, 1, 1)])
                stbl[1].append([b"stsz", struct.pack(">III", 0, 4, 1)])
                stbl[1].append([b"co64", struct.pack(">II", 0, 1) + struct.pack(">Q", tmcd_at)])
            mdhd[1] = _set_duration(mdhd[1], 16, 24, dur_media)
            movie_dur = frames * vdelta * movie_ts // vts
            tkhd = _find(trak[1], b"tkhd")[0]
            tkhd[1] = _set_duration(tkhd[1], 20, 28, movie_dur)
            for edts in _find(trak[1], b"edts"):
                for elst in _find(edts[1], b"elst"):
                    b = elst[1]
                    if b[0] == 0 and struct.unpack(">I", b[4:8])[0] >= 1:
                        elst[1] = b[:8] + struct.pack(">I", movie_dur) + b[12:]
        mvhd[1] = _set_duration(mvhd[1], 16, 24, frames * vdelta * movie_ts // vts)
        return _encode([b for b in top if b[0] in (b"ftyp", b"moov")])

    head = build(0)
    # ftyp + moov, padding to a 1 MiB boundary, then a 64-bit mdat header.
    data_at = ((len(head) + 16 + MiB - 1) // MiB) * MiB
    head = build(data_at)
    assert (len(head) + 16 + MiB - 1) // MiB * MiB == data_at
    pad = data_at - 16 - len(head)
    total = data_at + MiB + frames * FRAME
    with open(path, "wb") as f:
        f.write(head)
        f.write(struct.pack(">I4s", pad, b"free") + b"\0" * (pad - 8))
        f.write(struct.pack(">I4sQ", 1, b"mdat", total - (data_at - 16)))
        f.write(struct.pack(">I", TC_START))
        f.truncate(total)
    log(f"bigfile: {path}: {total / GiB:.1f} GiB, {frames} frames ({frames / FPS / 3600:.2f} h), "
        f"{os.stat(path).st_blocks * 512 / MiB:.1f} MiB on disk")
    return total


def _ffprobe(path):
    return json.loads(_sh(f"ffprobe -v error -show_entries stream=codec_type,codec_tag_string,nb_frames,width,height:"
                          f"stream_tags=timecode:format=duration,size -of json '{path}'"))


class Mount:
    def __init__(self, reelfs, archive, mp, extra=()):
        os.makedirs(mp, exist_ok=True)
        self.mp = mp
        self.reelfs = reelfs
        _sh(f"'{reelfs}' mount '{archive}' '{mp}' {' '.join(extra)}")
        out = _sh(f"pgrep -f -- 'mount {archive} {mp}' || true").split()
        self.pid = int(out[0]) if out else None

    def hwm(self):
        if not self.pid:
            return 0
        for line in open(f"/proc/{self.pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    def close(self):
        subprocess.run([self.reelfs, "umount", self.mp], capture_output=True)
        if os.path.ismount(self.mp):
            subprocess.run(["fusermount3", "-u", self.mp], capture_output=True)


def bigfile_cache(args):
    return os.path.join(args.data, "cache", f"scale-bigfile-{args.scale_file_gib}gib")


def build_bigfile(args, reelfs, log):
    """The big movie and its archive, made and ingested once and kept under DATA/cache.
    `--scale-parts bigfile-build` runs only this, so a 1 TiB ingest (about an hour) can
    run at the lowest priority outside the bench lock; its figures are then absolute
    times at the load it saw (recorded with them), and `bigfile` measures the rest."""
    work = bigfile_cache(args)
    done = os.path.join(work, "ingest.json")
    if os.path.exists(done):
        return json.load(open(done))
    shutil.rmtree(work, ignore_errors=True)
    frames = args.scale_file_gib * GiB // FRAME
    src_dir = os.path.join(work, "card")
    os.makedirs(src_dir)
    src = os.path.join(src_dir, "A001C001_big.mov")
    free0 = shutil.disk_usage(work).free
    size = make_big_movie(src, frames, work, log)
    p = _ffprobe(src)
    v = [s for s in p["streams"] if s["codec_type"] == "video"][0]
    probe = (f"bigfile source: ffprobe reads {v.get('nb_frames')} frames {v['width']}x{v['height']} "
             f"'{v.get('codec_tag_string')}', duration {float(p['format']['duration']) / 3600:.2f} h, "
             f"timecode {[s.get('tags', {}).get('timecode') for s in p['streams']]}")
    archive = os.path.join(work, "archive")
    _sh(f"'{reelfs}' init '{archive}'")
    load0 = _loadavg()
    log(f"bigfile: ingesting {size / GiB:.0f} GiB (read once) at load {load0}")
    t, rss, _ = _time_v(f"'{reelfs}' ingest '{archive}' '{src_dir}' --to Day01")
    sched = os.sched_getscheduler(0)
    built = {"frames": frames, "size": size, "src": src, "archive": archive, "free0": free0, "probe": probe,
             "t": t, "rss": rss, "load0": load0, "load1": _loadavg(),
             "priority": f"nice {os.nice(0)}{', SCHED_IDLE' if sched == getattr(os, 'SCHED_IDLE', -1) else ''}"}
    json.dump(built, open(done, "w"))
    log(f"bigfile: ingested in {t:.0f} s ({size / t / MiB:.0f} MiB/s), RSS {rss / MiB:.0f} MiB, load {built['load1']}")
    return built


def bench_bigfile(args, reelfs, record, peer_cmds, notes, log, work):
    sec = "scale: one big file"
    os.makedirs(work)
    built = build_bigfile(args, reelfs, log)
    frames, size, src, archive, free0 = built["frames"], built["size"], built["src"], built["archive"], built["free0"]
    notes.append(built["probe"])
    t, rss = built["t"], built["rss"]
    record(sec, f"ingest of a {size / GiB:.0f} GiB movie (hole mdat; dedup)", f"{t:.0f} s, {size / t / MiB:.0f} MiB/s",
           "-", "-", "read once; RSS bounded", None)
    record(sec, "peak RSS of that ingest", f"{rss / MiB:.0f} MiB", "-", f"{rss / size * 1e6:.2f} B per MB of file", "bounded", rss < 2 * GiB)
    notes.append(f"bigfile ingest ({built['priority']}): load {built['load0']} before, {built['load1']} after")
    st = json.loads(_sh(f"'{reelfs}' stats '{archive}' --json"))
    notes.append(f"bigfile archive: catalog {st.get('catalog_bytes', 0) / MiB:.1f} MiB, unique {st.get('unique_bytes', 0) / MiB:.1f} MiB, "
                 f"packs on disk {sum(os.lstat(os.path.join(r, f)).st_blocks * 512 for r, _, fs in os.walk(os.path.join(archive, 'packs')) for f in fs) / MiB:.1f} MiB, "
                 f"archive folder {_sh(f'du -sm {archive}').split()[0]} MiB")
    mp = os.path.join(work, "mnt")
    rel = "main/Day01/card/A001C001_big.mov"
    _drop_caches()
    m = Mount(reelfs, archive, mp)
    try:
        f = os.path.join(mp, rel)
        t0 = time.perf_counter()
        s = os.stat(f)
        t_stat = time.perf_counter() - t0
        record(sec, "stat through the mount (cold mount)", f"{t_stat * 1e3:.1f} ms", "-", "-", "-", s.st_size == size)
        last_hour = max(0, frames - 3600 * FPS)
        a, b = TC_START + last_hour, TC_START + last_hour + 10 * FPS
        sl = os.path.join(mp, f"{rel}@{_tc(a)}-{_tc(b)}")
        t0 = time.perf_counter()
        ss = os.stat(sl)
        t_sst = time.perf_counter() - t0
        t0 = time.perf_counter()
        with open(sl, "rb") as fh:
            first = fh.read(1)
        t_first = time.perf_counter() - t0
        sp = _ffprobe(sl)
        sv = [x for x in sp["streams"] if x["codec_type"] == "video"][0]
        tcs = [x.get("tags", {}).get("timecode") for x in sp["streams"] if x.get("tags", {}).get("timecode")]
        ok = int(sv.get("nb_frames", 0)) == 10 * FPS and tcs and tcs[0] == _tc(a)
        record(sec, f"slice {_tc(a)}-{_tc(b)} (last hour): stat / first byte", f"{t_sst * 1e3:.1f} / {t_first * 1e3:.1f} ms",
               "-", "-", "< 50 ms lookup", ok and t_sst < 0.05)
        notes.append(f"bigfile slice: {ss.st_size / MiB:.1f} MiB, ffprobe {sv.get('nb_frames')} frames, timecode {tcs}, first byte {first!r}")
        _drop_caches()
        off = size * 900 // 1024
        t0 = time.perf_counter()
        with open(f, "rb") as fh:
            fh.seek(off)
            got = fh.read(MiB)
        t_rand = time.perf_counter() - t0
        record(sec, f"cold 1 MiB read at {off / 1e9:.0f} GB", f"{t_rand * 1e3:.1f} ms", "-", "-", "-", len(got) == MiB)
        record(sec, "mount peak RSS after these", f"{m.hwm() / MiB:.0f} MiB", "-", "-", "bounded", m.hwm() < 2 * GiB)
    finally:
        m.close()
    out = os.path.join(work, "pull")
    ex_a = TC_START + max(0, frames - 3600 * FPS)
    ex_b = ex_a + 1000
    t, rss, _ = _time_v(f"'{reelfs}' extract '{archive}' {rel} --in {_tc(ex_a)} --out-tc {_tc(ex_b)} --out '{out}'")
    pulled = [os.path.join(r, x) for r, _, fs in os.walk(out) for x in fs if x.endswith(".mov")]
    nbytes = sum(os.path.getsize(x) for x in pulled)
    t_cp, _ = _timed(f"dd if='{src}' of='{work}/dd.out' bs=8M skip={(ex_a - TC_START) * FRAME // (8 * MiB)} count={1000 * FRAME // (8 * MiB)} status=none; sync")
    os.unlink(os.path.join(work, "dd.out"))
    record(sec, f"extract of 1000 frames ({nbytes / GiB:.2f} GiB) from the last hour", f"{t:.2f} s, RSS {rss / MiB:.0f} MiB",
           f"dd of the same bytes from the sparse source {t_cp:.2f} s", f"{t_cp / t:.2f}x", "RSS bounded", rss < 2 * GiB and len(pulled) == 1)
    if pulled:
        pv = [x for x in _ffprobe(pulled[0])["streams"] if x["codec_type"] == "video"][0]
        notes.append(f"bigfile extract: {pulled[0]} ffprobe {pv.get('nb_frames')} frames")
    free1 = shutil.disk_usage(work).free
    notes.append(f"bigfile disk: free {free0 / GiB:.1f} GiB before, {free1 / GiB:.1f} GiB after (scratch still present)")
    notes.append("bigfile O(file size): the file's BLAKE3 outboard (one 32-byte CV per 256 KiB block: 16 MiB per "
                 "128 GiB, 128 MiB per TiB) is built in memory during the ingest and stored in the catalog (most of "
                 "the catalog bytes above); the blob record has one extent per chunk and the moov 8 bytes per "
                 "second of video. Nothing else in the rows above grows with the file.")
    peer_cmds.append(("scale extract", f"reelfs extract ARCHIVE {rel} --in TC --out-tc TC+1000 --out DIR",
                      "dd if=SRC of=OUT bs=8M skip=.. count=125; sync"))
    shutil.rmtree(out, ignore_errors=True)


def run(args, reelfs, record, peer_cmds, notes, log):
    parts = args.scale_parts.split(",")
    if set(parts) <= {"bigfile-build", "archive-build"}:
        # Builds only write under DATA/cache: a measuring run (under the bench
        # lock) may be using DATA/run-scale meanwhile.
        if "bigfile-build" in parts:
            build_bigfile(args, reelfs, log)
        if "archive-build" in parts:
            build_archives(args, reelfs, log)
        return
    work = os.path.join(args.data, "run-scale")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    try:
        if "bigfile-build" in parts:
            build_bigfile(args, reelfs, log)
        if "bigfile" in parts:
            bench_bigfile(args, reelfs, record, peer_cmds, notes, log, os.path.join(work, "bigfile"))
        if "archive-build" in parts:
            build_archives(args, reelfs, log)
        if "archive" in parts:
            bench_archive(args, reelfs, record, peer_cmds, notes, log, os.path.join(work, "archive"))
        if "remote" in parts:
            bench_remote(args, reelfs, record, peer_cmds, notes, log, os.path.join(work, "remote"))
    finally:
        for r, ds, _ in os.walk(work):
            for d in ds:
                p = os.path.join(r, d)
                if os.path.ismount(p):
                    subprocess.run(["fusermount3", "-u", p], capture_output=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------- remote reads

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


S3S_FS_HOW = ("scripts/install-deps --bench-tools (builds s3s-fs 0.14.1 from crates.io into "
              "/opt/reelfs-bench-tools, or ~/.local/share/reelfs-bench-tools when not root: a few minutes), "
              "or set REELFS_S3S_FS=/path/to/s3s-fs; or measure against moto with --scale-s3-server moto")


def find_s3s_fs():
    """The s3s-fs binary: $REELFS_S3S_FS, where `install-deps --bench-tools` puts it, or PATH."""
    cands = [os.environ.get("REELFS_S3S_FS", ""), "/opt/reelfs-bench-tools/bin/s3s-fs",
             os.path.expanduser("~/.local/share/reelfs-bench-tools/bin/s3s-fs"), shutil.which("s3s-fs") or ""]
    for c in cands:
        if c and os.access(c, os.X_OK):
            return c
    raise SystemExit(f"bench scale: the remote row reads from s3s-fs, which is not installed. Get it with {S3S_FS_HOW}.")


def start_s3_server(args, work, port, key_id, secret):
    """The S3 server of the remote row on 127.0.0.1:port: s3s-fs (a Rust S3 server over a
    folder, whose ranged GETs cost what they return) by default, or moto (the tests'
    server, whose 4 MiB ranged GETs cost about as much as a whole object)."""
    slog = open(os.path.join(work, "s3-server.log"), "w")
    if args.scale_s3_server == "moto":
        cmd = [args.scale_python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    else:
        root = os.path.join(work, "s3s-root")
        os.makedirs(root)
        cmd = [find_s3s_fs(), "--host", "127.0.0.1", "--port", str(port), "--access-key", key_id, "--secret-key", secret, root]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slog)
    slog.close()
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"bench scale: {cmd[0]} did not start on 127.0.0.1:{port}: "
                     f"{open(os.path.join(work, 's3-server.log')).read()[-2000:]}")


def bench_remote(args, reelfs, record, peer_cmds, notes, log, work):
    """Sequential cold read through the mount of an S3-backed archive vs curl GET of
    the pack object, both from the same S3 server on 127.0.0.1 (--scale-s3-server)."""
    sec = "scale: remote reads"
    os.makedirs(work)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    srv = start_s3_server(args, work, port, "AKIABENCH", "bench-secret")
    server = args.scale_s3_server
    # curl signs as reelfs does (neither server serves private objects anonymously;
    # s3s-fs also checks the signature and wants the payload-hash header signed).
    sign = "--aws-sigv4 aws:amz:us-east-1:s3 --user AKIABENCH:bench-secret -H x-amz-content-sha256:UNSIGNED-PAYLOAD"
    curl = f"curl -sf {sign} -o /dev/null -w '%{{size_download}}'"
    try:
        _sh(f"{curl} -X PUT {url}/bench-scale")
        env = "AWS_ACCESS_KEY_ID=AKIABENCH AWS_SECRET_ACCESS_KEY=bench-secret"
        archive = os.path.join(work, "archive")
        _sh(f"{env} '{reelfs}' init '{archive}' --store s3://bench-scale/a --endpoint {url} --region us-east-1")
        card = os.path.join(work, "card")
        os.makedirs(card)
        n = args.scale_remote_mib * MiB
        _sh(f"openssl enc -aes-128-ctr -nosalt -pass pass:remote -in /dev/zero 2>/dev/null | head -c {n} > '{card}/clip.mov'")
        _sh(f"{env} '{reelfs}' ingest '{archive}' '{card}' --to Day01")
        listing = _sh(f"curl -sf {sign} '{url}/bench-scale?list-type=2&prefix=a%2Fpacks%2F'")
        objs = sorted(((int(s), k) for k, s in re.findall(r"<Key>([^<]+)</Key>.*?<Size>(\d+)</Size>", listing, re.S)), reverse=True)
        size_pack, key = objs[0]
        mp = os.path.join(work, "mnt")
        f = os.path.join(mp, "main/Day01/card/clip.mov")
        mine, peer, ranged = [], [], []
        blocks = min(16, size_pack // (4 * MiB))
        for _ in range(args.runs):
            shutil.rmtree(os.path.join(archive, "cache", "packs"), ignore_errors=True)
            _drop_caches()
            os.makedirs(mp, exist_ok=True)
            _sh(f"{env} '{reelfs}' mount '{archive}' '{mp}'")
            try:
                t0 = time.perf_counter()
                _sh(f"cat '{f}' > /dev/null")
                mine.append(time.perf_counter() - t0)
            finally:
                subprocess.run([reelfs, "umount", mp], capture_output=True)
            _drop_caches()
            t0 = time.perf_counter()
            got = int(_sh(f"{curl} '{url}/bench-scale/{key}'"))
            peer.append(time.perf_counter() - t0)
            if got != size_pack:
                raise SystemExit(f"bench scale: curl got {got} bytes of the {size_pack}-byte pack")
            # The server's own cost of the 4 MiB ranged GETs the mount makes (one at a time).
            _drop_caches()
            t0 = time.perf_counter()
            for b in range(blocks):
                _sh(f"{curl} -r {b * 4 * MiB}-{(b + 1) * 4 * MiB - 1} '{url}/bench-scale/{key}'")
            ranged.append(time.perf_counter() - t0)
        tm, tp = min(mine), min(peer)
        rm, rp = n / tm, size_pack / tp
        record(sec, f"sequential cold read of {n / MiB:.0f} MiB through the mount (packs on {server})",
               f"{rm / MiB:.0f} MiB/s", f"curl GET of its {size_pack / MiB:.0f} MiB pack {rp / MiB:.0f} MiB/s",
               f"{rm / rp:.2f}x", ">= 0.8x", rm / rp >= 0.8)
        rr = blocks * 4 * MiB / min(ranged)
        record(sec, "the server's 4 MiB ranged GETs, one at a time (curl)", f"{rr / MiB:.0f} MiB/s", f"its whole-object GET {rp / MiB:.0f} MiB/s",
               f"{rr / rp:.2f}x", "- (server bound)", None)
        notes.append(f"remote: runs mount {', '.join(f'{n / x / MiB:.0f}' for x in mine)} MiB/s, curl "
                     f"{', '.join(f'{size_pack / x / MiB:.0f}' for x in peer)} MiB/s (alternating, cache and page cache "
                     f"dropped before each); load {_loadavg()}; server {server} on 127.0.0.1")
        peer_cmds.append(("scale remote", "cat MOUNT/main/Day01/card/clip.mov > /dev/null (fresh mount, ARCHIVE/cache/packs emptied)",
                          "curl -o /dev/null http://127.0.0.1:PORT/BUCKET/a/packs/PACK"))
    finally:
        if os.path.ismount(os.path.join(work, "mnt")):
            subprocess.run(["fusermount3", "-u", os.path.join(work, "mnt")], capture_output=True)
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(10)
        except subprocess.TimeoutExpired:
            srv.kill()


# ---------------------------------------------------------------- a 100 TB archive

EXTENTS = 25                 # 25 x 4 MiB = 100 MiB a file, as bench_versioning
FILE_BYTES = EXTENTS * 4 * MiB


def _synth_path(i):
    """src/archive/synth.rs path_of: 100 files a roll, 100 rolls a day."""
    return [f"Day{i // 10_000:04d}", f"R{(i // 100) % 100:03d}", f"C{i:07d}.mov"]


def _files_for(tb):
    return max(1, int(tb * 1e12) // FILE_BYTES)


def archive_cache(args, tb):
    return os.path.join(args.data, "cache", f"scale-archive-{tb:g}tb")


def build_archives(args, reelfs, log, notes=None):
    """The synthetic archives, made once at the lowest priority (outside the bench
    lock: building is not what is measured) and kept under DATA/cache."""
    for tb in [float(x) for x in args.scale_tb.split(",")]:
        arch = archive_cache(args, tb)
        if os.path.exists(os.path.join(arch, ".complete")):
            continue
        shutil.rmtree(arch, ignore_errors=True)
        os.makedirs(os.path.dirname(arch), exist_ok=True)
        n = _files_for(tb)
        _sh(f"'{reelfs}' init '{arch}'")
        log(f"archive: synth {n} files of 100 MiB, every chunk unique ({n * FILE_BYTES / 1e12:.1f} TB), free "
            f"{shutil.disk_usage(args.data).free / GiB:.0f} GiB")
        t0 = time.perf_counter()
        step = 200_000
        for start in range(0, n, step):
            _sh(f"nice -n 19 ionice -c3 '{reelfs}' synth '{arch}' --add {min(step, n - start)} --start {start} --unique "
                f"--extents-per-file {EXTENTS}")
        t = time.perf_counter() - t0
        with open(os.path.join(arch, ".complete"), "w") as f:
            f.write(f"{t:.1f}\n")
        log(f"archive: {tb:g} TB built in {t:.0f} s (nice 19), free {shutil.disk_usage(args.data).free / GiB:.0f} GiB")


_inner = [0.0]


def _reelfs_timed(argv):
    env = dict(os.environ, REELFS_TIMING="1")
    t0 = time.perf_counter()
    r = subprocess.run([str(a) for a in argv], text=True, capture_output=True, stdin=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"bench scale: {' '.join(map(str, argv))} exited {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    m = re.search(r"reelfs: timing: ([0-9.]+) ms in command", r.stderr)
    return (float(m.group(1)) / 1e3 if m else wall), wall, r.stdout


def _best(argvs):
    best = None
    for a in argvs:
        r = _reelfs_timed(a)
        if best is None or r[0] < best[0]:
            best = r
    return best


def bench_archive(args, reelfs, record, peer_cmds, notes, log, work):
    sec = "scale: synthetic archives (unique chunks)"
    build_archives(args, reelfs, log)
    os.makedirs(work)
    tag = os.getpid()
    sizes = [float(x) for x in args.scale_tb.split(",")]
    figures = {}
    for tb in sizes:
        arch = archive_cache(args, tb)
        n = _files_for(tb)
        st = json.loads(_sh(f"'{reelfs}' stats '{arch}' --json"))
        f = {"tb": st["unique_bytes"] / 1e12, "chunks": st["chunks"], "catalog": st["catalog_bytes"], "packs": st["packs"]}
        f["ls"] = _best([[reelfs, "ls", arch, "main/Day0000/R000"] for _ in range(args.runs)])
        f["log"] = _best([[reelfs, "log", arch, "main", "--json"] for _ in range(args.runs)])
        f["branch"] = _best([[reelfs, "branch", arch, f"b{tag}-{i}", "--from", "main"] for i in range(args.runs)])
        _sh(f"'{reelfs}' branch '{arch}' f{tag} --from main")
        _sh(f"'{reelfs}' synth '{arch}' --branch f{tag} --modify 10 --existing {n} --seed {tag % 1000 + 1} --unique "
            f"--extents-per-file {EXTENTS}")
        f["diff"] = _best([[reelfs, "diff", arch, "main", f"f{tag}", "--json"] for _ in range(max(args.runs, 3))])
        changed = len(json.loads(f["diff"][2])["changes"])
        _drop_caches()
        t, rss, out = _time_v(f"REELFS_TIMING=1 '{reelfs}' check '{arch}'")
        f["check"], f["check_rss"] = t, rss
        # Open (and stat) a file through a fresh mount: the stand-in packs hold no
        # chunk bytes, so its content is not read.
        mp = os.path.join(work, f"mnt-{tb:g}")
        # Each round: a fresh mount with the page cache dropped, three files
        # each looked up for the first time. Best over --runs rounds: one cold
        # page read on this disk ranges from 0.1 to over 1 ms, so one round's
        # best of three swung the row from 1.1x to 2.9x between runs.
        opens, mounts, mount_rss = [], [], 0
        for _ in range(args.runs):
            _drop_caches()
            t0 = time.perf_counter()
            m = Mount(reelfs, arch, mp)
            mounts.append(time.perf_counter() - t0)
            try:
                for i in (42, 4242 % n, (n - 1)):
                    p = os.path.join(mp, "main", *_synth_path(i))
                    t0 = time.perf_counter()
                    fd = os.open(p, os.O_RDONLY)
                    os.fstat(fd)
                    os.close(fd)
                    opens.append(time.perf_counter() - t0)
                mount_rss = max(mount_rss, m.hwm())
            finally:
                m.close()
        f["open"], f["mount"], f["mount_rss"] = min(opens), min(mounts), mount_rss
        figures[tb] = f
        notes.append(f"archive {tb:g} TB: {n} files, {f['chunks']} chunks, {f['packs']} packs, catalog {f['catalog'] / MiB:.0f} MiB, "
                     f"diff found {changed} changes, check RSS {rss / MiB:.0f} MiB, mount {f['mount'] * 1e3:.0f} ms (RSS {f['mount_rss'] / MiB:.0f} MiB); "
                     f"load {_loadavg()}")
        # The branches this run made go again, so the cached archive stays as built.
        for b in [f"b{tag}-{i}" for i in range(args.runs)] + [f"f{tag}"]:
            subprocess.run([reelfs, "branch", arch, b, "--delete"], capture_output=True)
    base = figures[sizes[0]]
    ms = lambda x: f"{x * 1e3:.1f} ms"
    for tb in sizes:
        f = figures[tb]
        k = f"{f['tb']:.2f} TB"
        for what, key in (("ls of a 100-file folder", "ls"), ("branch creation", "branch"), ("log of main", "log"),
                          ("diff of branches differing in 10 files", "diff")):
            mine, peer = f[key][0], base[key][0]
            record(sec, f"{what}, {k}", f"{ms(mine)} ({ms(f[key][1])} CLI)", f"{ms(peer)} at {base['tb']:.2f} TB",
                   f"{mine / peer:.2f}x", "within 2x", mine <= 2 * peer)
        record(sec, f"open+fstat through a fresh mount (best of {args.runs}x3 files), {k}", ms(f["open"]), f"{ms(base['open'])} at {base['tb']:.2f} TB",
               f"{f['open'] / base['open']:.2f}x", "within 2x", f["open"] <= 2 * base["open"])
        record(sec, f"catalog on disk, {k}", f"{f['catalog'] / MiB:.0f} MiB", "-", f"{f['catalog'] / max(f['chunks'], 1):.0f} B a chunk",
               "linear (rate)", None)
        record(sec, f"check (not deep), {k}", f"{f['check']:.1f} s, RSS {f['check_rss'] / MiB:.0f} MiB", "-",
               f"{f['chunks'] / f['check'] / 1e6:.2f} M chunks/s", "linear (rate)", None)
    peer_cmds.append(("scale archive", "reelfs ls|branch|log|diff|check ARCHIVE ... (time inside the command, REELFS_TIMING=1)",
                      "the same at the smallest size"))
