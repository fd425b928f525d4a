"""Issue 18 (scale area): proxy workers sharing a bucket's queue (moto's S3 server on
127.0.0.1, test_s3.py's fixture) when one of them stalls. A worker stopped past its
claim's life (a paused VM, a SIGSTOPped process) loses the claim to another worker,
which renders and stores the clip; when the first one wakes and finishes its render,
it must store nothing: no second pack, and its report says the clip was rendered
elsewhere. "Another host" runs in a UTS namespace named host-b, as in test_s3.py.
"""

import json
import signal
import subprocess
import time

from helpers import wait_until
from test_s3 import bucket, init_s3, on_host_b, s3_server, set_store_option  # noqa: F401 (fixtures)
from test_s3_hosts import attach
from test_s3_workers import claims, report

PROFILE = "preview"
CLIP = "main/card/long.mp4"


def long_clip(card):
    """One H.264 clip long enough (20 s) that its render is still running when the
    test stops the worker just after it claims it; ~1 MB."""
    card.mkdir(parents=True)
    p = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=24:duration=20",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(card / "long.mp4")],
        capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr


def holder(bucket, key):
    return json.loads(bucket.client.get_object(Bucket=bucket.name, Key=key)["Body"].read())


def test_a_worker_stalled_past_its_claim_stores_no_second_copy_of_what_another_worker_rendered(reelfs, bucket, tmp_path):
    host_a = tmp_path / "host-a"
    init_s3(reelfs, host_a, bucket)
    set_store_option(host_a, "lease_seconds", "3")
    long_clip(tmp_path / "card")
    reelfs.ok("ingest", host_a, tmp_path / "card")
    host_b = tmp_path / "bay2" / "archive"
    attach(reelfs, host_b, bucket)
    set_store_option(host_b, "lease_seconds", "3")

    a = reelfs.popen("proxy", host_a, "main", "--worker", "--profiles", PROFILE, "--json")
    try:
        # Worker A claims the clip and is stopped mid-render, until its claim has expired.
        assert wait_until(lambda: claims(bucket) or a.poll() is not None, 120, 0.01)
        assert a.poll() is None, "worker A ended before it could be stopped"
        a.send_signal(signal.SIGSTOP)
        [key] = claims(bucket)
        assert not holder(bucket, key)["done"], "worker A had finished before it was stopped"
        assert wait_until(lambda: holder(bucket, key)["expires"] < time.time() - 1, 30, 0.2)

        # Worker B on the other host takes the expired claim over, renders and stores the clip.
        p = on_host_b(reelfs, "proxy", host_b, "main", "--worker", "--profiles", PROFILE, "--json")
        assert p.returncode == 0, p.stderr
        rep_b = json.loads(p.stdout)
        assert [r["path"] for r in rep_b["rendered"]] == [CLIP], rep_b
        packs = bucket.keys("show-x/packs/")

        # Worker A wakes, finishes its render, and finds its claim gone.
        a.send_signal(signal.SIGCONT)
        rep_a = report(a)
    finally:
        if a.poll() is None:
            a.send_signal(signal.SIGCONT)
            a.kill()

    assert rep_a["rendered"] == [] and not rep_a["failed"], rep_a
    assert [p for p, _ in rep_a["elsewhere"]] == [CLIP], rep_a
    assert "rendered by another worker" in rep_a["elsewhere"][0][1], rep_a["elsewhere"]
    # No second copy: A wrote no pack, and the clip's claim is B's, marked done.
    assert bucket.keys("show-x/packs/") == packs
    h = holder(bucket, key)
    assert h["done"] and h["host"] == "host-b", h
    # Both hosts see the one stored proxy: nothing left to render.
    again = reelfs.json("proxy", host_a, "main", "--worker", "--profiles", PROFILE)
    assert again["rendered"] == [] and again["up_to_date"] == 1, again
