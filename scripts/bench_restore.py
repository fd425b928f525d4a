"""`scripts/bench restore`: issue 16's restore and extract rows, A/B in the same rounds.

Called from scripts/bench (`B` is that script's module: its helpers, its REELFS, its
report). Needs less disk than `bench readpath` (about 3 x the media set at the peak):

- `reelfs restore` of the media set (`--size-gb` GiB clip + 8 x 128 MiB clips of
  random bytes) / `cp -a` of the same folder (>= 0.9x), cold, sync included;
- `reelfs extract` of `--restore-pull-s` seconds of a 1080p ProRes HQ clip (testsrc2,
  made once by stream-copying one encoded piece, every frame stamped unique) / `cp`
  of the extracted file to the same disk (>= 0.8x), cold, sync included.

Each round runs every side (--restore-ab BASE, then ours; the order flips each round)
and the peer once; every row is the best of --runs rounds. User and system CPU of each
side's best round come from /usr/bin/time. `--restore-rows restore,extract` picks rows.
"""
import json
import os
import re
import subprocess
import time

GiB = 1 << 30
MiB = 1 << 20
PIECE_FRAMES = 1001   # one encoded piece, 41.7 s at 23.976


def timed_cpu(B, cmd):
    """(wall s, user s, sys s, stdout) of `cmd`, page cache dropped before, sync included."""
    B.drop_caches()
    t0 = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "CPU %U %S", "sh", "-c", cmd], text=True, capture_output=True)
    if r.returncode != 0:
        raise SystemExit(f"bench: command failed ({r.returncode}): {cmd}\n{r.stdout}\n{r.stderr}")
    subprocess.run(["sync"], check=True)
    wall = time.perf_counter() - t0
    m = re.findall(r"CPU ([0-9.]+) ([0-9.]+)", r.stderr)
    user, sys_ = (float(m[-1][0]), float(m[-1][1])) if m else (0.0, 0.0)
    return wall, user, sys_, r.stdout


