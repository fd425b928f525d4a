"""Packs on S3-compatible object storage (issue 18), against a real S3 server on
127.0.0.1: moto in server mode (`moto[server]` from PyPI), started by the fixture
below. moto implements multipart upload (create, upload part, complete, abort,
list-multipart-uploads) and ranged GET as S3 does; see the README's S3 section.

What a user checks: bytes equal after ingest/restore/cat/mount/slice against the
bucket; a killed ingest leaves no multipart upload once `gc` has run; the server
going away mid-read is a clean error (EIO through the mount, a message naming
the pack from the CLI), retried with back-off, and reads recover when it returns;
credentials never land in reelfs.toml.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import boto3
import pytest

from helpers import b3, wait_until, write_random

KEY_ID = "AKIAREELFSTEST0001"
SECRET = "reelfs-test-secret-never-in-toml-Q7x9"
SERVER_START_TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    """moto's S3 server on 127.0.0.1 (a real HTTP server speaking the S3 API)."""
    port = free_port()
    # moto logs every request to stderr. Into a pipe nobody reads, the log filled
    # the pipe's 64 KiB after a few hundred requests: the thread writing the line
    # blocked holding the logging lock, and every other request waited on it (the
    # writer-lease test's list_multipart_uploads timing out at 60 s once the whole
    # file had run). A file never blocks, and is there to read when moto fails.
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
    )
    log.close()

    def up():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    if not wait_until(up, SERVER_START_TIMEOUT, 0.1):
        proc.kill()
        pytest.fail(f"moto server did not start on 127.0.0.1:{port}: {log_path.read_text()[-4000:]}", pytrace=False)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


class Bucket:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.name = f"reelfs-{uuid.uuid4().hex[:12]}"
        self.client = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)
        self.client.create_bucket(Bucket=self.name)

    def keys(self, prefix=""):
        out = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix):
            out += [o["Key"] for o in page.get("Contents", [])]
        return sorted(out)

    def uploads(self):
        return self.client.list_multipart_uploads(Bucket=self.name).get("Uploads", [])


@pytest.fixture
def bucket(s3_server, monkeypatch):
    """A fresh bucket, and the credentials in the environment (as a user sets them)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT", raising=False)
    return Bucket(s3_server)


def init_s3(reelfs, path, bucket, endpoint=None, prefix="show-x"):
    url = f"s3://{bucket.name}/{prefix}"
    reelfs.ok("init", path, "--store", url, "--endpoint", endpoint or bucket.endpoint, "--region", "us-east-1")
    return url


def set_store_option(archive: Path, key: str, value: str):
    """Set `key = value` in reelfs.toml's [store] table, as a user edits it."""
    toml = archive / "reelfs.toml"
    text = toml.read_text()
    assert "[store]" in text and f"\n{key} = " in text, text
    lines = [f"{key} = {value}" if ln.startswith(f"{key} = ") else ln for ln in text.splitlines()]
    toml.write_text("\n".join(lines) + "\n")


# ---- a user's round trip ---------------------------------------------------------------

