"""Several hosts on one bucket (issue 18): `reelfs attach` gives a new host an
archive folder from the bucket alone, and `reelfs mount --replica` follows the
writer's commits. Against moto's S3 server on 127.0.0.1 (test_s3.py's fixture);
"another host" is a second archive folder on the same bucket, its commands run
in a UTS namespace named host-b as test_s3.py does.
"""

import errno
import shutil
from pathlib import Path

import pytest

from helpers import b3, wait_until, write_random
from test_s3 import KEY_ID, SECRET, Proxy, bucket, init_s3, on_host_b, s3_server  # noqa: F401 (fixtures)

# A replica polls every second here; new commits must show within this (generous:
# a loaded 2-core CI machine), and the test ends as soon as they do.
FOLLOW_TIMEOUT = 90


def snapshot_keys(bucket):
    return [k for k in bucket.keys("show-x/catalog/") if "/snapshot-" in k]


def attach(reelfs, dir, bucket, endpoint=None, check=True):
    args = ["attach", dir, f"s3://{bucket.name}/show-x", "--endpoint", endpoint or bucket.endpoint, "--region", "us-east-1"]
    p = on_host_b(reelfs, *args)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def leftovers(parent: Path):
    return [p.name for p in parent.iterdir() if ".attaching" in p.name]


def test_attach_gives_a_second_host_a_byte_identical_archive(reelfs, bucket, media_dir, tmp_path, mount):
    card = tmp_path / "card"
    card.mkdir()
    shutil.copy2(media_dir / "A001C003_prores_2398.mov", card / "A001C003_prores_2398.mov")
    write_random(card / "notes.bin", 3 << 20)
    host_a = tmp_path / "host-a"
    init_s3(reelfs, host_a, bucket)
    reelfs.ok("ingest", host_a, card, "--to", "Day01")
    # The writer published its catalog when it finished.
    assert "show-x/catalog/HEAD" in bucket.keys("show-x/catalog/")
    assert len(snapshot_keys(bucket)) >= 1

    host_b = tmp_path / "bay2" / "archive"
    p = attach(reelfs, host_b, bucket)
    assert "attached" in p.stdout and "main" in p.stdout, p.stdout
    text = (host_b / "reelfs.toml").read_text()
    assert SECRET not in text and KEY_ID not in text
    seed = lambda t: [ln for ln in t.splitlines() if ln.startswith("seed")]  # noqa: E731
    assert seed(text) == seed((host_a / "reelfs.toml").read_text()) != [], "the writer's chunker seed travels with the catalog"

    # ls, cat, restore, mount on host B: the same names and bytes as on host A.
    ls_a = reelfs.json("ls", host_a, "main/Day01/card")
    ls_b = reelfs.json("ls", host_b, "main/Day01/card")
    assert ls_a == ls_b and ls_b, (ls_a, ls_b)
    cat = reelfs("cat", host_b, "main/Day01/card/notes.bin", text=False)
    assert cat.returncode == 0 and cat.stdout == (card / "notes.bin").read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    reelfs.ok("restore", host_b, "main/Day01/card", out)
    for f in card.iterdir():
        assert b3(out / "card" / f.name) == b3(f), f.name
    m = mount(host_b, "--read-only")
    for f in card.iterdir():
        assert b3(m.mp / "main" / "Day01" / "card" / f.name) == b3(f), f.name

    # Host B writes in turn (the writer lease rules), and host A sees it by taking
    # B's catalog before it writes again: nothing of either is lost.
    small = tmp_path / "small"
    write_random(small / "b.bin", 1 << 20)
    p = on_host_b(reelfs, "ingest", host_b, small)
    assert p.returncode == 0, p.stderr
    more = tmp_path / "more"
    write_random(more / "a.bin", 1 << 20)
    reelfs.ok("ingest", host_a, more)
    for host in (host_a, host_b):
        if host == host_b:
            # B takes A's new commit when it next writes.
            assert on_host_b(reelfs, "branch", host_b, "after").returncode == 0
        names = {e["name"] for e in reelfs.json("ls", host, "main")}
        assert {"Day01", "small", "more"} <= names, (host, names)