def prores_clip(B, args):
    """The extract source: `plays` copies of one encoded 1080p ProRes HQ piece (cached)."""
    d = os.path.join(args.data, "cache", "restore-slice")
    plays = max(1, -(-int(args.restore_pull_s * 1.5) // 42))
    path = os.path.join(d, f"P001C001_proreshq_{plays}x.mov")
    if os.path.exists(path):
        return path, plays
    os.makedirs(d, exist_ok=True)
    piece = os.path.join(d, "piece-1080p-hq.mov")
    if not os.path.exists(piece):
        B.log("encoding one 1001-frame 1080p ProRes HQ piece (once; cached)")
        B.sh(f"ffmpeg -nostdin -v error -y -f lavfi -i 'testsrc2=s=1920x1080:r=24000/1001' "
             f"-f lavfi -i 'sine=f=1000:r=48000,atrim=end_sample=2002000' "
             f"-f lavfi -i 'sine=f=1500:r=48000,atrim=end_sample=2002000' -map 0 -map 1 -map 2 "
             f"-frames:v {PIECE_FRAMES} -c:v prores -profile:v 3 -pix_fmt yuv422p10le "
             f"-color_primaries bt709 -color_trc bt709 -colorspace bt709 -c:a pcm_s24le '{piece}.part.mov'")
        os.rename(piece + ".part.mov", piece)
    tmp = B._loop_prores(piece, path, plays, "P001")
    n = B._unique_frames(tmp)
    if n != plays * PIECE_FRAMES:
        raise SystemExit(f"bench: stamped {n} frames in {tmp}, expected {plays * PIECE_FRAMES}")
    subprocess.run(["sync"], check=True)
    os.rename(tmp, path)
    return path, plays


def run(B, args, run_dir):
    rows = [r for r in args.restore_rows.split(",") if r]
    ours = B.REELFS
    sides = [("ours", ours)]
    if args.restore_ab:
        sides = [("base", os.path.abspath(args.restore_ab)), ("ours", ours)]
    if "restore" in rows:
        bench_restore(B, args, run_dir, sides)
    if "extract" in rows:
        bench_extract(B, args, run_dir, sides)


def rounds(B, args, sides, measure_side, measure_peer):
    t = {s: [] for s, _ in sides}
    peer = []
    loads = []
    for i in range(args.runs):
        loads.append(B.loadavg())
        B.log(f"round {i + 1}/{args.runs} (load {loads[-1]})")
        for side, binary in (sides if i % 2 == 0 else list(reversed(sides))):
            t[side].append(measure_side(binary, i))
            B.log(f"  {side}: {t[side][-1][0]:.2f} s (user {t[side][-1][1]:.2f} s, sys {t[side][-1][2]:.2f} s)")
        peer.append(measure_peer(i))
        B.log(f"  peer: {peer[-1][0]:.2f} s (user {peer[-1][1]:.2f} s, sys {peer[-1][2]:.2f} s)")
    return t, peer, loads


def report(B, sec, what, nbytes, sides, t, peer, target):
    bp = min(peer)
    for side, _ in sides:
        tag = "" if side == "ours" else " (A/B base)"
        b = min(t[side])
        B.record(sec, f"{what}{tag}", f"{B.fmt_rate(nbytes, b[0])} (cpu {b[1]:.2f}+{b[2]:.2f} s)",
                 f"{B.fmt_rate(nbytes, bp[0])} (cpu {bp[1]:.2f}+{bp[2]:.2f} s)", f"{bp[0] / b[0]:.2f}x",
                 f">= {target}x", bp[0] / b[0] >= target)
        B.notes.append(f"{what} {side} rounds (s): " + " ".join(f"{x[0]:.2f}" for x in t[side]))
    B.notes.append(f"{what} peer rounds (s): " + " ".join(f"{x[0]:.2f}" for x in peer))


def bench_restore(B, args, run_dir, sides):
    B.ensure_media(args)
    src = B.media_dir(args)
    nbytes = B.media_bytes(args)
    B.need_space(args.data, 2 * nbytes, "restore (archive + one copy at a time)")
    arch = os.path.join(run_dir, "archive-restore")
    dst = os.path.join(run_dir, "copy")
    B.rmrf(arch)
    B.sh(f"'{sides[-1][1]}' init '{arch}'")
    B.log("ingesting the media set (once, not timed)")
    B.sh(f"'{sides[-1][1]}' ingest '{arch}' '{src}' --json")
    clip_rel = "Day01/A001/A001C001.mov"

    def side(binary, i):
        B.rmrf(dst)
        r = timed_cpu(B, f"'{binary}' restore '{arch}' main/media '{dst}'")
        if i == 0:
            B.sh(f"cmp '{B.big_clip(args)}' '{os.path.join(dst, clip_rel)}'")
        B.rmrf(dst)
        return r[:3]

    def peer(i):
        B.rmrf(dst)
        r = timed_cpu(B, f"cp -a '{src}' '{dst}'")
        B.rmrf(dst)
        return r[:3]

    t, p, loads = rounds(B, args, sides, side, peer)
    sec = f"restore (best of {args.runs}; cold; sync included; load {' / '.join(loads)})"
    report(B, sec, f"restore {nbytes / GiB:.1f} GiB / cp -a", nbytes, sides, t, p, 0.9)
    B.peer_cmds.append(("restore", f"reelfs restore ARCHIVE main/media DEST ; sync", f"cp -a {src} DEST ; sync"))
    B.rmrf(arch)


def bench_extract(B, args, run_dir, sides):
    clip, plays = prores_clip(B, args)
    clip_bytes = os.path.getsize(clip)
    B.need_space(args.data, 2 * clip_bytes, "extract (archive + a pull and its copy)")
    arch = os.path.join(run_dir, "archive-extract")
    B.rmrf(arch)
    src_dir = os.path.join(run_dir, "extract-src")
    os.makedirs(src_dir, exist_ok=True)
    lname = os.path.basename(clip)
    if not os.path.exists(os.path.join(src_dir, lname)):
        os.link(clip, os.path.join(src_dir, lname))
    B.sh(f"'{sides[-1][1]}' init '{arch}'")
    B.log(f"ingesting the ProRes clip ({clip_bytes / GiB:.2f} GiB; once, not timed)")
    B.sh(f"'{sides[-1][1]}' ingest '{arch}' '{src_dir}' --to x --json")
    frames = int(args.restore_pull_s * 24)
    first = 24 * 10
    in_tc, out_tc = B.tc2398(first), B.tc2398(first + frames)
    xdir = os.path.join(run_dir, "x-reelfs")
    cp_dst = os.path.join(run_dir, "x-cp.mov")
    pulled = {}

    def side(binary, i):
        B.rmrf(xdir)
        r = timed_cpu(B, f"'{binary}' extract '{arch}' main/x/extract-src/{lname} --in {in_tc} --out-tc {out_tc} --out '{xdir}' --json")
        rep = json.loads(r[3])
        pull = rep["pulls"][0]
        if rep["extracted"] != 1 or pull["frames"] != frames:
            raise SystemExit(f"bench: extract did not pull {frames} frames: {r[3]}")
        h = B.sh(f"sha256sum < '{pull['output']}'").strip() if i == 0 else None
        if h is not None:
            if pulled.setdefault("b3", h) != h:
                raise SystemExit("bench: the two binaries extracted different bytes")
        pulled["bytes"] = pull["bytes"]
        # Keep one pull for the peer's cp of the same bytes.
        keep = os.path.join(run_dir, "x-keep.mov")
        if not os.path.exists(keep):
            os.rename(pull["output"], keep)
        B.rmrf(xdir)
        return r[:3]

    def peer(i):
        B.rmrf(cp_dst)
        r = timed_cpu(B, f"cp '{os.path.join(run_dir, 'x-keep.mov')}' '{cp_dst}'")
        B.rmrf(cp_dst)
        return r[:3]

    t, p, loads = rounds(B, args, sides, side, peer)
    nbytes = pulled["bytes"]
    sec = (f"extract {args.restore_pull_s:.0f} s ({frames} frames, {nbytes / GiB:.2f} GiB) of a {plays * 41.7 / 60:.1f}-min "
           f"1080p ProRes HQ clip (best of {args.runs}; cold; sync included; load {' / '.join(loads)})")
    report(B, sec, "reelfs extract / cp of the same bytes", nbytes, sides, t, p, 0.8)
    B.peer_cmds.append(("extract", f"reelfs extract ARCHIVE main/x/extract-src/{lname} --in {in_tc} --out-tc {out_tc} --out DIR ; sync",
                        "cp <the extracted file> <same disk> ; sync"))
    B.rmrf(os.path.join(run_dir, "x-keep.mov"))
    B.rmrf(arch)
    B.rmrf(src_dir)