def test_ingest_restore_cat_mount_slice_are_byte_identical_against_s3(reelfs, bucket, media_dir, tmp_path, mount):
    card = tmp_path / "card"
    card.mkdir()
    for name in ["A001C003_prores_2398.mov", "D004_bwf.wav"]:
        shutil.copy2(media_dir / name, card / name)
    write_random(card / "notes.bin", 5 << 20)
    archive = tmp_path / "archive"
    url = init_s3(reelfs, archive, bucket)

    text = (archive / "reelfs.toml").read_text()
    assert f'url = "{url}"' in text and bucket.endpoint in text, text
    assert SECRET not in text and KEY_ID not in text, "credentials must never be written to reelfs.toml"

    reelfs.ok("ingest", archive, card, "--to", "Day01")
    keys = bucket.keys("show-x/packs/")
    assert keys and all(k.endswith(".pack") for k in keys), keys
    # Besides packs, only the catalog snapshots other hosts attach from (test_s3_hosts.py).
    assert all(k.startswith("show-x/catalog/") for k in set(bucket.keys()) - set(keys)), bucket.keys()
    assert not any((archive / "packs").rglob("*.pack")), "packs go to the bucket, not the local folder"
    assert bucket.uploads() == [], "every upload was completed"
    for p in archive.rglob("*"):
        if p.is_file() and p.suffix != ".blk":
            assert SECRET.encode() not in p.read_bytes(), f"secret found in {p}"

    # restore and cat from a cold cache: every byte comes from the server.
    shutil.rmtree(archive / "cache" / "packs", ignore_errors=True)
    out = tmp_path / "out"
    out.mkdir()
    reelfs.ok("restore", archive, "main/Day01/card", out)
    for f in card.iterdir():
        assert b3(out / "card" / f.name) == b3(f), f.name
    cat = reelfs("cat", archive, "main/Day01/card/notes.bin", text=False)
    assert cat.returncode == 0 and cat.stdout == (card / "notes.bin").read_bytes()

    reelfs.check_deep(archive)
    stats = reelfs.json("stats", archive)
    assert stats["packs"] == len(bucket.keys("show-x/packs/")), stats

    # The mount reads originals and slices off the bucket. A slice of the same
    # clip in a local archive is the reference.
    local = tmp_path / "local"
    reelfs.ok("init", local)
    reelfs.ok("ingest", local, card, "--to", "Day01")
    shutil.rmtree(archive / "cache" / "packs", ignore_errors=True)
    m = mount(archive)
    ref = mount(local)
    base = "main/Day01/card"
    for f in card.iterdir():
        assert b3(m.mp / base / f.name) == b3(f), f.name
    sl = "A001C003_prores_2398.mov@01:00:00:10-01:00:01:05+2"
    got = (m.mp / base / sl).read_bytes()
    assert len(got) > 0 and got == (ref.mp / base / sl).read_bytes()


