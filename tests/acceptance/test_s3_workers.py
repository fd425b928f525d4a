"""Proxy workers on several hosts sharing one queue (issue 18): `reelfs proxy
--worker` on two archive folders attached to one bucket (moto's S3 server on
127.0.0.1, test_s3.py's fixture) splits the media between them, renders no
source twice, and takes over the source of a worker that died once its claim
expires. "Another host" runs in a UTS namespace named host-b, as in test_s3.py.
"""

import json
import signal
import subprocess

from helpers import wait_until
from test_s3 import bucket, init_s3, on_host_b, s3_server, set_store_option  # noqa: F401 (fixtures)
from test_s3_hosts import attach

CLIPS = 8
PROFILE = "preview"


def make_clips(card, n=CLIPS):
    """n short, distinct H.264 clips (a different test pattern hue each)."""
    card.mkdir(parents=True)
    for i in range(n):
        p = subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=24:duration=3",
             "-vf", f"hue=h={i * 40}", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
             str(card / f"clip{i}.mp4")],
            capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
    return sorted(f"main/card/clip{i}.mp4" for i in range(n))


def worker_on_host_b(reelfs, *args):
    return subprocess.Popen(
        ["unshare", "--uts", "sh", "-c", 'hostname host-b && exec "$0" "$@"', str(reelfs.binary), *map(str, args)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def report(proc):
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{out}\nstderr:\n{err}"
    return json.loads(out)


def claims(bucket):
    return bucket.keys("show-x/proxy-queue/")


def two_hosts(reelfs, bucket, tmp_path):
    host_a = tmp_path / "host-a"
    init_s3(reelfs, host_a, bucket)
    set_store_option(host_a, "lease_seconds", "3")
    paths = make_clips(tmp_path / "card")
    reelfs.ok("ingest", host_a, tmp_path / "card")
    host_b = tmp_path / "bay2" / "archive"
    attach(reelfs, host_b, bucket)
    set_store_option(host_b, "lease_seconds", "3")
    return host_a, host_b, paths


def test_two_workers_on_two_hosts_split_one_proxy_job_without_rendering_a_clip_twice(reelfs, bucket, tmp_path):
    host_a, host_b, paths = two_hosts(reelfs, bucket, tmp_path)

    # Worker A starts; worker B joins once A has claimed its first clip.
    a = reelfs.popen("proxy", host_a, "main", "--worker", "--profiles", PROFILE, "--json")
    try:
        assert wait_until(lambda: claims(bucket) or a.poll() is not None, 120, 0.02)
        b = worker_on_host_b(reelfs, "proxy", host_b, "main", "--worker", "--profiles", PROFILE, "--json")
        rep_b = report(b)
        rep_a = report(a)
    finally:
        if a.poll() is None:
            a.kill()

    by_a = sorted(r["path"] for r in rep_a["rendered"])
    by_b = sorted(r["path"] for r in rep_b["rendered"])
    # Every clip rendered, by exactly one of them; both did some of the work.
    assert sorted(by_a + by_b) == paths, (rep_a, rep_b)
    assert by_a and by_b, f"one worker did everything: A {by_a}, B {by_b}"
    assert not rep_a["failed"] and not rep_b["failed"], (rep_a["failed"], rep_b["failed"])
    # What a worker did not render, the other had (or had already stored).
    for rep, mine in ((rep_a, by_a), (rep_b, by_b)):
        left = [p for p, _ in rep["elsewhere"]]
        assert set(mine).isdisjoint(left) and len(mine) + len(left) + rep["up_to_date"] == CLIPS, rep
        assert all("rendered by" in who for _, who in rep["elsewhere"]), rep["elsewhere"]
    # Each claim is marked done: one per clip.
    assert len(claims(bucket)) == CLIPS, claims(bucket)

    # Either host, caught up with the bucket, has every clip's proxy: nothing left to render.
    again_a = reelfs.json("proxy", host_a, "main", "--worker", "--profiles", PROFILE)
    p = on_host_b(reelfs, "proxy", host_b, "main", "--worker", "--profiles", PROFILE, "--json")
    assert p.returncode == 0, p.stderr
    for again in (again_a, json.loads(p.stdout)):
        assert again["rendered"] == [] and again["up_to_date"] == CLIPS, again


def test_a_dead_workers_clip_is_taken_over_once_its_claim_expires(reelfs, bucket, tmp_path):
    host_a, host_b, paths = two_hosts(reelfs, bucket, tmp_path)

    a = reelfs.popen("proxy", host_a, "main", "--worker", "--profiles", PROFILE, "--json")
    try:
        assert wait_until(lambda: claims(bucket) or a.poll() is not None, 120, 0.01)
        assert a.poll() is None, "the worker ended before it could be killed"
        a.send_signal(signal.SIGKILL)
        a.wait(30)
    finally:
        if a.poll() is None:
            a.kill()
    # Host B renders the rest; the dead worker's clip once its claim has expired.
    done = set()

    def rest_rendered():
        p = on_host_b(reelfs, "proxy", host_b, "main", "--worker", "--profiles", PROFILE, "--json")
        assert p.returncode == 0, p.stderr
        rep = json.loads(p.stdout)
        for r in rep["rendered"]:
            assert r["path"] not in done, f"{r['path']} rendered twice"
            done.add(r["path"])
        return rep["up_to_date"] == CLIPS

    assert wait_until(rest_rendered, 120, 0.5)
    assert done <= set(paths) and len(done) >= CLIPS - 1, done


def test_worker_on_an_archive_with_local_packs_says_there_is_nothing_to_share(reelfs, tmp_path):
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    p = reelfs("proxy", archive, "--worker")
    assert p.returncode != 0 and "keeps its packs on this machine" in p.stderr and "without --worker" in p.stderr, p.stderr
