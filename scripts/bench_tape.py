"""`scripts/bench tape`: reelfs writing LTFS volumes vs the plain tools a coordinator uses.

Called from scripts/bench (`B` is that script's module: its helpers, its REELFS, its
report). Rows, each the best of --runs rounds, every timed command run cold (page cache
dropped) with its wall time and its CPU seconds (user + system, every process it ran):

- `tape write --ltfs-mount` onto a plain folder standing in for an LTFS mount vs
  `rsync -a` of the same files from a plain copy (target >= 1x). The set is the ingest
  media set (one large clip, eight 128 MiB clips) plus many small sidecars (XML, WAV,
  CDL: what comes off a camera card beside the clips).
- copy B of the same plan (`--copies 2`): what the second cartridge of an A/B set costs.
- `tape verify` vs `cat` of every file on the volume (target >= 0.9x).
- MB/s against LTO-8's 300 MB/s native.
- `tape write --device` onto a file-emulated cartridge vs `cp -r` onto a plain folder
  (target >= 0.8x).
- recall of 100 files spread over a cartridge, in tape order vs in path order
  (`tape recall --order given`): backward locates counted by the emulated drive, and time.

--tape-block-size SIZE formats our side's emulated cartridge with that LTFS block size
(`tape format --block-size`; the base side keeps the default).

--tape-ab BINARY measures a second reelfs (the base) in the same rounds, alternating
base/ours, so both see the same load; its rows are marked "(A/B base)".

The peers (`rsync -a`, `cat`, `cp -r`) run right beside each side's own command in every
round (`cp -r` before `--device` in odd rounds and after it in even ones), not once per round: the bench disk is shared and its speed drifts (`rsync -a` of
the same set took 2.57 s in one quiet run and 7.2 s in another), so a peer measured minutes
away from the command it is compared with says little.
Each row is still best of ours against best of the peer; the notes add the median of the
paired (same minute) ratios.
"""
import json
import os
import random
import resource
import statistics
import time

SIDECARS = 400          # small files beside the clips
RECALL_FILES = 100
RECALL_FILE_BYTES = 4 << 20


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed_cpu(B, cmd, sync_after=True):
    """Wall and CPU seconds of `cmd`, cold (B.timed drops the page cache first)."""
    c0 = cpu_seconds()
    t, out = B.timed(cmd, sync_after=sync_after)
    return t, cpu_seconds() - c0, out


def tape_source(B, args):
    """The ingest media set (hard links: no second copy) plus SIDECARS small files."""
    root = os.path.join(args.data, "cache", f"tape-{args.size_gb}g")
    src = os.path.join(root, "media")
    stamp = os.path.join(root, ".complete")
    if os.path.exists(stamp):
        return src
    B.ensure_media(args)
    B.rmrf(root)
    media = B.media_dir(args)
    for dirpath, _, files in os.walk(media):
        for f in files:
            to = os.path.join(src, os.path.relpath(os.path.join(dirpath, f), media))
            os.makedirs(os.path.dirname(to), exist_ok=True)
            os.link(os.path.join(dirpath, f), to)
    rnd = random.Random(15)
    for i in range(SIDECARS):
        card = f"A{i // 100 + 3:03d}"
        ext = ("xml", "wav", "cdl", "ale")[i % 4]
        p = os.path.join(src, "Day01", card, "sidecar", f"{card}C{i % 100:03d}.{ext}")
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as fh:
            fh.write(rnd.randbytes(rnd.choice((4 << 10, 16 << 10, 64 << 10, 256 << 10))))
    B.sh("sync")
    open(stamp, "w").close()
    return src


def tree_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def paired_median(peer, ours):
    """Median of peer/ours over rounds measured side by side (wall seconds)."""
    return statistics.median(p[0] / o[0] for p, o in zip(peer, ours))


def plan(B, binary, arch, copies=1, sel="main/media"):
    return json.loads(B.sh(f"'{binary}' tape plan '{arch}' {sel} --copies {copies} --json"))


def run(B, args, run_dir):
    rows = set(args.tape_rows.split(","))
    ours = B.REELFS
    if "write" in rows or "device" in rows:
        write_rows(B, args, run_dir, rows)
    if "recall" in rows:
        recall(B, args, run_dir, ours)


