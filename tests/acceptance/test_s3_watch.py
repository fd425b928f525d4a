"""`reelfs proxy --watch --worker` (issue 18): a render node watching its
attached folder renders what another host commits to the bucket, once. Host B
runs in its own UTS namespace (test_s3.py's `on_host_b`); the S3 server is
moto on 127.0.0.1 (test_s3.py's fixture).
"""

import json
import shutil
import signal
import threading
import time

from helpers import wait_until
from test_s3 import bucket, init_s3, on_host_b, s3_server, set_store_option  # noqa: F401 (fixtures)
from test_s3_hosts import attach
from test_s3_workers import PROFILE, claims, make_clips

INTERVAL = 1


class Lines:
    """A process's stdout, collected line by line as it runs."""

    def __init__(self, proc):
        self.lines = []
        self.t = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self.t.start()

    def _read(self, f):
        for line in f:
            self.lines.append(line.rstrip("\n"))

    def rendered(self, path):
        return [ln for ln in self.lines if ln.startswith(f"rendered {path}:")]


def test_a_watching_worker_renders_a_clip_committed_from_another_host_once(reelfs, bucket, tmp_path):
    host_a = tmp_path / "host-a"
    init_s3(reelfs, host_a, bucket)
    set_store_option(host_a, "lease_seconds", "3")
    clips = tmp_path / "clips"
    make_clips(clips, 2)
    (tmp_path / "first").mkdir()
    shutil.copy2(clips / "clip0.mp4", tmp_path / "first" / "clip0.mp4")
    reelfs.ok("ingest", host_a, tmp_path / "first")
    host_b = tmp_path / "bay2" / "archive"
    attach(reelfs, host_b, bucket)
    set_store_option(host_b, "lease_seconds", "3")

    err = open(tmp_path / "watch.err", "w")   # a file never fills as an unread pipe would
    w = reelfs.popen("proxy", host_a, "main", "--watch", "--worker", "--interval", str(INTERVAL), "--profiles", PROFILE,
                     stderr=err)
    out = Lines(w)
    try:
        # What was there when it started is rendered first.
        assert wait_until(lambda: out.rendered("main/first/clip0.mp4") or w.poll() is not None, 120, 0.2), out.lines
        assert w.poll() is None, out.lines

        # Another host commits a new clip: the watcher, following the bucket, renders it.
        (tmp_path / "second").mkdir()
        shutil.copy2(clips / "clip1.mp4", tmp_path / "second" / "clip1.mp4")
        new = "main/second/clip1.mp4"
        assert wait_until(lambda: on_host_b(reelfs, "ingest", host_b, tmp_path / "second").returncode == 0, 60, 1)
        assert wait_until(lambda: out.rendered(new) or w.poll() is not None, 120, 0.2), out.lines
        assert w.poll() is None, out.lines

        # Storing the proxy moved a head: the watcher looks again and finds it up to date.
        time.sleep(5 * INTERVAL)
        assert len(out.rendered(new)) == 1 and len(out.rendered("main/first/clip0.mp4")) == 1, out.lines
        assert len(claims(bucket)) == 2, claims(bucket)
    finally:
        w.send_signal(signal.SIGTERM)
        try:
            w.wait(60)
        finally:
            if w.poll() is None:
                w.kill()
        out.t.join(10)
    err.close()
    assert w.returncode == 0, (w.returncode, out.lines, (tmp_path / "watch.err").read_text())

    # Host B, caught up with the bucket, has the proxy: nothing left to render there.
    p = on_host_b(reelfs, "proxy", host_b, "main", "--worker", "--profiles", PROFILE, "--json")
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["rendered"] == [] and rep["up_to_date"] == 2, rep