def test_init_refuses_a_bad_store_and_creates_nothing(reelfs, bucket, tmp_path, monkeypatch):
    archive = tmp_path / "archive"
    p = reelfs("init", archive, "--store", "not-a-url")
    assert p.returncode != 0 and "s3://BUCKET/PREFIX" in p.stderr, p.stderr
    p = reelfs("init", archive, "--store", f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/x", "--endpoint", bucket.endpoint)
    assert p.returncode != 0 and "cannot use" in p.stderr and "credentials" in p.stderr, p.stderr
    assert not archive.exists() or not any(archive.iterdir()), "nothing is created for a store that cannot be used"
    # A prefix already holding another archive's packs is refused.
    other = tmp_path / "other"
    init_s3(reelfs, other, bucket)
    p = reelfs("init", archive, "--store", f"s3://{bucket.name}/show-x", "--endpoint", bucket.endpoint)
    assert p.returncode != 0 and "already holds" in p.stderr, p.stderr


# ---- a killed ingest -----------------------------------------------------------------

def test_a_killed_ingest_leaves_no_multipart_upload_after_gc(reelfs, bucket, tmp_path):
    archive = tmp_path / "archive"
    init_s3(reelfs, archive, bucket)
    card = tmp_path / "card"
    write_random(card / "big.bin", 96 << 20)
    before = bucket.keys("show-x/packs/")
    proc = reelfs.popen("ingest", archive, card)
    try:
        assert wait_until(lambda: bucket.uploads() or proc.poll() is not None, 120, 0.01)
        assert proc.poll() is None, "the ingest ended before its upload could be caught mid-way"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert bucket.uploads(), "a killed ingest leaves its multipart upload open in the bucket"
    assert bucket.keys("show-x/packs/") == before, "an unfinished upload is not an object"

    gc = reelfs.ok("gc", archive)
    assert bucket.uploads() == [], f"gc aborts what a crash left: {bucket.uploads()}\n{gc.stdout}{gc.stderr}"
    reelfs.check_deep(archive)
    assert reelfs("ls", archive, "main/card").returncode != 0, "nothing of the killed ingest was committed"
    # The same ingest goes in whole afterwards.
    reelfs.ok("ingest", archive, card)
    assert bucket.uploads() == []
    out = tmp_path / "out"
    out.mkdir()
    reelfs.ok("restore", archive, "main/card/big.bin", out)
    assert b3(out / "big.bin") == b3(card / "big.bin")


# ---- the server going away -------------------------------------------------------------

class Proxy:
    """A TCP relay on 127.0.0.1 in front of the S3 server that the test can take
    down (listener closed, every open connection cut) and bring back on the same
    port: to reelfs, the server went away and returned."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.port = free_port()
        self.conns = []
        self.lock = threading.Lock()
        self.listener = None
        self.stopped = False
        self.start()

    def start(self):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(64)
        self.listener = ls
        with self.lock:
            self.stopped = False
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def _accept(self, ls):
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                c.close()
                continue
            with self.lock:
                if self.stopped:
                    # Accepted in the instant stop() ran: the server is gone.
                    c.close()
                    u.close()
                    return
                self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                d = a.recv(1 << 16)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        # close() alone does not wake a thread blocked in accept() on Linux: the
        # socket stays listening until that accept returns, and it could relay one
        # more connection. shutdown() on a listening socket ends the accept.
        with self.lock:
            self.stopped = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self.conns = []

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"


def test_server_gone_mid_read_is_a_clean_error_and_reads_recover_when_it_returns(reelfs, bucket, tmp_path, mount):
    proxy = Proxy(int(bucket.endpoint.rsplit(":", 1)[1]))
    archive = tmp_path / "archive"
    init_s3(reelfs, archive, bucket, endpoint=proxy.url)
    # Give up on a dead server after a few seconds of retries, not a minute.
    set_store_option(archive, "retry_seconds", "4")
    card = tmp_path / "card"
    write_random(card / "clip.bin", 48 << 20)
    reelfs.ok("ingest", archive, card)
    shutil.rmtree(archive / "cache" / "packs", ignore_errors=True)
    # What is read below past 32 MiB must still be in the bucket when the server
    # goes: the head is read without kernel read-ahead (FADV_RANDOM), and a small
    # cache keeps reelfs's read-ahead window at its minimum (4 MiB), so at most the
    # head, that window and the rest of the chunk it ends in (chunks are <= 16 MiB)
    # are fetched; a 1G cache's window could have fetched the whole file by then.
    m = mount(archive, "--cache-size", "16M")
    f = m.mp / "main" / "card" / "clip.bin"
    want = (card / "clip.bin").read_bytes()
    with open(f, "rb") as fh:
        os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_RANDOM)
        head = fh.read(1 << 20)  # opened and partly read while the server is there
        assert head == want[: 1 << 20]
        proxy.stop()
        with pytest.raises(OSError) as e:
            fh.seek(44 << 20)
            fh.read(1 << 20)
        assert e.value.errno == 5, f"EIO expected, got {e.value!r}"
    assert m.alive(), "the mount survives its store going away"
    p = reelfs("cat", archive, "main/card/clip.bin", text=False)
    assert p.returncode != 0
    err = p.stderr.decode()
    assert f"s3://{bucket.name}/show-x/packs/" in err, err

    # Back-off: a read started while the server is away succeeds once it returns
    # inside the retry window.
    result = {}

    def read_tail():
        try:
            with open(f, "rb") as fh:
                fh.seek(36 << 20)
                result["bytes"] = fh.read(1 << 20)
        except OSError as e:
            result["error"] = e

    t = threading.Thread(target=read_tail)
    t.start()
    time.sleep(1.0)
    proxy.start()
    t.join(60)
    assert not t.is_alive()
    assert result.get("bytes") == want[36 << 20: 37 << 20], result.get("error")
    # And the whole file reads again.
    assert b3(f) == b3(card / "clip.bin")


# ---- routine checks of a remote store --------------------------------------------------

def test_check_sample_rereads_part_of_the_bucket_and_finds_damage_when_drawn(reelfs, bucket, tmp_path):
    archive = tmp_path / "archive"
    init_s3(reelfs, archive, bucket)
    toml = archive / "reelfs.toml"
    toml.write_text(toml.read_text().replace("target_size = 536870912", "target_size = 1048576"))
    card = tmp_path / "card"
    for i in range(3):
        write_random(card / f"clip{i}.bin", 3 << 20)
    reelfs.ok("ingest", archive, card)
    packs = [k for k in bucket.keys() if k.endswith(".pack")]
    assert len(packs) >= 6, packs

    for bad in ["0", "150", "lots"]:
        p = reelfs("check", archive, "--sample", bad)
        assert p.returncode != 0 and "percentage" in p.stderr, p.stderr
    # A small sample re-reads some packs, not all (drawn afresh each run).
    drawn = [reelfs.json("check", archive, "--sample", "1")["packs_verified"] for _ in range(3)]
    assert min(drawn) < len(packs), drawn

    # Damage one pack in the bucket (a bit flipped in its middle); a plain check
    # does not re-read content, a full sample does and names the damaged file.
    # The largest pack: the writer interleaves small metadata packs (a file's
    # extent list, trees, the commit; a few hundred bytes) with the data packs,
    # and a bit flipped in one of those damages no file's bytes, so no file is
    # named (the middle pack by name was one about 1 run in 16).
    sizes = {k: bucket.client.head_object(Bucket=bucket.name, Key=k)["ContentLength"] for k in packs}
    victim = max(packs, key=sizes.get)
    assert sizes[victim] >= 1 << 20, sizes
    body = bytearray(bucket.client.get_object(Bucket=bucket.name, Key=victim)["Body"].read())
    body[len(body) // 2] ^= 0x01
    bucket.client.put_object(Bucket=bucket.name, Key=victim, Body=bytes(body))
    shutil.rmtree(archive / "cache" / "packs", ignore_errors=True)
    assert reelfs("check", archive).returncode == 0
    rep = reelfs.json("check", archive, "--sample", "100", expect_rc=1)
    assert rep["packs_verified"] == len(packs), rep
    assert rep["damaged_files"] and all(f.startswith("main/card/clip") for f in rep["damaged_files"]), rep
    p = reelfs("check", archive, "--deep")
    assert p.returncode == 1 and "damaged: main/card/clip" in p.stdout, p.stdout


# ---- moving an existing archive to a bucket ---------------------------------------------

def test_store_migrate_is_interruptible_resumable_and_switches_only_when_verified(reelfs, bucket, media_dir, tmp_path):
    archive = tmp_path / "archive"
    reelfs.ok("init", archive)
    toml = archive / "reelfs.toml"
    toml.write_text(toml.read_text().replace("target_size = 536870912", "target_size = 1048576"))
    card = tmp_path / "card"
    card.mkdir()
    shutil.copy2(media_dir / "A001C003_prores_2398.mov", card / "A001C003_prores_2398.mov")
    write_random(card / "notes.bin", 6 << 20)
    reelfs.ok("ingest", archive, card)
    local_packs = sorted(p.relative_to(archive / "packs").as_posix() for p in (archive / "packs").rglob("*.pack"))
    assert len(local_packs) >= 6, local_packs
    url = f"s3://{bucket.name}/moved"

    # Interrupt (Ctrl-C) once some packs are in the bucket: nothing switches.
    proc = reelfs.popen("store", "migrate", archive, url, "--endpoint", bucket.endpoint)
    try:
        assert wait_until(lambda: len(bucket.keys("moved/")) >= 2 or proc.poll() is not None, 120, 0.01)
        assert proc.poll() is None, "the migration ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and "run the same `reelfs store migrate` again to resume" in err, err
    assert "[store]" not in toml.read_text(), "an interrupted migration does not switch the archive"
    partly = len(bucket.keys("moved/"))
    assert 0 < partly < len(local_packs)
    out = tmp_path / "before"
    out.mkdir()
    reelfs.ok("restore", archive, "main/card", out)

    # Run again: it resumes, verifies everything, and switches.
    rep = reelfs.json("store", "migrate", archive, url, "--endpoint", bucket.endpoint)
    assert rep["switched"] and rep["packs"] == len(local_packs), rep
    assert rep["copied"] < len(local_packs) and rep["copied"] + rep["resumed"] + rep["already_there"] == len(local_packs), rep
    assert sorted(k[len("moved/packs/"):] for k in bucket.keys("moved/packs/")) == local_packs
    assert bucket.uploads() == []
    text = toml.read_text()
    assert f'url = "{url}"' in text and SECRET not in text and KEY_ID not in text, text

    # The local packs are no longer read: move them away, and everything reads from the bucket.
    (archive / "packs").rename(tmp_path / "old-packs")
    (archive / "packs").mkdir()
    reelfs.check_deep(archive)
    out = tmp_path / "after"
    out.mkdir()
    reelfs.ok("restore", archive, "main/card", out)
    for f in card.iterdir():
        assert b3(out / "card" / f.name) == b3(f), f.name
    p = reelfs("store", "migrate", archive, url, "--endpoint", bucket.endpoint)
    assert p.returncode != 0 and "already keeps its packs in" in p.stderr, p.stderr


# ---- one writer at a time across hosts ----------------------------------------------------

def on_host_b(reelfs, *args):
    """Run reelfs as another host would: in its own UTS namespace named host-b."""
    return subprocess.run(
        ["unshare", "--uts", "sh", "-c", 'hostname host-b && exec "$0" "$@"', str(reelfs.binary), *map(str, args)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)


def test_a_second_host_is_refused_while_the_writer_lease_is_held_and_takes_over_when_it_expires(reelfs, bucket, tmp_path):
    host_a = tmp_path / "host-a"
    init_s3(reelfs, host_a, bucket)
    set_store_option(host_a, "lease_seconds", "3")
    # A second host's archive folder for the same bucket (its own catalog and lock file).
    host_b = tmp_path / "host-b"
    shutil.copytree(host_a, host_b)
    card = tmp_path / "card"
    write_random(card / "big.bin", 96 << 20)
    small = tmp_path / "small"
    write_random(small / "b.bin", 1 << 20)

    proc = reelfs.popen("ingest", host_a, card)
    try:
        assert wait_until(lambda: bucket.uploads() or proc.poll() is not None, 120, 0.01)
        assert proc.poll() is None, "the ingest ended before a second host could try"
        assert "show-x/writer.lease" in bucket.keys("show-x/")
        p = on_host_b(reelfs, "ingest", host_b, small)
        assert p.returncode != 0 and "is locked by" in p.stderr and "since" in p.stderr, p.stderr
        assert "host-b" not in p.stderr, p.stderr
        # The writer dies without releasing its lease.
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    p = on_host_b(reelfs, "ingest", host_b, small)
    assert p.returncode != 0 and "is locked by" in p.stderr, "a dead writer's lease holds until it expires"
    # Once it has expired, the second host takes over and writes.
    assert wait_until(lambda: on_host_b(reelfs, "ingest", host_b, small).returncode == 0, 60, 0.5)
    assert "show-x/writer.lease" not in bucket.keys("show-x/"), "a finished writer releases its lease"
    out = tmp_path / "out"
    out.mkdir()
    reelfs.ok("restore", host_b, "main/small/b.bin", out)
    assert b3(out / "b.bin") == b3(small / "b.bin")