def write_rows(B, args, run_dir, rows):
    src = tape_source(B, args)
    nbytes = tree_bytes(src)
    nfiles = sum(len(fs) for _, _, fs in os.walk(src))
    # At most two copies of the set at once: the archive and one of the volume, the
    # rsync copy, the cp copy or the cartridge (each peer copy is removed before the
    # volume it is compared with is written).
    B.need_space(args.data, 2 * nbytes, "tape rounds (archive + one volume or peer copy)")
    ours = B.REELFS
    sides = [("ours", ours)]
    if args.tape_ab:
        sides = [("base", os.path.abspath(args.tape_ab)), ("ours", ours)]
    arch = os.path.join(run_dir, "tape-archive")

    def fresh_archive():
        # Copy A must take every hash itself: an archive whose catalog already
        # holds another cartridge's hashes of the same bytes would let it reuse them.
        B.rmrf(arch)
        B.sh(f"'{ours}' init '{arch}'")
        B.sh(f"'{ours}' ingest '{arch}' '{src}' --json")

    fresh_archive()
    vol, peer = os.path.join(run_dir, "ltfs"), os.path.join(run_dir, "rsync-copy")
    w = {s: [] for s, _ in sides}      # (wall, cpu) of copy A
    wb = {s: [] for s, _ in sides}     # copy B
    v = {s: [] for s, _ in sides}
    reused = {}
    rs, cat = [], []
    rs_by = {s: [] for s, _ in sides}     # the rsync run just before each copy A
    cat_by = {s: [] for s, _ in sides}    # the cat run just after each verify
    B.log(f"tape: {nfiles} files, {nbytes / B.GiB:.2f} GiB; sides {', '.join(s for s, _ in sides)}")
    for r in range(args.runs if "write" in rows else 0):
        for name, binary in sides:
            B.rmrf(vol)
            os.makedirs(vol)
            fresh_archive()
            p = plan(B, binary, arch, copies=2)
            a_bc = next(t["barcode"] for t in p["tapes"] if t["copy"] == 1)
            b_bc = next(t["barcode"] for t in p["tapes"] if t["copy"] == 2)
            B.rmrf(peer)
            t, c, _ = timed_cpu(B, f"rsync -a '{src}/' '{peer}/'")
            rs.append((t, c))
            rs_by[name].append((t, c))
            B.rmrf(peer)
            B.log(f"round {r + 1}/{args.runs} {name}: tape write copy A to {a_bc} (load {B.loadavg()})")
            t, c, out = timed_cpu(B, f"'{binary}' tape write '{arch}' {p['name']} --tape {a_bc} --ltfs-mount '{vol}' --json")
            if json.loads(out)["write"].get("hashes_reused", 0):
                raise SystemExit(f"bench: copy A reused hashes: {out[:500]}")
            w[name].append((t, c))
            t, c, _ = timed_cpu(B, f"'{binary}' tape verify '{arch}' --tape {a_bc} --ltfs-mount '{vol}' --json", sync_after=False)
            v[name].append((t, c))
            t, c, _ = timed_cpu(B, f"find '{vol}' -type f -exec cat {{}} + > /dev/null", sync_after=False)
            cat.append((t, c))
            cat_by[name].append((t, c))
            B.rmrf(vol)
            os.makedirs(vol)
            B.log(f"round {r + 1}/{args.runs} {name}: tape write copy B to {b_bc}")
            t, c, out = timed_cpu(B, f"'{binary}' tape write '{arch}' {p['name']} --tape {b_bc} --ltfs-mount '{vol}' --json")
            wb[name].append((t, c))
            reused[name] = json.loads(out)["write"].get("hashes_reused")
            B.rmrf(vol)
    best = lambda xs: min(xs)
    for name, _ in sides if rs else []:
        rsb = best(rs)
        tag = " (A/B base)" if name == "base" else ""
        wa, wbb, vv, cc = best(w[name]), best(wb[name]), best(v[name]), best(cat)
        B.record("tape", f"write --ltfs-mount copy A vs rsync -a{tag}", f"{B.fmt_s(wa[0])} {B.fmt_rate(nbytes, wa[0])}",
                 B.fmt_s(rsb[0]), f"{rsb[0] / wa[0]:.2f}x", ">= 1x", rsb[0] / wa[0] >= 1.0)
        B.record("tape", f"write --ltfs-mount copy B vs rsync -a{tag}", f"{B.fmt_s(wbb[0])} {B.fmt_rate(nbytes, wbb[0])}",
                 B.fmt_s(rsb[0]), f"{rsb[0] / wbb[0]:.2f}x", ">= 1x", rsb[0] / wbb[0] >= 1.0)
        B.record("tape", f"verify vs cat of the volume{tag}", f"{B.fmt_s(vv[0])} {B.fmt_rate(nbytes, vv[0])}", B.fmt_s(cc[0]),
                 f"{cc[0] / vv[0]:.2f}x", ">= 0.9x", cc[0] / vv[0] >= 0.9)
        B.record("tape", f"write copy A vs LTO-8 native 300 MB/s{tag}", f"{nbytes / wa[0] / 1e6:.0f} MB/s", "300 MB/s",
                 f"{nbytes / wa[0] / 1e6 / 300:.2f}x", "-", None)
        gb = nbytes / 1e9
        B.notes.append(f"tape {name}, median of the paired rounds' ratios: copy A / rsync -a "
                       f"{paired_median(rs_by[name], w[name]):.2f}x, copy B / rsync -a {paired_median(rs_by[name], wb[name]):.2f}x, "
                       f"verify / cat {paired_median(cat_by[name], v[name]):.2f}x")
        B.notes.append(f"tape {name}: copy B reused copy A's hashes for {reused.get(name)} of {nfiles} files; "
                       f"CPU-s per GB (best round's): write copy A {wa[1] / gb:.2f}, copy B {wbb[1] / gb:.2f}, "
                       f"verify {vv[1] / gb:.2f}; rsync -a {rsb[1] / gb:.2f}, cat {cc[1] / gb:.2f}")
        B.notes.append(f"tape {name} rounds (wall s / CPU s): copy A " + " ".join(f"{t:.2f}/{c:.2f}" for t, c in w[name])
                       + " | copy B " + " ".join(f"{t:.2f}/{c:.2f}" for t, c in wb[name])
                       + " | verify " + " ".join(f"{t:.2f}/{c:.2f}" for t, c in v[name]))
    if rs:
        B.notes.append("tape rounds (wall s / CPU s): rsync -a " + " ".join(f"{t:.2f}/{c:.2f}" for t, c in rs)
                       + " | cat " + " ".join(f"{t:.2f}/{c:.2f}" for t, c in cat))

    # --device: a cartridge emulated in a folder, formatted a little larger than the set.
    cart, cp_dir = os.path.join(run_dir, "cartridge"), os.path.join(run_dir, "cp-copy")
    d = {s: [] for s, _ in sides}
    cps = []
    cp_by = {s: [] for s, _ in sides}     # the cp run just before each --device write
    for r in range(args.runs if "device" in rows else 0):
        for name, binary in sides:
            B.rmrf(cart)
            os.makedirs(cart)
            fresh_archive()
            p = plan(B, binary, arch)
            bc = p["tapes"][0]["barcode"]
            # --tape-block-size formats our side's cartridge with a larger LTFS
            # block size (the base binary may not have the option).
            bs = f" --block-size {args.tape_block_size}" if args.tape_block_size and name == "ours" else ""
            B.sh(f"'{binary}' tape format --device '{cart}' --tape {bc} --capacity {nbytes * 11 // 10 // 10**6 + 200}M{bs}")
            B.rmrf(cp_dir)

            def peer():
                t, c, _ = timed_cpu(B, f"cp -r '{src}' '{cp_dir}'")
                cps.append((t, c))
                cp_by[name].append((t, c))
                B.rmrf(cp_dir)

            def device():
                B.log(f"round {r + 1}/{args.runs} {name}: tape write --device to {bc} (load {B.loadavg()})")
                t, c, _ = timed_cpu(B, f"'{binary}' tape write '{arch}' {p['name']} --tape {bc} --device '{cart}' --json")
                d[name].append((t, c))
                B.rmrf(cart)

            # Which of the pair goes first alternates: the second one starts
            # right after the first one's copy of the set was deleted. On this
            # disk (ext4 mounted with `discard`) the command that ran second
            # began with 9-12 s at 30-200 MB/s, the cores waiting on I/O, where
            # the first ran at 600-750 MB/s (vmstat, 17 GB set): most likely
            # the host still trimming the deleted copy.
            for step in ((peer, device) if r % 2 == 0 else (device, peer)):
                step()
    for name, _ in sides if cps else []:
        cpb = best(cps)
        tag = " (A/B base)" if name == "base" else ""
        dd = best(d[name])
        if args.tape_block_size and name == "ours":
            tag += f" (--block-size {args.tape_block_size})"
        B.record("tape", f"write --device (emulated cartridge) vs cp -r{tag}", f"{B.fmt_s(dd[0])} {B.fmt_rate(nbytes, dd[0])}",
                 B.fmt_s(cpb[0]), f"{cpb[0] / dd[0]:.2f}x", ">= 0.8x", cpb[0] / dd[0] >= 0.8)
        B.record("tape", f"write --device vs LTO-8 native 300 MB/s{tag}", f"{nbytes / dd[0] / 1e6:.0f} MB/s", "300 MB/s",
                 f"{nbytes / dd[0] / 1e6 / 300:.2f}x", "-", None)
        B.notes.append(f"tape {name} --device / cp -r, median of the paired rounds' ratios: {paired_median(cp_by[name], d[name]):.2f}x")
        B.notes.append(f"tape {name} --device rounds (wall s / CPU s): " + " ".join(f"{t:.2f}/{c:.2f}" for t, c in d[name])
                       + f"; CPU-s per GB {dd[1] / (nbytes / 1e9):.2f}")
    if cps:
        B.notes.append("tape cp -r rounds (wall s / CPU s): " + " ".join(f"{t:.2f}/{c:.2f}" for t, c in cps)
                       + f"; CPU-s per GB {cpb[1] / (nbytes / 1e9):.2f}")
    B.rmrf(arch)


