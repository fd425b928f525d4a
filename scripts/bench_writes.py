#!/usr/bin/env python3
"""A/B of the sequential-write row (issue 16): `cp` of one file into a branch of the
mount, for two reelfs binaries in alternating rounds, against `cp` to the same disk.

    python3 scripts/bench_writes.py --base BASE_BIN --new NEW_BIN \
        --data /var/tmp/bench-writes --size-gib 2 --runs 3

Each round: page cache dropped, `cp SRC MOUNT/main/clip.bin; sync` timed (close makes
the copy durable through the mount, `sync` the plain copy), the daemon's CPU seconds
read from /proc just before unmounting; then `cp SRC DISK/clip.bin; sync` the same way.
Best of the rounds per side; the load average is printed with each figure. Run as
root (drops the page cache) and at normal priority, with nothing else running."""

import argparse
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "acceptance"))
import helpers  # noqa: E402

GiB = 1 << 30
CLK = os.sysconf("SC_CLK_TCK")


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def drop_caches():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def cpu_seconds(pid):
    """utime + stime of a process (with its finished threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def timed_cp(src, dst):
    drop_caches()
    t0 = time.perf_counter()
    subprocess.run(["cp", src, dst], check=True)
    subprocess.run(["sync"], check=True)
    return time.perf_counter() - t0


def through_mount(binary, data, src, mount_opts):
    arch, mnt = os.path.join(data, "archive"), os.path.join(data, "mnt")
    shutil.rmtree(arch, ignore_errors=True)
    subprocess.run([binary, "init", arch], check=True, capture_output=True)

    def run(*args, timeout=600, env=None):
        return subprocess.run([binary, *map(str, args)], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout, env=env)

    with helpers.Mount(run, arch, mnt, *mount_opts) as m:
        t = timed_cp(src, os.path.join(mnt, "main", "clip.bin"))
        cpu = cpu_seconds(m.pid)
        hwm = m.status("VmHWM") // 1024
    shutil.rmtree(arch, ignore_errors=True)
    return t, cpu, hwm


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="the reelfs binary to compare against")
    ap.add_argument("--new", required=True, help="the reelfs binary measured")
    ap.add_argument("--data", required=True, help="work folder outside the repository (deleted files only)")
    ap.add_argument("--size-gib", type=float, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--new-opts", default="", help="extra `reelfs mount` options for --new")
    ap.add_argument("--ingest", action="store_true",
                    help="measure the ingest row instead: `reelfs ingest` of the source folder per binary against `cp -a`")
    ap.add_argument("--taskset", default=None, help="CPU list to pin every measured command to (e.g. 0 for one core)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_writes: run as root (it drops the page cache)")
    os.makedirs(args.data, exist_ok=True)
    src = os.path.join(args.data, "src.bin")
    size = int(args.size_gib * GiB)
    if not os.path.exists(src) or os.path.getsize(src) != size:
        with open(src, "wb") as f:
            for _ in range(size // (64 << 20)):
                f.write(os.urandom(64 << 20))
            f.write(os.urandom(size % (64 << 20)))
    if args.ingest:
        return ingest_ab(args, src, size)
    plain = os.path.join(args.data, "plain.bin")
    best = {"base": None, "new": None, "cp": None}
    for r in range(args.runs):
        for side, binary, opts in (("base", args.base, []), ("new", args.new, args.new_opts.split())):
            t, cpu, hwm = through_mount(binary, args.data, src, opts)
            print(f"round {r + 1} {side}: {size / t / (1 << 20):.0f} MiB/s ({t:.2f} s), daemon CPU {cpu:.2f} s, "
                  f"peak RSS {hwm} MiB, load {loadavg()}", flush=True)
            if best[side] is None or t < best[side][0]:
                best[side] = (t, cpu)
        t = timed_cp(src, plain)
        os.unlink(plain)
        print(f"round {r + 1} cp to disk: {size / t / (1 << 20):.0f} MiB/s ({t:.2f} s), load {loadavg()}", flush=True)
        best["cp"] = min(best["cp"] or t, t)
    cp = best["cp"]
    for side in ("base", "new"):
        t, cpu = best[side]
        print(f"best {side}: {cp / t:.2f}x cp ({size / t / (1 << 20):.0f} vs {size / cp / (1 << 20):.0f} MiB/s), "
              f"daemon CPU {cpu:.2f} s")
    print(f"new / base: {best['base'][0] / best['new'][0]:.2f}x")
    os.unlink(src)


def timed_cmd(cmd, pin):
    """Wall time of `cmd; sync` from a dropped page cache, and its user+sys CPU seconds."""
    drop_caches()
    if pin:
        cmd = ["taskset", "-c", pin, *cmd]
    t0 = time.perf_counter()
    before = os.times()
    subprocess.run(cmd, check=True, capture_output=True)
    subprocess.run(["sync"], check=True)
    t = time.perf_counter() - t0
    after = os.times()
    return t, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def ingest_ab(args, src, size):
    """Ingest of a folder holding the source file, per binary in alternating rounds, against
    `cp -a` of the same folder to the same disk (the ingest row of issue 16)."""
    folder = os.path.join(args.data, "ingest-src")
    os.makedirs(folder, exist_ok=True)
    clip = os.path.join(folder, "clip.bin")
    if not os.path.exists(clip):
        os.link(src, clip)
    arch, plain = os.path.join(args.data, "archive"), os.path.join(args.data, "cp-a")
    best = {}
    for r in range(args.runs):
        for side, binary in (("base", args.base), ("new", args.new), ("cp -a", None)):
            shutil.rmtree(arch, ignore_errors=True)
            shutil.rmtree(plain, ignore_errors=True)
            if binary:
                subprocess.run([binary, "init", arch], check=True, capture_output=True)
                cmd = [binary, "ingest", arch, folder]
            else:
                cmd = ["cp", "-a", folder, plain]
            t, cpu = timed_cmd(cmd, args.taskset)
            print(f"round {r + 1} {side}: {size / t / (1 << 20):.0f} MiB/s ({t:.2f} s), CPU {cpu:.2f} s, "
                  f"load {loadavg()}", flush=True)
            if side not in best or t < best[side][0]:
                best[side] = (t, cpu)
    shutil.rmtree(arch, ignore_errors=True)
    shutil.rmtree(plain, ignore_errors=True)
    cp = best["cp -a"][0]
    for side in ("base", "new"):
        t, cpu = best[side]
        print(f"best ingest {side}: {cp / t:.2f}x cp -a ({size / t / (1 << 20):.0f} vs {size / cp / (1 << 20):.0f} MiB/s), "
              f"CPU {cpu:.2f} s")
    print(f"ingest new / base: {best['base'][0] / best['new'][0]:.2f}x")


if __name__ == "__main__":
    main()