def test_attach_refuses_a_missing_or_damaged_snapshot_and_leaves_no_half_attached_folder(reelfs, bucket, tmp_path):
    # Nothing published under the prefix.
    target = tmp_path / "bay2"
    p = attach(reelfs, target, bucket, check=False)
    assert p.returncode != 0 and "holds no published catalog" in p.stderr, p.stderr
    assert not target.exists() and leftovers(tmp_path) == []

    host_a = tmp_path / "host-a"
    init_s3(reelfs, host_a, bucket)
    card = tmp_path / "card"
    write_random(card / "x.bin", 1 << 20)
    reelfs.ok("ingest", host_a, card)
    [snap] = snapshot_keys(bucket)[-1:]
    good = bucket.client.get_object(Bucket=bucket.name, Key=snap)["Body"].read()

    # Damaged in the bucket (a flipped byte): refused, nothing left behind,
    # even in a folder the user made for it.
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    bucket.client.put_object(Bucket=bucket.name, Key=snap, Body=bytes(bad))
    target.mkdir()
    p = attach(reelfs, target, bucket, check=False)
    assert p.returncode != 0 and "is damaged" in p.stderr and "publish" in p.stderr, p.stderr
    assert target.is_dir() and list(target.iterdir()) == [] and leftovers(tmp_path) == []

    # Missing (HEAD names a snapshot that is gone).
    bucket.client.delete_object(Bucket=bucket.name, Key=snap)
    p = attach(reelfs, target, bucket, check=False)
    assert p.returncode != 0 and "is missing" in p.stderr, p.stderr
    assert list(target.iterdir()) == [] and leftovers(tmp_path) == []

    # Put back, it attaches.
    bucket.client.put_object(Bucket=bucket.name, Key=snap, Body=good)
    attach(reelfs, target, bucket)
    out = tmp_path / "out"
    out.mkdir()
    reelfs.ok("restore", target, "main/card/x.bin", out)
    assert b3(out / "x.bin") == b3(card / "x.bin")

    # A damaged HEAD: refused; the writer's next write replaces it, then it attaches.
    bucket.client.put_object(Bucket=bucket.name, Key="show-x/catalog/HEAD", Body=b'{"seq": 1, "obj')
    again = tmp_path / "bay3"
    p = attach(reelfs, again, bucket, check=False)
    assert p.returncode != 0 and "is damaged" in p.stderr, p.stderr
    assert not again.exists() and leftovers(tmp_path) == []
    reelfs.ok("branch", host_a, "grade-v2")
    attach(reelfs, again, bucket)
    listed = reelfs("branch", again)
    assert listed.returncode == 0 and "grade-v2" in listed.stdout and "main" in listed.stdout, listed.stdout

    # A folder that is not empty is never touched.
    p = attach(reelfs, host_a, bucket, check=False)
    assert p.returncode != 0 and (host_a / "reelfs.toml").is_file()


def test_a_replica_mount_follows_the_writers_commits_and_keeps_serving_when_the_bucket_is_away(reelfs, bucket, tmp_path, mount):
    host_a = tmp_path / "host-a"
    init_s3(reelfs, host_a, bucket)
    day1 = tmp_path / "Day01"
    write_random(day1 / "a.bin", 2 << 20)
    reelfs.ok("ingest", host_a, day1)
    # The replica reaches the bucket through a relay the test can take away.
    relay = Proxy(int(bucket.endpoint.rsplit(":", 1)[1]))
    host_b = tmp_path / "host-b"
    attach(reelfs, host_b, bucket, endpoint=relay.url)
    m = mount(host_b, "--replica", "--poll", "1")
    main = m.mp / "main"
    assert b3(main / "Day01" / "a.bin") == b3(day1 / "a.bin")
    with pytest.raises(OSError) as e:
        (main / "Day01" / "new.bin").write_bytes(b"x")
    assert e.value.errno == errno.EROFS

    # A commit on the writer appears in the replica's mount, whole.
    day2 = tmp_path / "Day02"
    write_random(day2 / "b.bin", 3 << 20)
    reelfs.ok("ingest", host_a, day2)
    assert wait_until(lambda: (main / "Day02" / "b.bin").exists(), FOLLOW_TIMEOUT, 0.2), m.log()
    assert b3(main / "Day02" / "b.bin") == b3(day2 / "b.bin")

    # The bucket goes away: the replica keeps its view, and says so in its log.
    relay.stop()
    day3 = tmp_path / "Day03"
    write_random(day3 / "c.bin", 1 << 20)
    reelfs.ok("ingest", host_a, day3)
    assert wait_until(lambda: "cannot follow" in m.log(), FOLLOW_TIMEOUT, 0.2), m.log()
    assert "still serving" in m.log()
    assert m.alive()
    assert sorted(p.name for p in main.iterdir()) == ["Day01", "Day02"]
    assert b3(main / "Day02" / "b.bin") == b3(day2 / "b.bin"), "what was read before stays readable from the cache"

    # Back: it catches up.
    relay.start()
    assert wait_until(lambda: (main / "Day03" / "c.bin").exists(), FOLLOW_TIMEOUT, 0.2), m.log()
    assert b3(main / "Day03" / "c.bin") == b3(day3 / "c.bin")
    assert "reachable again" in m.log()


def test_mount_replica_refuses_an_archive_with_local_packs(reelfs, tmp_archive, tmp_path):
    mp = tmp_path / "mp"
    mp.mkdir()
    p = reelfs("mount", tmp_archive, mp, "--replica")
    assert p.returncode != 0 and "packs of" in p.stderr and "are local" in p.stderr, p.stderr


def test_a_migrated_archive_can_be_attached_at_once(reelfs, bucket, tmp_path):
    host_a = tmp_path / "host-a"
    reelfs.ok("init", host_a)
    card = tmp_path / "card"
    write_random(card / "m.bin", 2 << 20)
    reelfs.ok("ingest", host_a, card)
    reelfs.ok("store", "migrate", host_a, f"s3://{bucket.name}/show-x", "--endpoint", bucket.endpoint, "--region", "us-east-1")
    host_b = tmp_path / "host-b"
    attach(reelfs, host_b, bucket)
    out = tmp_path / "out"
    out.mkdir()
    reelfs.ok("restore", host_b, "main/card/m.bin", out)
    assert b3(out / "m.bin") == b3(card / "m.bin")