def recall(B, args, run_dir, binary):
    """100 files spread over a cartridge, recalled in tape order and in path order.
    The cartridge is laid out as a facility writes a shoot: camera cards in the order
    they came off set (A001, B001, A002, B002, ...), so a pull list sorted by path
    (every A card, then every B card) crosses the tape back and forth."""
    src = os.path.join(args.data, "cache", "tape-recall", "media")
    stamp = os.path.join(os.path.dirname(src), ".complete")
    cards = [f"{cam}{n:03d}" for n in range(1, 11) for cam in "AB"]
    if not os.path.exists(stamp):
        B.rmrf(os.path.dirname(src))
        for ci, card in enumerate(cards):
            for k in range(RECALL_FILES // len(cards)):
                B.gen_random_file(os.path.join(src, card, f"{card}C{k + 1:03d}.mov"), RECALL_FILE_BYTES, f"recall-{card}-{k}")
        open(stamp, "w").close()
    arch, cart = os.path.join(run_dir, "recall-archive"), os.path.join(run_dir, "recall-cartridge")
    B.rmrf(arch), B.rmrf(cart)
    os.makedirs(cart)
    B.sh(f"'{binary}' init '{arch}'")
    B.sh(f"'{binary}' ingest '{arch}' '{src}' --json")
    p = plan(B, binary, arch, sel=" ".join(f"main/media/{c}" for c in cards))
    bc = p["tapes"][0]["barcode"]
    B.sh(f"'{binary}' tape format --device '{cart}' --tape {bc} --capacity {RECALL_FILES * RECALL_FILE_BYTES * 2 // 10**6 + 200}M")
    B.sh(f"'{binary}' tape write '{arch}' {p['name']} --tape {bc} --device '{cart}' --verify --json")
    paths = sorted(f"main/media/{c}/{f}" for c in cards for f in os.listdir(os.path.join(src, c)))
    pull = list(paths)
    random.Random(100).shuffle(pull)
    orders = {"tape": ("tape", paths), "path": ("given", paths), "pull": ("given", pull)}
    res = {k: [] for k in orders}
    for r in range(args.runs):
        for key, (order, asked) in orders.items():
            B.sh(f"'{binary}' tape release '{arch}' {p['name']} --json")
            t, c, out = timed_cpu(B, f"'{binary}' tape recall '{arch}' {' '.join(asked)} --from {bc} --device '{cart}' --order {order} --json",
                                  sync_after=False)
            rep = json.loads(out)
            if len(rep["recalled"]) != len(paths):
                raise SystemExit(f"bench: recall ({key}) brought back {len(rep['recalled'])} of {len(paths)} files: {out[:2000]}")
            res[key].append((t, rep.get("seeks") or {}))
    for key, label in (("tape", "tape order (reelfs)"), ("path", "path order (--order given)"),
                       ("pull", "shuffled pull list (--order given)")):
        t, s = min(res[key], key=lambda x: x[0])
        B.record("tape", f"recall {RECALL_FILES} files, {label}",
                 f"{B.fmt_s(t)}, {s.get('backward', '?')} backward locates", "-", "-", "-", None)
        B.notes.append(f"tape recall, {label}: locates {s.get('locates')}, backward {s.get('backward')}, blocks travelled "
                       f"back {s.get('blocks_back')}; wall (s) " + " ".join(f"{x:.2f}" for x, _ in res[key]))
    B.notes.append(f"tape recall: {RECALL_FILES} files of {RECALL_FILE_BYTES >> 20} MiB on 20 camera cards written in shoot order "
                   f"(A001, B001, A002, ...); an emulated drive locates for free, so the wall times barely differ: on LTO "
                   f"each backward locate costs tens of seconds")
    B.rmrf(arch), B.rmrf(cart)
